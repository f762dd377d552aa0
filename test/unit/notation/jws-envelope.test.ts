// Notary Project JWS envelopes made with a well-kept JOSE library (jose) and openssl-issued
// certificates, verified by our node:crypto verifier, then judged by a trust policy: valid, wrong CA,
// wrong identity, expired, tampered payload, wrong digest, and malformed headers.
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyJwsEnvelope } from '../../../src/signatures/notation/jws-envelope.js';
import { parseTrustPolicy } from '../../../src/signatures/notation/trust-policy.js';
import { judgeSignature } from '../../../src/signatures/notation/verdict.js';
import { derB64, jwsEnvelope, makeCa, makeLeaf } from '../../support/notation-sign.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-notation-'));
const root = makeCa(dir, 'acme');
const stranger = makeCa(dir, 'stranger');
const signer = makeLeaf(dir, 'builder', root, '/C=US/ST=WA/O=acme/OU=Build/CN=builder');
const intruder = makeLeaf(dir, 'intruder', root, '/C=US/ST=WA/O=acme/OU=Marketing/CN=intruder'); // same CA, other identity
const rootCert = new X509Certificate(readFileSync(root.cert));
const strangerCert = new X509Certificate(readFileSync(stranger.cert));
const der = derB64;

const manifest = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}');
const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
const NOW = new Date();

function envelope(opts: { protectedOverride?: Record<string, unknown>; target?: { mediaType: string; digest: string; size: number }; key?: string; chain?: string[] } = {}): Promise<Buffer> {
  return jwsEnvelope({
    signer: { key: opts.key ?? signer.key, cert: signer.cert },
    chain: opts.chain ?? [der(signer.cert), der(root.cert)],
    target: opts.target ?? { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: manifest.length },
    signingTime: NOW, // certificates were issued just before NOW
    protectedOverride: opts.protectedOverride,
  });
}

const policy = parseTrustPolicy(
  JSON.stringify({
    version: '1.0',
    trustPolicies: [{ name: 'acme', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:acme'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=acme, OU=Build'] }],
  }),
).trustPolicies[0]!;
const judge = async (env: Buffer, anchors = [rootCert], now = NOW) => judgeSignature(policy, verifyJwsEnvelope(env, anchors, now), { digest, size: manifest.length, mediaType: 'application/vnd.oci.image.manifest.v1+json' });

describe('Notary Project JWS envelopes', () => {
  it('a valid signature from a trusted identity is allowed', async () => {
    const v = verifyJwsEnvelope(await envelope(), [rootCert], NOW);
    expect(v).toMatchObject({ integrity: true, authenticity: true, authenticTimestamp: true, expiryOk: true, signingScheme: 'notary.x509', target: { digest } });
    expect(judgeSignature(policy, v, { digest, size: manifest.length, mediaType: 'application/vnd.oci.image.manifest.v1+json' })).toEqual({ allowed: true, enforced: [], logged: [] });
  });

  it('refuses a chain to a CA outside the trust store', async () => {
    const r = await judge(await envelope(), [strangerCert]);
    expect(r.allowed).toBe(false);
    expect(r.enforced.map((f) => f.check)).toContain('authenticity');
  });

  it('refuses a signer that is not a trusted identity', async () => {
    const r = await judge(await envelope({ key: intruder.key, chain: [der(intruder.cert), der(root.cert)] }));
    expect(r).toMatchObject({ allowed: false, enforced: [{ check: 'authenticity', reason: expect.stringContaining('not a trusted identity') }] });
  });

  it('refuses an expired signature under strict, logs it under permissive', async () => {
    const env = await envelope({ protectedOverride: { crit: ['io.cncf.notary.signingScheme', 'io.cncf.notary.expiry'], 'io.cncf.notary.expiry': new Date(NOW.getTime() + 1000).toISOString() } });
    // The expiry must be after the signing time (else the envelope itself is invalid): judge later.
    const later = new Date(NOW.getTime() + 5000);
    expect((await judge(env, [rootCert], later)).enforced.map((f) => f.check)).toEqual(['expiry']);
    const permissive = { ...policy, level: 'permissive' as const, actions: { ...policy.actions, expiry: 'log' as const } };
    const r = judgeSignature(permissive, verifyJwsEnvelope(env, [rootCert], later), { digest, size: manifest.length, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    expect(r).toMatchObject({ allowed: true, logged: [{ check: 'expiry' }] });
  });

  it('refuses when the certificate chain is not valid at verification time', async () => {
    const r = await judge(await envelope(), [rootCert], new Date(NOW.getTime() + 60 * 86400e3));
    expect(r.enforced.map((f) => f.check)).toContain('authenticTimestamp');
  });

  it('refuses a tampered payload', async () => {
    const doc = JSON.parse((await envelope()).toString());
    const p = JSON.parse(Buffer.from(doc.payload, 'base64url').toString());
    p.targetArtifact.size += 1;
    doc.payload = Buffer.from(JSON.stringify(p)).toString('base64url');
    const r = await judge(Buffer.from(JSON.stringify(doc)));
    expect(r.allowed).toBe(false);
    expect(r.enforced.map((f) => f.check)).toContain('integrity');
  });

  it('refuses a valid signature of another manifest (wrong digest)', async () => {
    const env = await envelope({ target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: manifest.length } });
    expect(await judge(env)).toMatchObject({ allowed: false, enforced: [{ check: 'integrity', reason: expect.stringContaining('is not the manifest') }] });
  });

  it.each<[string, Record<string, unknown>]>([
    ['alg none', { alg: 'none' }],
    ['HS256', { alg: 'HS256' }],
    ['wrong content type', { cty: 'application/json' }],
    ['signing scheme not critical', { crit: ['io.cncf.notary.expiry'], 'io.cncf.notary.expiry': new Date(NOW.getTime() + 86400e3).toISOString() }],
    ['unknown critical header', { crit: ['io.cncf.notary.signingScheme', 'x-unknown'], 'x-unknown': 'v' }],
    ['expiry not critical', { 'io.cncf.notary.expiry': new Date(NOW.getTime() + 86400e3).toISOString() }],
    ['unknown signing scheme', { 'io.cncf.notary.signingScheme': 'notary.default' }],
  ])('refuses a malformed envelope: %s', async (_n, override) => {
    // jose refuses to *make* some of these (alg none), so build the protected header by hand then.
    const good = JSON.parse((await envelope()).toString());
    const header = { ...JSON.parse(Buffer.from(good.protected, 'base64url').toString()), ...override };
    good.protected = Buffer.from(JSON.stringify(header)).toString('base64url');
    expect(() => verifyJwsEnvelope(Buffer.from(JSON.stringify(good)), [rootCert], NOW)).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });
});
