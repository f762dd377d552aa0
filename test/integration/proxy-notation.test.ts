// Notary Project signatures through the proxy, with real parts: images in a real docker-registry,
// JWS signatures made with jose and openssl-issued certificates pushed next to them as referrers (tag
// schema), notation's own trustpolicy.json and trust store layout, a real notary-server for the DCT
// side of any-of/all-of, and skopeo pulling through trustgate.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { coseEnvelope, derB64, jwsEnvelope, makeCa, makeIntermediate, makeLeaf, pushSignatures, writeNotationTrust, type KeyPair, type SignatureForm } from '../support/notation-sign.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { auditRecords, expectRefused, expectServedWithProof, refusalReason, skopeoPull } from '../support/through-proxy.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const sleepUntil = async (t: number) => {
  while (Date.now() < t) await new Promise((r) => setTimeout(r, 100));
};
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let proxy: Trustgate;
const images: Record<string, PushedImage> = {};

const expiredAt = (k: KeyPair) => new Date(new X509Certificate(readFileSync(k.cert)).validFrom);

async function signNotation(
  tag: string,
  signer: KeyPair,
  issuer: KeyPair | KeyPair[],
  opts: { expired?: boolean; tamper?: boolean; otherDigest?: boolean; mediaType?: string; form?: SignatureForm } = {},
) {
  const img = images[tag]!;
  const target = {
    mediaType: opts.mediaType ?? img.mediaType,
    digest: opts.otherDigest ? images.plain!.digest : img.digest,
    size: opts.otherDigest ? images.plain!.manifest.length : img.manifest.length,
  };
  if (opts.expired) await sleepUntil(expiredAt(signer).getTime() + 1500);
  let env = await jwsEnvelope({
    signer,
    chain: [signer, ...(Array.isArray(issuer) ? issuer : [issuer])].map((k) => derB64(k.cert)),
    target,
    // Expired: signed when the certificate was issued, expiring a second later (an expiry must follow
    // the signing time), so by now it has expired.
    signingTime: opts.expired ? expiredAt(signer) : undefined,
    protectedOverride: opts.expired
      ? { crit: ['io.cncf.notary.signingScheme', 'io.cncf.notary.expiry'], 'io.cncf.notary.expiry': new Date(expiredAt(signer).getTime() + 1000).toISOString() }
      : undefined,
  });
  if (opts.tamper) {
    // The signed payload altered after signing (the descriptor's size): the signature no longer holds.
    const doc = JSON.parse(env.toString());
    const payload = JSON.parse(Buffer.from(doc.payload, 'base64url').toString());
    payload.targetArtifact.size += 1;
    doc.payload = Buffer.from(JSON.stringify(payload)).toString('base64url');
    env = Buffer.from(JSON.stringify(doc));
  }
  await pushSignatures(registry.url, `n/${tag}`, { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length }, [{ bytes: env, form: opts.form }]);
}

const pull = (repo: string, tag = 'v1') => skopeoPull(proxy.host, repo, tag, dir);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-pnotation-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  // One repository per case: n/<case>:v1.
  for (const name of ['good', 'cose', 'strangerca', 'identity', 'expired', 'tampered', 'wrongdigest', 'unsigned', 'plain', 'dctonly', 'both', 'serverauth', 'nokeyusage', 'mediatype', 'legacy', 'intermediate', 'junk', 'permissive']) {
    images[name] = await pushImage(dir, registry.host, `n/${name}`, 'v1');
  }
  const ca = makeCa(dir, 'acme');
  const stranger = makeCa(dir, 'stranger');
  const builder = makeLeaf(dir, 'builder', ca, '/C=US/ST=WA/O=acme/OU=Build/CN=builder');
  const intern = makeLeaf(dir, 'intern', ca, '/C=US/ST=WA/O=acme/OU=Interns/CN=intern');
  const strayLeaf = makeLeaf(dir, 'stray', stranger, '/C=US/ST=WA/O=acme/OU=Build/CN=stray');
  await signNotation('good', builder, ca);
  await signNotation('strangerca', strayLeaf, stranger);
  await signNotation('identity', intern, ca);
  await signNotation('expired', builder, ca, { expired: true });
  await signNotation('tampered', builder, ca, { tamper: true });
  await signNotation('wrongdigest', builder, ca, { otherDigest: true });
  await signNotation('both', builder, ca);
  // Issue 17: the specification's certificate and integrity rules, notation 1.0's signature form, and
  // trust anchored at an intermediate CA.
  const serverAuth = makeLeaf(dir, 'serverauth', ca, '/C=US/ST=WA/O=acme/OU=Build/CN=web', { ext: 'keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning,serverAuth\n' });
  const noKeyUsage = makeLeaf(dir, 'noku', ca, '/C=US/ST=WA/O=acme/OU=Build/CN=noku', { ext: 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=codeSigning\n' });
  await signNotation('serverauth', serverAuth, ca);
  await signNotation('nokeyusage', noKeyUsage, ca);
  await signNotation('mediatype', builder, ca, { mediaType: 'application/vnd.docker.distribution.manifest.v2+json' });
  await signNotation('legacy', builder, ca, { form: 'config' });
  const issuing = makeIntermediate(dir, 'issuing', ca);
  const viaIntermediate = makeLeaf(dir, 'teamleaf', issuing, '/C=US/ST=WA/O=acme/OU=Team/CN=team');
  await signNotation('intermediate', viaIntermediate, [issuing, ca]);
  // Issue 12: 20 junk signatures pushed before a valid one; a logged failure under permissive; an
  // unsigned second tag next to a signed one.
  const junk = images.junk!;
  const junkSubject = { mediaType: junk.mediaType, digest: junk.digest, size: junk.manifest.length };
  await pushSignatures(registry.url, 'n/junk', junkSubject, Array.from({ length: 10 }, (_, i) => Buffer.from(`{"junk":${i}}`)));
  await pushSignatures(registry.url, 'n/junk', junkSubject, await Promise.all(Array.from({ length: 10 }, () => jwsEnvelope({ signer: strayLeaf, chain: [derB64(strayLeaf.cert), derB64(stranger.cert)], target: junkSubject }))));
  await signNotation('junk', builder, ca);
  await signNotation('permissive', builder, ca, { expired: true });
  images.coseV2 = await pushImage(dir, registry.host, 'n/cose', 'v2');
  // A COSE_Sign1 envelope, the other format notation writes.
  const cose = images.cose!;
  const coseTarget = { mediaType: cose.mediaType, digest: cose.digest, size: cose.manifest.length };
  await pushSignatures(registry.url, 'n/cose', coseTarget, [{ bytes: coseEnvelope({ signer: builder, chain: [derB64(builder.cert), derB64(ca.cert)], target: coseTarget }), mediaType: 'application/cose' }]);
  // Docker Content Trust for two of them, with the real notary CLI.
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  for (const name of ['dctonly', 'both']) {
    const gun = `${registry.host}/n/${name}`;
    await cli.initRepo(gun);
    writeFileSync(join(dir, `m-${name}`), images[name]!.manifest);
    await cli.sign(gun, 'v1', join(dir, `m-${name}`));
  }
  // notation's own files, laid out as notation keeps them.
  const notation = writeNotationTrust(
    dir,
    [
      ['ca', 'acme', ca.cert],
      // A store that trusts only the issuing intermediate (not acme's root), for one repository.
      ['ca', 'issuing', issuing.cert],
    ],
    [
      { name: 'acme-builds', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:acme'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=acme, OU=Build'] },
      { name: 'lenient', registryScopes: [`${registry.host}/n/permissive`], signatureVerification: { level: 'permissive' }, trustStores: ['ca:acme'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=acme, OU=Build'] },
      // The state written as S, as the specification allows.
      { name: 'team', registryScopes: [`${registry.host}/n/intermediate`], signatureVerification: { level: 'strict' }, trustStores: ['ca:issuing'], trustedIdentities: ['x509.subject: C=US, S=WA, O=acme, OU=Team'] },
    ],
  );
  proxy = await startTrustgate(dir, {
    upstreams: [
      {
        name: 'lab',
        registry: registry.url,
        gun: registry.host,
        notary: { url: notary.url, ca: notary.caFile },
        notation,
        policy: 'enforce',
        require: 'notation',
        repositories: [
          { match: 'n/dctonly', policy: 'enforce', require: 'any-of' },
          { match: 'n/good', policy: 'enforce', require: 'any-of' },
          { match: 'n/both', policy: 'enforce', require: 'all-of' },
          { match: 'n/plain', policy: 'enforce', require: 'all-of' },
        ],
      },
    ],
    default: 'lab',
  });
});

afterAll(() => stopAndRemove(dir, proxy, notary, registry));

const audits = () => auditRecords(proxy.logFile);

describe('Notation through the proxy', () => {
  it('serves a tag whose digest carries a valid signature, and says which signature', async () => {
    await expectServedWithProof(proxy.url, 'n/good', images.good!, /^notation sha256:[0-9a-f]{64} policy acme-builds$/);
    const r = await pull('n/good');
    expect(r.ok, r.out).toBe(true);
    expect(audits()).toContainEqual(expect.objectContaining({ repo: 'n/good', decision: 'allow', satisfiedBy: expect.stringContaining('notation') }));
  });

  it('serves a tag signed with a COSE_Sign1 envelope', async () => {
    const r = await pull('n/cose');
    expect(r.ok, r.out).toBe(true);
    const res = await fetch(`${proxy.url}/v2/n/cose/manifests/v1`, { method: 'HEAD' });
    expect(res.headers.get('x-trustgate-verified-by')).toMatch(/^notation sha256:/);
  });

  it.each([
    ['a signing CA outside the trust store', 'strangerca', /authenticity: no certificate of the chain is in the trust store/],
    ['a signer that is not a trusted identity', 'identity', /authenticity: signer .* is not a trusted identity/],
    ['an expired signature', 'expired', /expiry: the signature expired at/],
    ['a tampered payload', 'tampered', /integrity: the signature does not verify/],
    ['a signature of another digest', 'wrongdigest', /integrity: the signed descriptor is not the manifest served: digest/],
  ])('refuses %s with NOTATION_INVALID', async (_n, name, reason) => {
    const r = await pull(`n/${name}`);
    expect(r.ok).toBe(false);
    const res = await fetch(`${proxy.url}/v2/n/${name}/manifests/v1`);
    expect(res.status).toBe(403);
    const body = (await res.json()) as { errors: Array<{ message: string }> };
    expect(body).toMatchObject({ errors: [{ code: 'DENIED', detail: { code: 'NOTATION_INVALID' } }] });
    // Each for its own reason (the expired one for expiry, not for an envelope that is invalid), in the audit line.
    expect(await refusalReason(proxy.logFile, `n/${name}`)).toMatch(reason);
  });

  it('refuses an image without any signature with NOTATION_UNSIGNED', async () => {
    const res = await fetch(`${proxy.url}/v2/n/unsigned/manifests/v1`);
    expect(await res.json()).toMatchObject({ errors: [{ detail: { code: 'NOTATION_UNSIGNED' } }] });
  });

  it('any-of: a DCT signature alone is enough', async () => {
    const res = await fetch(`${proxy.url}/v2/n/dctonly/manifests/v1`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-trustgate-verified-by')).toBe('dct targets');
  });

  it('all-of: DCT and Notation together pass; an image with neither is refused', async () => {
    const both = await fetch(`${proxy.url}/v2/n/both/manifests/v1`, { method: 'HEAD' });
    expect(both.status).toBe(200);
    expect(both.headers.get('x-trustgate-verified-by')).toMatch(/^dct targets \+ notation sha256:/);
    const plain = await fetch(`${proxy.url}/v2/n/plain/manifests/v1`);
    expect(plain.status).toBe(403);
  });

  it.each([
    ['a signing certificate whose extended key usage has serverAuth', 'serverauth', /extendedKeyUsage must not contain serverAuth/],
    ['a signing certificate without keyUsage', 'nokeyusage', /the keyUsage extension must be present/],
    ['a signed descriptor with another media type than the manifest', 'mediatype', /media type application\/vnd.docker.distribution.manifest.v2\+json, not application\/vnd.oci.image.manifest.v1\+json/],
  ])('refuses %s, naming the rule (issue 17)', async (_n, name, rule) => {
    const message = await expectRefused(proxy, `n/${name}`, dir, 'NOTATION_INVALID');
    expect(message).toMatch(rule);
    expect(message).not.toMatch(/authenticity: authenticity/);
  });

  it("serves a tag signed in notation 1.0's form (config.mediaType, no artifactType)", async () => {
    const r = await pull('n/legacy');
    expect(r.ok, r.out).toBe(true);
  });

  it('serves a tag whose chain reaches a trust store holding only the intermediate CA, identity written with S', async () => {
    const r = await pull('n/intermediate');
    expect(r.ok, r.out).toBe(true);
    const res = await fetch(`${proxy.url}/v2/n/intermediate/manifests/v1`, { method: 'HEAD' });
    expect(res.headers.get('x-trustgate-verified-by')).toMatch(/policy team$/);
  });

  it('20 junk signatures pushed before a valid one do not hide it (issue 12)', async () => {
    const r = await pull('n/junk');
    expect(r.ok, r.out).toBe(true);
  });

  it('a failure the policy only logs (permissive: expiry) is served and goes into the audit record as notationLogged (issue 12)', async () => {
    const r = await pull('n/permissive');
    expect(r.ok, r.out).toBe(true);
    expect(audits()).toContainEqual(expect.objectContaining({ repo: 'n/permissive', decision: 'allow', notationLogged: [expect.stringMatching(/^expiry: the signature expired at /)] }));
  });

  it('tags/list under require notation lists only tags whose digest carries a satisfying signature (issue 12)', async () => {
    const res = await fetch(`${proxy.url}/v2/n/cose/tags/list`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: 'n/cose', tags: ['v1'] });
    const upstream = await (await fetch(`${registry.url}/v2/n/cose/tags/list`)).json();
    // Upstream also lists v2 (unsigned) and the referrers tag schema's sha256-<hex> index.
    expect((upstream as { tags: string[] }).tags.sort()).toEqual([`sha256-${images.cose!.digest.slice(7)}`, 'v1', 'v2']);
    expect(await (await fetch(`${proxy.url}/v2/n/unsigned/tags/list`)).json()).toEqual({ name: 'n/unsigned', tags: [] });
  });

  it('serves the manifest with its own mediaType as Content-Type', async () => {
    const res = await fetch(`${proxy.url}/v2/n/legacy/manifests/v1`, { headers: { accept: '*/*' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(JSON.parse(images.legacy!.manifest.toString()).mediaType);
  });
});
