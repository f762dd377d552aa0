// What resign writes, checked by independent readers: cosign payloads and signatures by trustgate's own
// cosign verifier and by node:crypto, the .sig manifest append; Notation JWS by jose and trustgate's
// verifier, COSE by trustgate's verifier, with openssl-issued certificates (RSA and EC); the signature
// manifest and the referrers tag schema index; DCT provenance over the real notary 0.3 fixture; the report.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, verify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flattenedVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { checkSimpleSigningPayload } from '../../../src/signatures/cosign/signed-subject.js';
import { verifyClassicSignature } from '../../../src/signatures/cosign/verify-signature.js';
import { verifyCoseEnvelope } from '../../../src/signatures/notation/cose-envelope.js';
import { verifyJwsEnvelope } from '../../../src/signatures/notation/jws-envelope.js';
import { sigManifestWith, signatureLayer, signatureTag, signPayload, simpleSigningPayload } from '../../../src/resign/cosign-signer.js';
import { coseEnvelope, jwsEnvelope, notationSignatureManifest, parseChain, referrersIndexWith, THUMBPRINT_ANNOTATION } from '../../../src/resign/notation-signer.js';
import { ANNOTATION_KEYIDS, ANNOTATION_ROLE, ANNOTATION_VERIFIED_AT, dctProvenance, provenanceAnnotations } from '../../../src/resign/provenance.js';
import { exitCodeOf, summaryTable, type ReportLine } from '../../../src/resign/report.js';
import { TrustClient, type MetadataFetcher } from '../../../src/signatures/dct/client.js';
import { MemoryTrustState } from '../../../src/signatures/dct/state/memory-state.js';
import { TrustService } from '../../../src/signatures/dct/trust-service.js';
import { makeCa, makeLeaf } from '../../support/notation-sign.js';

const manifest = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}');
const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: manifest.length };
const code = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe('cosign: simple-signing payload, signature and .sig manifest', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

  it('signs a payload naming the digest that trustgate verifies with the public key (and node:crypto over its bytes)', () => {
    const payload = simpleSigningPayload('127.0.0.1:5000/team/app', digest);
    expect(JSON.parse(payload.toString())).toEqual({ critical: { identity: { 'docker-reference': '127.0.0.1:5000/team/app' }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional: null });
    checkSimpleSigningPayload(payload, digest);
    const signature = signPayload(payload, privateKey);
    // ASN.1 DER (SEQUENCE), as cosign writes it.
    expect(Buffer.from(signature, 'base64')[0]).toBe(0x30);
    expect(verify('sha256', payload, publicKey, Buffer.from(signature, 'base64'))).toBe(true);
    expect(verifyClassicSignature({ payload, signature }, digest, { keys: [{ name: 'k', key: publicKey }], identities: [] }).by).toBe('key k');
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
    expect(() => verifyClassicSignature({ payload, signature }, digest, { keys: [{ name: 'k', key: other }], identities: [] })).toThrow();
  });

  it('refuses keys other than ECDSA P-256 with USAGE', () => {
    expect(code(() => signPayload(Buffer.from('x'), generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey))).toBe('USAGE');
    expect(code(() => signPayload(Buffer.from('x'), generateKeyPairSync('ed25519').privateKey))).toBe('USAGE');
  });

  it('appends a layer to an existing .sig manifest, keeping the other layers, and lists every layer in the config', () => {
    expect(signatureTag(digest)).toBe(`sha256-${digest.slice(7)}.sig`);
    const p1 = simpleSigningPayload('a/b', digest);
    const first = sigManifestWith(undefined, signatureLayer(p1, signPayload(p1, privateKey), { [ANNOTATION_ROLE]: 'targets' }), { [ANNOTATION_ROLE]: 'targets' });
    const m1 = JSON.parse(first.manifest.toString());
    expect(m1).toMatchObject({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', size: p1.length, annotations: { 'dev.cosignproject.cosign/signature': expect.any(String), [ANNOTATION_ROLE]: 'targets' } }] });
    expect(m1.config.digest).toBe(`sha256:${createHash('sha256').update(first.config).digest('hex')}`);
    const second = sigManifestWith(first.manifest, signatureLayer(p1, 'c2ln', {}), { [ANNOTATION_ROLE]: 'targets/releases' });
    const m2 = JSON.parse(second.manifest.toString());
    expect(m2.layers).toHaveLength(2);
    expect(m2.layers[0]).toEqual(m1.layers[0]);
    expect(m2.annotations[ANNOTATION_ROLE]).toBe('targets/releases');
    expect(JSON.parse(second.config.toString()).rootfs.diff_ids).toEqual(m2.layers.map((l: { digest: string }) => l.digest));
    expect(code(() => sigManifestWith(Buffer.from('nope'), m1.layers[0], {}))).toBe('UPSTREAM_INVALID');
  });
});

describe('Notation: JWS and COSE envelopes with an x509 chain, the signature manifest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trustgate-resign-notation-'));
  const ca = makeCa(dir, 'acme');
  const chainOf = (leaf: { key: string; cert: string }) => {
    const key = createPrivateKey(readFileSync(leaf.key));
    return { key, chain: parseChain(readFileSync(leaf.cert, 'utf8') + readFileSync(ca.cert, 'utf8'), key) };
  };
  const anchors = [new X509Certificate(readFileSync(ca.cert))];

  it.each(['ec256', 'ec384', 'rsa3072'] as const)('a JWS envelope (%s) that jose and trustgate verify, naming the descriptor', async (kind) => {
    const { key, chain } = chainOf(makeLeaf(dir, `jws-${kind}`, ca, `/C=US/O=acme/CN=jws-${kind}`, { key: kind }));
    const now = new Date(); // after the certificate was issued
    const env = jwsEnvelope({ key, chain, target, signingTime: now });
    const doc = JSON.parse(env.toString());
    const { payload, protectedHeader } = await flattenedVerify(doc, createPublicKey(key), { crit: { 'io.cncf.notary.signingScheme': true } });
    expect(JSON.parse(Buffer.from(payload).toString())).toEqual({ targetArtifact: target });
    expect(protectedHeader).toMatchObject({ alg: { ec256: 'ES256', ec384: 'ES384', rsa3072: 'PS384' }[kind], cty: 'application/vnd.cncf.notary.payload.v1+json', 'io.cncf.notary.signingScheme': 'notary.x509' });
    const v = verifyJwsEnvelope(env, anchors, now);
    expect(v.problems.map((p) => `${p.check}: ${p.reason}`)).toEqual([]);
    expect(v.integrity && v.authenticity).toBe(true);
    expect(v.target).toEqual(target);
  });

  it.each(['ec256', 'rsa2048'] as const)('a COSE_Sign1 envelope (%s) that trustgate verifies', (kind) => {
    const { key, chain } = chainOf(makeLeaf(dir, `cose-${kind}`, ca, `/C=US/O=acme/CN=cose-${kind}`, { key: kind }));
    const now = new Date();
    const env = coseEnvelope({ key, chain, target, signingTime: now });
    expect(env[0]).toBe(0xd2);
    const v = verifyCoseEnvelope(env, anchors, now);
    expect(v.problems.map((p) => `${p.check}: ${p.reason}`)).toEqual([]);
    expect(v.integrity && v.authenticity).toBe(true);
    expect(v.target).toEqual(target);
    // One bit of the payload changed: integrity fails.
    const bad = Buffer.from(env);
    bad[bad.indexOf(Buffer.from(digest.slice(7, 15)))]! ^= 1;
    expect(verifyCoseEnvelope(bad, anchors, now).integrity).toBe(false);
  });

  it('refuses a chain whose leaf is not the key', () => {
    const leaf = makeLeaf(dir, 'other', ca, '/C=US/O=acme/CN=other');
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    expect(code(() => parseChain(readFileSync(leaf.cert, 'utf8'), key))).toBe('USAGE');
    expect(code(() => parseChain('no certificate', key))).toBe('USAGE');
  });

  it('writes the signature manifest of the specification, and a referrers index that lists each signature once', () => {
    const { key, chain } = chainOf(makeLeaf(dir, 'm', ca, '/C=US/O=acme/CN=m'));
    const now = new Date();
    const env = jwsEnvelope({ key, chain, target, signingTime: now });
    const m = JSON.parse(notationSignatureManifest(target, { bytes: env, mediaType: 'application/jose+json' }, chain, { [ANNOTATION_ROLE]: 'targets' }).toString());
    expect(m).toMatchObject({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.cncf.notary.signature',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 },
      layers: [{ mediaType: 'application/jose+json', size: env.length }],
      subject: target,
      annotations: { [ANNOTATION_ROLE]: 'targets' },
    });
    expect(JSON.parse(m.annotations[THUMBPRINT_ANNOTATION])).toEqual(chain.map((c) => createHash('sha256').update(c.raw).digest('hex')));
    const entry = { mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.cncf.notary.signature', digest: `sha256:${'1'.repeat(64)}`, size: 10 };
    const other = { ...entry, digest: `sha256:${'2'.repeat(64)}` };
    const once = referrersIndexWith(undefined, entry);
    const twice = referrersIndexWith(referrersIndexWith(once, other), entry);
    expect(JSON.parse(twice.toString())).toEqual({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry, other] });
  });
});

describe('DCT provenance', () => {
  it('names the role, the keys whose signatures verify, and when the set was verified (real notary 0.3 fixture)', async () => {
    const dir = new URL('../../fixtures/notary0.3-tst/', import.meta.url);
    const files = Object.fromEntries(['root', 'timestamp', 'snapshot', 'targets', 'targets/releases'].map((r) => [r, readFileSync(new URL(`${r}.json`, dir))]));
    const fetcher: MetadataFetcher = { source: 'test', fetch: async (req) => files[req.role] ?? null };
    const clock = { now: () => new Date('2026-01-01T00:00:00Z') };
    const service = new TrustService({ client: new TrustClient({ fetcher, state: new MemoryTrustState(), clock }), clock, cacheSeconds: 300 });
    const gun = 'docker.com/notary0.3/tst';
    const t = await service.resolve(gun, 'hello');
    const set = await service.verifiedSet(gun);
    const p = dctProvenance(set, t);
    expect(p.role).toBe(t.role);
    expect(p.keyIds.length).toBeGreaterThan(0);
    expect(p.keyIds.every((id) => set.targets.get(t.role)!.role.keyids.includes(id))).toBe(true);
    expect(p.verifiedAt).toBe('2026-01-01T00:00:00.000Z');
    expect(provenanceAnnotations(p)).toMatchObject({ [ANNOTATION_ROLE]: t.role, [ANNOTATION_KEYIDS]: p.keyIds.join(','), [ANNOTATION_VERIFIED_AT]: p.verifiedAt });
  });
});

describe('report', () => {
  const line = (result: ReportLine['result']): ReportLine => ({ image: 'h/r', tag: 'v1', digest, dct: null, signature: null, result, code: result === 'refused' ? 'TAG_NOT_SIGNED' : null });
  it('exits 0 only when every tag is signed, present or (dry run) would be', () => {
    expect(exitCodeOf([line('signed'), line('present'), line('would-sign')])).toBe(0);
    expect(exitCodeOf([line('signed'), line('refused')])).toBe(1);
    expect(exitCodeOf([line('failed')])).toBe(1);
    expect(exitCodeOf([])).toBe(1);
  });
  it('summarises in a table with totals', () => {
    const t = summaryTable([line('signed'), line('refused')]);
    expect(t.split('\n')[0]).toMatch(/^IMAGE\s+TAG\s+RESULT\s+CODE\s+DIGEST$/);
    expect(t).toMatch(/h\/r\s+v1\s+refused\s+TAG_NOT_SIGNED\s+sha256:/);
    expect(t.split('\n').pop()).toBe('1 signed, 1 refused');
  });
});
