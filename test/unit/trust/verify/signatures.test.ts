// Signature methods and threshold counting (NOTARY.md §5; checklist 8, 9, 10, 11). Signatures come
// from the builder (node:crypto, notary's parameters) over its own canonical bytes.
import { describe, expect, it } from 'vitest';
import { parseEnvelope } from '../../../../src/signatures/dct/model/metadata.js';
import { makeKey as srcKey, type PublicKey } from '../../../../src/signatures/dct/verify/keys.js';
import { checkThreshold, verifySignature, verifyThreshold, type Signature } from '../../../../src/signatures/dct/verify/signatures.js';
import { canonicalJson, makeCertKey, makeKey, signaturesFor, signBytes, wireJson, withKey, type SignOptions, type TestKey } from '../../../support/notary-builder/index.js';

const msg = canonicalJson({ _type: 'Targets', expires: '2031-01-01T00:00:00Z', targets: {}, version: 1 });
const pub = (k: TestKey): PublicKey => srcKey(k.keytype, k.public);

const ec = makeKey('ecdsa', 'sig');
const ec384 = makeKey('ecdsa-p384', 'sig');
const ed = makeKey('ed25519', 'sig');
const rsa = makeKey('rsa', 'sig');
const rsaPkcs1 = makeKey('rsa-pkcs1', 'sig');
const rsa1024 = makeKey('rsa-1024', 'sig');
const ecCert = makeCertKey({ cn: 'example.com/app', label: 'sig' });
const rsaCert = makeCertKey({ cn: 'example.com/app', label: 'sig', algo: 'rsa' });

describe('verifySignature', () => {
  // [what, key the verifier holds, method on the wire, signing key, sign options, extra mangling]
  type Row = [string, TestKey, string, TestKey, SignOptions, ((s: Buffer) => Buffer)?];
  it.each<Row>([
    ['ecdsa P-256, 64-byte r‖s', ec, 'ecdsa', ec, {}],
    ['ecdsa P-384, 96-byte r‖s', ec384, 'ecdsa', ec384, {}],
    ['eddsa ed25519', ed, 'eddsa', ed, {}],
    ['rsapss rsa-2048, salt 32', rsa, 'rsapss', rsa, {}],
    ['rsapkcs1v15 rsa-2048', rsaPkcs1, 'rsapkcs1v15', rsaPkcs1, {}],
    ['ecdsa with an ecdsa-x509 key', ecCert, 'ecdsa', ecCert, {}],
    ['rsapss with an rsa-x509 key', rsaCert, 'rsapss', rsaCert, {}],
    ['rsapkcs1v15 with an rsa-x509 key', rsaCert, 'rsapkcs1v15', rsaCert, { method: 'rsapkcs1v15' }],
  ])('✓ %s', (_what, key, method, signer, opts) => {
    const sig = signBytes(signer, msg, opts);
    expect(verifySignature(pub(key), method, msg, sig)).toBe(true);
  });

  it.each<Row>([
    ['ecdsa signature in ASN.1 DER', ec, 'ecdsa', ec, { ecdsaEncoding: 'der' }],
    ['ecdsa r‖s with a trailing byte', ec, 'ecdsa', ec, {}, (s) => Buffer.concat([s, Buffer.from([0])])],
    ['ecdsa r‖s one byte short', ec, 'ecdsa', ec, {}, (s) => s.subarray(1)],
    ['ecdsa by another key', makeKey('ecdsa', 'sig other'), 'ecdsa', ec, {}],
    ['ecdsa over SHA-512', ec, 'ecdsa', ec, { hash: 'sha512' }],
    ['rsapss with RSA-1024', rsa1024, 'rsapss', rsa1024, {}],
    ['rsapkcs1v15 with RSA-1024', rsa1024, 'rsapkcs1v15', rsa1024, { method: 'rsapkcs1v15' }],
    ['rsapss with salt 20', rsa, 'rsapss', rsa, { saltLength: 20 }],
    ['rsapss with salt 0', rsa, 'rsapss', rsa, { saltLength: 0 }],
    ['rsapss with the maximum salt', rsa, 'rsapss', rsa, { saltLength: 222 }],
    ['rsapss over SHA-512', rsa, 'rsapss', rsa, { hash: 'sha512' }],
    ['a PKCS#1 v1.5 signature sent as rsapss', rsa, 'rsapss', rsa, { method: 'rsapkcs1v15' }],
    ['a PSS signature sent as rsapkcs1v15', rsa, 'rsapkcs1v15', rsa, {}],
    ['eddsa with an ecdsa key', ec, 'eddsa', ec, {}],
    ['ecdsa with an ed25519 key', ed, 'ecdsa', ed, {}],
    ['rsapss with an ecdsa key', ec, 'rsapss', ec, {}],
    ['ecdsa with an rsa-x509 key', rsaCert, 'ecdsa', rsaCert, {}],
    ['eddsa with an ecdsa-x509 key', ecCert, 'eddsa', ecCert, {}],
    ['legacy "pycrypto-pkcs#1 pss"', rsa, 'pycrypto-pkcs#1 pss', rsa, {}],
    ['unknown method', ec, 'hmac-sha256', ec, {}],
    ['an empty signature', ed, 'eddsa', ed, {}, () => Buffer.alloc(0)],
    ['a flipped bit', ed, 'eddsa', ed, {}, (s) => Buffer.from(s.map((b, i) => (i === 10 ? b ^ 1 : b)))],
  ])('✗ %s', (_what, key, method, signer, opts, mangle) => {
    let sig = signBytes(signer, msg, opts);
    if (mangle) sig = mangle(sig);
    expect(verifySignature(pub(key), method, msg, sig)).toBe(false);
  });

  it('✗ a valid signature over other bytes', () => {
    expect(verifySignature(pub(ec), 'ecdsa', Buffer.concat([msg, Buffer.from(' ')]), signBytes(ec, msg))).toBe(false);
  });

  it('✓ "method":"ECDSA" is lower-cased on parse (Signature.UnmarshalJSON)', () => {
    const signed = { _type: 'Targets', version: 1 };
    const [s] = signaturesFor(signed, [ec]);
    const env = parseEnvelope(wireJson({ signed, signatures: [{ ...s!, method: 'ECDSA' }] }), 'targets');
    expect(env.signatures[0]!.method).toBe('ecdsa');
    expect(() => verifyThreshold('targets', env.canonical, env.signatures, new Map([[ec.id, pub(ec)]]), 1)).not.toThrow();
  });
});

describe('checkThreshold counts distinct valid keys (checklist 10, 11)', () => {
  const a = makeKey('ecdsa', 'thr a');
  const b = makeKey('ed25519', 'thr b');
  const c = makeKey('ecdsa', 'thr c');
  const stranger = makeKey('ecdsa', 'thr stranger');
  const good = (k: TestKey): Signature => ({ keyid: k.id, method: k.method, sig: signBytes(k, msg) });
  const bad = (k: TestKey): Signature => ({ keyid: k.id, method: k.method, sig: signBytes(k, Buffer.from('other')) });
  const keys = (...ks: TestKey[]) => new Map(ks.map((k) => [k.id, pub(k)]));
  // The key stored under a's ID is really c: it hashes to another ID (ErrInvalidKeyID).
  const swapped = new Map([[a.id, pub(c)], [b.id, pub(b)]]);

  type Row = [string, Signature[], Map<string, PublicKey>, number, ReturnType<typeof checkThreshold>];
  it.each<Row>([
    ['threshold 1, one valid signature', [good(a)], keys(a), 1, { ok: true }],
    ['threshold 2 met by two distinct keys', [good(a), good(b)], keys(a, b), 2, { ok: true }],
    ['threshold 2 met with a bad third signature', [bad(c), good(a), good(b)], keys(a, b, c), 2, { ok: true }],
    ['threshold 1 met, a stranger also signed', [good(stranger), good(a)], keys(a), 1, { ok: true }],
    ['a swapped key nobody signs with is harmless', [good(b)], swapped, 1, { ok: true }],
  ])('✓ %s', (_what, sigs, ks, threshold, want) => {
    expect(checkThreshold('targets', msg, sigs, ks, threshold)).toEqual(want);
  });

  it.each<Row>([
    ['threshold 2 "met" by one key signing twice', [good(a), good(a)], keys(a, b), 2, { ok: false, fatal: false, code: 'THRESHOLD_NOT_MET', message: expect.stringContaining('1 of 2') }],
    ['threshold 2, one good and one bad signature', [good(a), bad(b)], keys(a, b), 2, { ok: false, fatal: false, code: 'SIGNATURE_INVALID', message: expect.any(String) }],
    ['a signature by a key outside the role', [good(stranger)], keys(a), 1, { ok: false, fatal: false, code: 'SIGNATURE_INVALID', message: expect.any(String) }],
    ['only bad signatures', [bad(a), bad(b)], keys(a, b), 1, { ok: false, fatal: false, code: 'SIGNATURE_INVALID', message: expect.any(String) }],
    ['a signature whose key hashes to another ID', [good(a)], swapped, 1, { ok: false, fatal: true, code: 'SIGNATURE_INVALID', message: expect.stringContaining('not valid for its key content') }],
    ['the swapped key is fatal even when the threshold is met otherwise', [good(b), good(a)], swapped, 1, { ok: false, fatal: true, code: 'SIGNATURE_INVALID', message: expect.stringContaining('not valid for its key content') }],
    ['no signatures at all', [], keys(a), 1, { ok: false, fatal: true, code: 'SIGNATURE_INVALID', message: expect.stringContaining('no signatures') }],
    ['threshold 0', [good(a)], keys(a), 0, { ok: false, fatal: true, code: 'MALFORMED', message: expect.any(String) }],
  ])('✗ %s', (_what, sigs, ks, threshold, want) => {
    expect(checkThreshold('targets', msg, sigs, ks, threshold)).toEqual(want);
    expect(() => verifyThreshold('targets', msg, sigs, ks, threshold)).toThrow(expect.objectContaining({ code: (want as { code: string }).code }));
  });

  it('a keyid relabelled onto a role key does not count for it', () => {
    // a's signature presented under b's keyid: b's key does not verify it.
    const relabelled = { ...good(a), keyid: b.id };
    expect(checkThreshold('targets', msg, [relabelled], keys(a, b), 1)).toMatchObject({ ok: false, code: 'SIGNATURE_INVALID' });
  });

  it('withKey keeps the private key but changes the ID (used for key/ID mismatch)', () => {
    const k = withKey(a, { public: c.public });
    expect(k.id).toBe(c.id);
    expect(k.privateKey).toBe(a.privateKey);
  });
});
