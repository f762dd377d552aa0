// Signature repositories (issue 22, point 3: COSIGN_REPOSITORY semantics) and cosign.tlog (point 5),
// with real parts: images in one real docker-registry, their signatures in a separate repository
// `sigs/store` on a second docker-registry behind token authentication (served by its own upstream,
// gun sigstore.test, with credentials), Notation signatures in `sigs/notation` on the images'
// registry, a Rekor stand-in for the transparency-log entries, a real notary-server for the DCT side
// of the migration policy, and skopeo pulling through trustgate.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCosignKey, pushBundleReferrers, pushClassicSignatures, signPayload, simpleSigningPayload, type ClassicLayer } from '../support/cosign-sign.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { derB64, jwsEnvelope, makeLeaf, pushSignatures, writeNotationFiles } from '../support/notation-sign.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { cosignSignStatement, logKeyedSignature, signKeyedBundle, startRekor, trustedRootJson, type RekorStandIn } from '../support/sigstore-lab.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { auditRecords, expectRefused, expectServedWithProof, manifestAnswer, skopeoPull } from '../support/through-proxy.js';
import { startTokenServer, type TokenServer } from '../support/token-server.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const SIG_GUN = 'sigstore.test';
const SIG_REPO = 'sigs/store';
let dir: string;
let images: Registry;
let sigs: Registry;
let tokens: TokenServer;
let rekor: RekorStandIn;
let notary: NotaryLab;
let proxy: Trustgate;
let migrating: Trustgate;
const img: Record<string, PushedImage> = {};
const signer = makeCosignKey();

const keyed = (name: string, over: { digestOf?: string } = {}): ClassicLayer => {
  const payload = simpleSigningPayload(img[over.digestOf ?? name]!.digest, { repo: `${images.host}/${name}` });
  return { payload, signature: signPayload(payload, signer.privateKey) };
};
const subject = (name: string) => ({ mediaType: img[name]!.mediaType, digest: img[name]!.digest, size: img[name]!.manifest.length });
/**
 * Requests the images' registry logged for signature artifacts in the image's own repository, answered
 * or not (Registry.requests() keeps only the answered ones, and a missing .sig tag is a 404).
 */
const ownRepoSignatureLookups = (repo: string) =>
  readFileSync(images.logFile, 'utf8')
    .split('\n')
    .flatMap((l) => /"http\.request\.uri":"([^"]+)"/.exec(l)?.[1] ?? [])
    .filter((u) => u.startsWith(`/v2/${repo}/`) && /sha256-[0-9a-f]{64}|referrers/.test(u));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-sigrepo-'));
  const pki = await makePki(dir);
  [images, notary, rekor, tokens] = await Promise.all([
    startRegistry(dir),
    startNotary(dir, pki, { signer: 'local' }),
    startRekor(),
    startTokenServer({ dir, pki, username: 'sig-reader', password: 'sig-secret' }),
  ]);
  const names = ['b/bundle', 'b/otherbundle', 'c/good', 'c/otherdigest', 'c/unsigned', 'own/good', 'n/good', 'n/otherdigest', 'n/unsigned', 'nown/good', 'tlog/nolog', 'tlog/logged', 'tlogopt/nolog', 'm/dctonly', 'm/cosignonly', 'm/neither'];
  for (const name of names) img[name] = await pushImage(dir, images.host, name, 'v1');

  // cosign: every signature in sigs/store, none next to the images. Filled while the registry is open,
  // then the same storage is served behind token auth.
  const open = await startRegistry(dir);
  for (const name of ['c/good', 'own/good', 'tlogopt/nolog', 'tlog/nolog', 'm/cosignonly']) await pushClassicSignatures(open.url, SIG_REPO, img[name]!.digest, [keyed(name)]);
  // A valid signature of c/good, under c/otherdigest's tag: found at the right place, signs the wrong digest.
  await pushClassicSignatures(open.url, SIG_REPO, img['c/otherdigest']!.digest, [keyed('c/otherdigest', { digestOf: 'c/good' })]);
  // Sigstore bundles (cosign sign --key --new-bundle-format) as referrers of the digest in sigs/store.
  await pushBundleReferrers(open.url, SIG_REPO, subject('b/bundle'), [await signKeyedBundle(signer.privateKey, signer.publicPem, cosignSignStatement(img['b/bundle']!.digest))]);
  await pushBundleReferrers(open.url, SIG_REPO, subject('b/otherbundle'), [await signKeyedBundle(signer.privateKey, signer.publicPem, cosignSignStatement(img['b/bundle']!.digest))]);
  const logged = keyed('tlog/logged');
  await pushClassicSignatures(open.url, SIG_REPO, img['tlog/logged']!.digest, [{ ...logged, rekorBundle: await logKeyedSignature(rekor, logged.payload, logged.signature, signer.publicPem) }]);
  await open.stop();
  sigs = await startRegistry(dir, { storage: open.storage, tokenAuth: { realm: tokens.realm, service: 'sigs.test', issuer: tokens.issuer, rootCertBundle: tokens.certFile } });

  // Notation: signatures as referrers (tag schema) of each digest in sigs/notation on the images' registry.
  const n = writeNotationFiles(dir);
  const builder = makeLeaf(dir, 'builder', n.ca, '/C=US/ST=WA/O=acme/OU=Build/CN=builder');
  const envelope = (target: string) => jwsEnvelope({ signer: builder, chain: [derB64(builder.cert), derB64(n.ca.cert)], target: subject(target) });
  for (const name of ['n/good', 'nown/good']) await pushSignatures(images.url, 'sigs/notation', subject(name), [await envelope(name)]);
  // Listed under n/otherdigest's digest, but the envelope signs n/good's.
  await pushSignatures(images.url, 'sigs/notation', subject('n/otherdigest'), [await envelope('n/good')]);

  const keyFile = join(dir, 'cosign.pub');
  writeFileSync(keyFile, signer.publicPem);
  const rootFile = join(dir, 'trusted_root.json');
  writeFileSync(rootFile, trustedRootJson([], [rekor]));
  const sigRepository = `${SIG_GUN}/${SIG_REPO}`;
  const withRoot = { keys: [keyFile], trustedRoot: rootFile, identities: [{ issuer: 'https://issuer.test', subject: 'nobody@issuer.test' }], repository: sigRepository };
  // The signature store: an upstream of its own, with credentials; policy off, it serves no images.
  const sigUpstream = { name: 'sigs', registry: sigs.url, gun: SIG_GUN, policy: 'off', username: 'sig-reader', passwordEnv: 'SIG_SECRET', realms: [new URL(tokens.realm).origin], ca: pki.caFile, insecure: true };
  proxy = await startTrustgate(
    dir,
    {
      upstreams: [
        {
          name: 'lab',
          registry: images.url,
          gun: images.host,
          // No notary server: cosign (or Notation) alone.
          policy: 'enforce',
          require: 'cosign',
          cosign: { keys: [keyFile], repository: sigRepository },
          notation: { trustPolicy: n.trustPolicy, trustStore: n.trustStore },
          repositories: [
            // Its own cosign without repository: the image's own repository, as before.
            { match: 'own/*', policy: 'enforce', cosign: { keys: [keyFile] } },
            { match: 'n/*', policy: 'enforce', require: 'notation', notation: { repository: `${images.host}/sigs/notation` } },
            { match: 'nown/*', policy: 'enforce', require: 'notation' },
            { match: 'tlog/*', policy: 'enforce', cosign: { ...withRoot, tlog: 'required' } },
            { match: 'tlogopt/*', policy: 'enforce', cosign: { ...withRoot, tlog: 'optional' } },
          ],
        },
        sigUpstream,
      ],
      default: 'lab',
    },
    'sigrepo',
    { SIG_SECRET: 'sig-secret' },
  );

  // Migration: DCT for m/dctonly with the real notary CLI; cosign for m/cosignonly in the signature repository.
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  const gun = `${images.host}/m/dctonly`;
  await cli.initRepo(gun);
  writeFileSync(join(dir, 'm-dctonly'), img['m/dctonly']!.manifest);
  await cli.sign(gun, 'v1', join(dir, 'm-dctonly'));
  migrating = await startTrustgate(
    dir,
    {
      upstreams: [
        { name: 'lab', registry: images.url, gun: images.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce', require: { 'any-of': ['dct', 'cosign'] }, cosign: { keys: [keyFile], repository: sigRepository } },
        sigUpstream,
      ],
      default: 'lab',
    },
    'migrating',
    { SIG_SECRET: 'sig-secret' },
  );
});

afterAll(async () => {
  await tokens?.close();
  await new Promise((r) => (rekor ? rekor.server.close(r) : r(undefined)));
  await stopAndRemove(dir, proxy, migrating, notary, sigs, images);
});

describe('cosign.repository: signatures read from the signature repository', () => {
  it('the signature store refuses anonymous reads (the credentials are really needed)', async () => {
    expect((await fetch(`${sigs.url}/v2/${SIG_REPO}/tags/list`)).status).toBe(401);
  });

  it('serves a tag whose signature is only in the signature repository, read with that upstream’s credentials', async () => {
    tokens.requests.length = 0;
    await expectServedWithProof(proxy.url, 'c/good', img['c/good']!, /^cosign key sha256:[0-9a-f]{64} sha256:[0-9a-f]{64} from sigstore\.test\/sigs\/store$/);
    const r = await skopeoPull(proxy.host, 'c/good', 'v1', dir);
    expect(r.ok, r.out).toBe(true);
    // The token for sigs/store came from the sig upstream's realm with its Basic credentials.
    expect(tokens.requests).toContainEqual(expect.objectContaining({ scope: `repository:${SIG_REPO}:pull`, authorization: `Basic ${Buffer.from('sig-reader:sig-secret').toString('base64')}` }));
    // Instead of the image's own repository, not as well.
    expect(ownRepoSignatureLookups('c/good')).toEqual([]);
    expect(auditRecords(proxy.logFile)).toContainEqual(expect.objectContaining({ repo: 'c/good', decision: 'allow', satisfiedBy: expect.stringMatching(/^cosign key .* from sigstore\.test\/sigs\/store$/) }));
  });

  it('refuses a signature of another digest placed under the right tag (COSIGN_INVALID)', async () => {
    const message = await expectRefused(proxy, 'c/otherdigest', dir, 'COSIGN_INVALID');
    expect(message).toMatch(new RegExp(`in signature repository ${SIG_GUN}/${SIG_REPO}`));
    expect(message).toMatch(new RegExp(`the payload signs ${img['c/good']!.digest}, not ${img['c/otherdigest']!.digest}`));
  });

  it('serves a tag whose Sigstore bundle is a referrer of its digest in the signature repository', async () => {
    await expectServedWithProof(proxy.url, 'b/bundle', img['b/bundle']!, /^cosign key sha256:[0-9a-f]{64} sha256:[0-9a-f]{64} from sigstore\.test\/sigs\/store$/);
    expect(ownRepoSignatureLookups('b/bundle')).toEqual([]);
  });

  it('refuses a bundle listed under this digest whose statement signs another digest (COSIGN_INVALID)', async () => {
    expect(await expectRefused(proxy, 'b/otherbundle', dir, 'COSIGN_INVALID')).toMatch(/the statement's subject is not sha256:/);
  });

  it('refuses an image with no signature there (COSIGN_UNSIGNED), naming the signature repository', async () => {
    const message = await expectRefused(proxy, 'c/unsigned', dir, 'COSIGN_UNSIGNED');
    expect(message).toMatch(/has no cosign signature in signature repository sigstore\.test\/sigs\/store/);
  });

  it('without repository the same signature is not found: COSIGN_UNSIGNED (the image’s own repository)', async () => {
    await expectRefused(proxy, 'own/good', dir, 'COSIGN_UNSIGNED');
    expect(ownRepoSignatureLookups('own/good').length).toBeGreaterThan(0);
  });

  it('tags/list lists the tags whose digest has a signature in the signature repository', async () => {
    expect(await (await fetch(`${proxy.url}/v2/c/good/tags/list`)).json()).toEqual({ name: 'c/good', tags: ['v1'] });
    expect(await (await fetch(`${proxy.url}/v2/c/otherdigest/tags/list`)).json()).toEqual({ name: 'c/otherdigest', tags: [] });
  });
});

describe('notation.repository: referrers of the digest in the signature repository', () => {
  it('serves a tag whose Notation signature is only in the signature repository', async () => {
    await expectServedWithProof(proxy.url, 'n/good', img['n/good']!, new RegExp(`^notation sha256:[0-9a-f]{64} policy all from ${images.host}/sigs/notation$`));
    const r = await skopeoPull(proxy.host, 'n/good', 'v1', dir);
    expect(r.ok, r.out).toBe(true);
    expect(ownRepoSignatureLookups('n/good')).toEqual([]);
  });

  it('refuses a signature of another digest listed under this digest (NOTATION_INVALID)', async () => {
    const message = await expectRefused(proxy, 'n/otherdigest', dir, 'NOTATION_INVALID');
    expect(message).toMatch(new RegExp(`in signature repository ${images.host}/sigs/notation`));
    expect(message).toMatch(new RegExp(`digest ${img['n/good']!.digest}, not ${img['n/otherdigest']!.digest}`));
  });

  it('refuses an image with no signature there (NOTATION_UNSIGNED)', async () => {
    expect(await expectRefused(proxy, 'n/unsigned', dir, 'NOTATION_UNSIGNED')).toMatch(/in signature repository/);
  });

  it('without repository the signature is not found: NOTATION_UNSIGNED', async () => {
    await expectRefused(proxy, 'nown/good', dir, 'NOTATION_UNSIGNED');
  });
});

describe('cosign.tlog', () => {
  it('required: refuses a keyed signature without a transparency-log entry (COSIGN_INVALID)', async () => {
    expect(await expectRefused(proxy, 'tlog/nolog', dir, 'COSIGN_INVALID')).toMatch(/no transparency-log entry, and cosign tlog is required/);
  });

  it('required: serves a keyed signature whose Rekor entry verifies against the trusted root', async () => {
    await expectServedWithProof(proxy.url, 'tlog/logged', img['tlog/logged']!, /^cosign key sha256:[0-9a-f]{64} /);
  });

  it('optional: serves a keyed signature by the key alone', async () => {
    await expectServedWithProof(proxy.url, 'tlogopt/nolog', img['tlogopt/nolog']!, /^cosign key sha256:[0-9a-f]{64} /);
  });
});

describe('migration policy any-of: [dct, cosign] with a signature repository', () => {
  it('serves a DCT-only tag', async () => {
    const res = await fetch(`${migrating.url}/v2/m/dctonly/manifests/v1`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-trustgate-verified-by')).toBe('dct targets');
    const r = await skopeoPull(migrating.host, 'm/dctonly', 'v1', dir);
    expect(r.ok, r.out).toBe(true);
  });

  it('serves a cosign-only tag signed in the signature repository', async () => {
    await expectServedWithProof(migrating.url, 'm/cosignonly', img['m/cosignonly']!, /^cosign key /);
    const r = await skopeoPull(migrating.host, 'm/cosignonly', 'v1', dir);
    expect(r.ok, r.out).toBe(true);
  });

  it('refuses an unsigned tag', async () => {
    const { status, body } = await manifestAnswer(migrating.url, 'm/neither');
    expect(status).toBe(403);
    expect(body.errors[0]!.detail.code).toBe('COSIGN_UNSIGNED');
    expect(auditRecords(migrating.logFile)).toContainEqual(expect.objectContaining({ repo: 'm/neither', decision: 'deny', reason: expect.stringMatching(/TRUST_DATA_MISSING.*COSIGN_UNSIGNED/) }));
  });
});

describe('trustgate inspect with a signature repository', () => {
  it('lists the signatures found in the signature repository, verified, read with its upstream’s credentials', async () => {
    const configFile = join(dir, readdirSync(dir).find((f) => /^sigrepo-\d+\.yaml$/.test(f))!);
    const r = await runCli(['inspect', `${images.host}/c/good:v1`, '--json', '--config', configFile], { SIG_SECRET: 'sig-secret' });
    expect(r.code, r.stdout).toBe(0);
    const [view] = JSON.parse(r.stdout) as Array<{ CosignSignatures: Array<{ Tag: string; Digest: string; Signatures: Array<{ Form: string; Verified: boolean; Signer?: string }> }> }>;
    expect(view!.CosignSignatures).toEqual([{ Tag: 'v1', Digest: img['c/good']!.digest, Signatures: [expect.objectContaining({ Form: 'tag', Verified: true, Signer: expect.stringMatching(/^key sha256:[0-9a-f]{64}$/) })] }]);
    const other = await runCli(['inspect', `${images.host}/c/otherdigest:v1`, '--json', '--config', configFile], { SIG_SECRET: 'sig-secret' });
    expect(JSON.parse(other.stdout)[0].CosignSignatures[0].Signatures).toEqual([expect.objectContaining({ Verified: false, Reason: expect.stringMatching(/the payload signs/) })]);
  });
});

describe('config check', () => {
  it('refuses a signature repository no upstream serves, naming the key', async () => {
    const file = join(dir, 'bad-sigrepo.yaml');
    writeFileSync(file, stringify({ listen: '127.0.0.1:0', upstreams: [{ name: 'lab', registry: images.url, gun: images.host, policy: 'enforce', require: 'cosign', cosign: { keys: [join(dir, 'cosign.pub')], repository: 'ghcr.io/acme/signatures' } }] }));
    const r = await runCli(['config', 'check', file]);
    expect(r.code).toBe(1);
    expect(r.out.error).toBe('CONFIG_INVALID');
    expect(r.out.message).toMatch(/upstreams\[0\]\.cosign\.repository: got "ghcr\.io\/acme\/signatures", expected a repository under the gun of an upstream/);
    // start refuses it the same way, before listening.
    const started = await runCli(['start', '--config', file]);
    expect(started.code).not.toBe(0);
    expect(started.out.error).toBe('CONFIG_INVALID');
    expect(started.out.message).toMatch(/cosign\.repository: got "ghcr\.io\/acme\/signatures"/);
  });
});
