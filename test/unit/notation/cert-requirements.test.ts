// The specification's certificate requirements (signature-specification.md "Certificate
// Requirements"), each broken by a certificate made with openssl, each refused with a message naming
// the rule; and the same through a whole envelope: integrity fails (as in notation-go), so every
// verification level refuses.
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chainProblems } from '../../../src/signatures/notation/cert-requirements.js';
import { verifyJwsEnvelope } from '../../../src/signatures/notation/jws-envelope.js';
import { parseTrustPolicy } from '../../../src/signatures/notation/trust-policy.js';
import { describe as describeProblem, judgeSignature } from '../../../src/signatures/notation/verdict.js';
import { CA_EXT, derB64, jwsEnvelope, LEAF_EXT, makeCa, makeIntermediate, makeLeaf, type CertOptions, type KeyPair } from '../../support/notation-sign.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-certreq-'));
const root = makeCa(dir, 'root');
const inter = makeIntermediate(dir, 'inter', root);
const cert = (k: KeyPair) => new X509Certificate(readFileSync(k.cert));
let n = 0;
const leaf = (opts: CertOptions = {}, issuer = root) => makeLeaf(dir, `leaf${n++}`, issuer, '/C=US/ST=WA/O=acme/OU=Build/CN=builder', opts);
const problems = (...chain: KeyPair[]) => chainProblems(chain.map(cert), 'codeSigning');

describe('code signing certificate requirements', () => {
  it('a leaf and root, and a leaf, intermediate and root, meeting them all pass', () => {
    expect(problems(leaf(), root)).toEqual([]);
    expect(problems(leaf({}, inter), inter, root)).toEqual([]);
    expect(problems(leaf({ key: 'rsa2048' }), root)).toEqual([]);
    expect(problems(leaf({ key: 'ec384' }), root)).toEqual([]);
  });

  it('a self-signed signing certificate alone passes when it meets the leaf rules', () => {
    const self = makeCa(dir, 'selfsigned', { ext: LEAF_EXT });
    expect(problems(self)).toEqual([]);
  });

  it.each<[string, CertOptions, RegExp]>([
    ['EKU serverAuth', { ext: 'keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning,serverAuth\n' }, /extendedKeyUsage must not contain serverAuth \(Certificate Requirements → Leaf Certificates\)/],
    ['EKU clientAuth', { ext: 'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' }, /must not contain clientAuth/],
    ['EKU emailProtection', { ext: 'keyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n' }, /must not contain emailProtection/],
    ['EKU timeStamping', { ext: 'keyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n' }, /must not contain timeStamping/],
    ['EKU anyExtendedKeyUsage', { ext: 'keyUsage=critical,digitalSignature\nextendedKeyUsage=anyExtendedKeyUsage\n' }, /must not contain anyExtendedKeyUsage/],
    ['no keyUsage', { ext: 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=codeSigning\n' }, /the keyUsage extension must be present \(Certificate Requirements → Leaf Certificates\)/],
    ['keyUsage not critical', { ext: 'keyUsage=digitalSignature\n' }, /the keyUsage extension must be critical/],
    ['keyUsage without digitalSignature', { ext: 'keyUsage=critical,nonRepudiation\n' }, /keyUsage must include digitalSignature/],
    ['keyUsage with keyEncipherment', { ext: 'keyUsage=critical,digitalSignature,keyEncipherment\n' }, /keyUsage must not include keyEncipherment/],
    ['basicConstraints CA true on the leaf', { ext: 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n' }, /basicConstraints, when present, must say CA false/],
    ['an RSA 1024 key', { key: 'rsa1024' }, /key rsa 1024 is not allowed/],
    ['a SHA-1 signature', { digest: 'sha1' }, /signed with sha1WithRSAEncryption|signed with ecdsa-with-SHA1/],
  ])('refuses a leaf with %s', (_n, opts, message) => {
    const p = problems(leaf(opts), root);
    expect(p.join('\n')).toMatch(message);
  });

  it('accepts a leaf without EKU and without basicConstraints (both optional)', () => {
    expect(problems(leaf({ ext: 'keyUsage=critical,digitalSignature\n' }), root)).toEqual([]);
  });

  it.each<[string, string, RegExp]>([
    ['basicConstraints not critical', 'basicConstraints=CA:TRUE\nkeyUsage=critical,keyCertSign\n', /the basicConstraints extension must be critical \(Certificate Requirements → Root and Intermediate CA Certificates\)/],
    ['keyUsage without keyCertSign', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,cRLSign,digitalSignature\n', /keyUsage must include keyCertSign/],
    ['keyUsage not critical', 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\n', /intermediate .*the keyUsage extension must be critical/],
  ])('refuses an intermediate CA with %s', (_n, ext, message) => {
    const bad = makeIntermediate(dir, `badint${n++}`, root, { ext });
    expect(problems(leaf({}, bad), bad, root).join('\n')).toMatch(message);
  });

  it('refuses a chain longer than a pathLenConstraint allows', () => {
    const tight = makeCa(dir, 'tight', { ext: 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n' });
    const mid = makeIntermediate(dir, 'mid', tight);
    expect(problems(leaf({}, tight), tight)).toEqual([]);
    expect(problems(leaf({}, mid), mid, tight).join('\n')).toMatch(/root certificate .*pathLenConstraint 0 is exceeded by 1 CA certificate/);
  });

  it('refuses a chain out of order, with an unrelated certificate, or without its root', () => {
    const l = leaf({}, inter);
    expect(problems(l, root, inter).join('\n')).toMatch(/is not issued by the next certificate of the chain/);
    expect(problems(l, inter).join('\n')).toMatch(/the chain must end with a self-signed root certificate/);
    expect(problems(leaf(), makeCa(dir, 'unrelated'), root).join('\n')).toMatch(/not issued by the next certificate|only the last certificate of the chain may be self-signed/);
  });
});

describe('certificate requirements in a signature', () => {
  const manifest = Buffer.from('{"schemaVersion":2}');
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: manifest.length };
  const audit = parseTrustPolicy(
    JSON.stringify({ version: '1.0', trustPolicies: [{ name: 'p', registryScopes: ['*'], signatureVerification: { level: 'audit' }, trustStores: ['ca:acme'], trustedIdentities: ['*'] }] }),
  ).trustPolicies[0]!;

  it('a serverAuth leaf fails integrity: refused even at the audit level, the rule named once', async () => {
    const bad = leaf({ ext: 'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' });
    const env = await jwsEnvelope({ signer: bad, chain: [derB64(bad.cert), derB64(root.cert)], target });
    const v = verifyJwsEnvelope(env, [cert(root)], new Date());
    expect(v.integrity).toBe(false);
    const verdict = judgeSignature(audit, v, target);
    expect(verdict.allowed).toBe(false);
    expect(verdict.enforced.map(describeProblem)).toEqual([expect.stringMatching(/^integrity: signing leaf certificate .*extendedKeyUsage must not contain serverAuth/)]);
  });

  it('the algorithm must be the one the signing key determines (RSA 3072 signs PS384, not PS256)', async () => {
    const rsa = leaf({ key: 'rsa3072' });
    const chain = [derB64(rsa.cert), derB64(root.cert)];
    expect(verifyJwsEnvelope(await jwsEnvelope({ signer: rsa, chain, target, alg: 'PS384' }), [cert(root)], new Date()).integrity).toBe(true);
    const v = verifyJwsEnvelope(await jwsEnvelope({ signer: rsa, chain, target, alg: 'PS256' }), [cert(root)], new Date());
    expect(v.integrityProblems.join()).toMatch(/PS256 is not the one the signing key \(RSA 3072\) determines, PS384/);
  });

  it('CA_EXT and LEAF_EXT are what the other tests rely on', () => {
    expect(CA_EXT).toMatch(/keyCertSign/);
    expect(LEAF_EXT).toMatch(/codeSigning/);
  });
});
