// Signing keys for `trustgate resign`: PEM PKCS#8 / SEC 1 / PKCS#1 and cosign's encrypted format. The
// encrypted keys below were written by cosign itself (sigstore/cosign pkg/cosign/keys_test.go at
// d6d86c22, Apache-2.0, password "hello"), so the decryption is checked against the real format, not
// only against our own test encryptor (test/support/cosign-key.ts).
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decryptSecretBox, loadSigningKey, spkiOf } from '../../../src/resign/keys.js';
import { encryptedCosignKey } from '../../support/cosign-key.js';

const pemcosignkey = `-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiJ4WWdoc09JTUxUWGNOT0RsclNIOUNKc1FlOVFnZmN1
cmUrMXlLdHh1TlkwPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiI0cS9PSlVmaXJkSUkrUjZ0ajZBMmcyQ0JqL25xdFNicCJ9LCJj
aXBoZXJ0ZXh0IjoiKzB4Q3NzcFN0WStBczdKanJpOWtsbHBWd2JhcUI4ZWJNdWto
eS9aVE1MSXRsL3B1YS9jWVJvbytLRGxMWWdmOW1kSjk4K1FnQW9oTktoYnJPMTcw
MHdBY1JTMjFDOE4zQUNJRUVZaWpOMllBNnMraGJSbkhjUnd4eGhDMDFtb2FvL0dO
Y1pmbEJheXZMV3pXblo4d2NDZ2ZpT1o1VXlRTEFJMHh0dnR6dEh3cTdDV1Vhd3V4
RlhlNDZzck9TUE9SNHN6bytabWErUGovSFE9PSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----`;

const pemcosigneckey = `-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiJHK3F5WTYrNzhNS0JzMXNGTGs1ajYwcS9kS3Z1czBW
VkhlSHZybC9POTF3PSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJRc2JGdG13WDRDK2ttV3ZCcVRaMEFGOUFYdk1jRmg1SCJ9LCJj
aXBoZXJ0ZXh0IjoiREM5T28zeldiYVQzSXYwdFVnWEdycjUxYW1samwwNlQ5MTNP
VkxPbWpuMWhnK2o2WXRUbWg3SGhZSlY1N2J5eGE0Q281bE9YYmRqbTJ3aklubEd1
Um5aZCt5OExnekpSNzFSeEhKVzgrWmRlcFJmYWJMTjdHbDgrSFZEcERVQ3NxQnRh
VngyblpGbFEwWUl1anZwbFphblNGaUVvdERLVGkxZ3VhUXIwUHNzYU01NXZxbTRY
WS9rPSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----`;

const pemsigstorekey = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----`;


const usage = (f: () => unknown, message: RegExp) => {
  try {
    f();
  } catch (err) {
    expect((err as { code?: string }).code).toBe('USAGE');
    expect((err as Error).message).toMatch(message);
    return;
  }
  throw new Error('expected a USAGE error');
};

const roundTrip = (k: ReturnType<typeof loadSigningKey>) => {
  const msg = Buffer.from('payload');
  expect(verify('sha256', msg, k.publicKey, sign('sha256', msg, k.privateKey))).toBe(true);
};

describe("cosign's encrypted private keys", () => {
  it('decrypts keys cosign wrote (ENCRYPTED COSIGN and ENCRYPTED SIGSTORE PRIVATE KEY)', () => {
    // (cosign's test calls it an RSA key; its PKCS#8 holds an EC key.)
    const cosignPem = loadSigningKey(pemcosignkey, 'hello');
    expect(cosignPem.format).toBe('ENCRYPTED COSIGN PRIVATE KEY');
    expect(cosignPem.privateKey.asymmetricKeyType).toBe('ec');
    roundTrip(cosignPem);
    const sigstore = loadSigningKey(pemsigstorekey, 'hello');
    expect(sigstore.format).toBe('ENCRYPTED SIGSTORE PRIVATE KEY');
    roundTrip(sigstore);
  });

  it('refuses what cosign refuses: an encrypted SEC 1 key (cosign requires PKCS#8 inside)', () => {
    usage(() => loadSigningKey(pemcosigneckey, 'hello'), /not a valid key/);
  });

  it('refuses a wrong passphrase, and an absent one', () => {
    usage(() => loadSigningKey(pemsigstorekey, 'wrong'), /wrong passphrase \(COSIGN_PASSWORD\)/);
    usage(() => loadSigningKey(pemsigstorekey, undefined), /set COSIGN_PASSWORD/);
  });

  it('loads a key made by the test harness in the same format, both PEM types, Standard and Legacy scrypt', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    for (const [pemType, N] of [['ENCRYPTED SIGSTORE PRIVATE KEY', 65536], ['ENCRYPTED COSIGN PRIVATE KEY', 32768]] as const) {
      const k = loadSigningKey(encryptedCosignKey(privateKey, 's3cret', { pemType, N }), 's3cret');
      expect(spkiOf(k.publicKey).equals(spkiOf(publicKey))).toBe(true);
      expect(k.format).toBe(pemType);
    }
    // The empty passphrase is a passphrase (cosign with COSIGN_PASSWORD="").
    expect(loadSigningKey(encryptedCosignKey(privateKey, ''), '').privateKey.asymmetricKeyType).toBe('ec');
  });

  const json = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const edit = (pem: string, f: (doc: Record<string, any>) => void) => {
    const doc = JSON.parse(json(pem).toString());
    f(doc);
    return Buffer.from(JSON.stringify(doc));
  };

  it('refuses scrypt parameters other than the three go-securesystemslib accepts, before deriving anything', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = encryptedCosignKey(privateKey, 'x');
    const t0 = Date.now();
    usage(() => decryptSecretBox(edit(pem, (d) => (d.kdf.params.N = 2 ** 24)), 'x'), /unsupported scrypt parameters/);
    expect(Date.now() - t0).toBeLessThan(1000);
    usage(() => decryptSecretBox(edit(pem, (d) => (d.kdf.params.r = 16)), 'x'), /unsupported scrypt parameters/);
    usage(() => decryptSecretBox(edit(pem, (d) => (d.kdf.name = 'pbkdf2')), 'x'), /unknown kdf name/);
    usage(() => decryptSecretBox(edit(pem, (d) => (d.cipher.name = 'aes-gcm')), 'x'), /unknown cipher name/);
    usage(() => decryptSecretBox(edit(pem, (d) => (d.cipher.nonce = Buffer.alloc(12).toString('base64'))), 'x'), /incorrect nonce size/);
    usage(() => decryptSecretBox(Buffer.from('not json'), 'x'), /not JSON/);
  });

  it('refuses an altered ciphertext (secretbox authenticates it)', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = encryptedCosignKey(privateKey, 'x', { N: 32768 });
    const altered = edit(pem, (d) => {
      const c = Buffer.from(d.ciphertext, 'base64');
      c[c.length - 1]! ^= 1;
      d.ciphertext = c.toString('base64');
    });
    usage(() => decryptSecretBox(altered, 'x'), /wrong passphrase|damaged/);
  });
});

describe('plain PEM private keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trustgate-resign-keys-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

  it('reads PKCS#8 (openssl genpkey), SEC 1 EC PRIVATE KEY (openssl ecparam) and PKCS#1 RSA PRIVATE KEY', () => {
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'p8.pem');
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sec1.pem');
    openssl('genrsa', '-traditional', '-out', 'rsa1.pem', '2048');
    const p8 = loadSigningKey(readFileSync(join(dir, 'p8.pem')), undefined);
    expect(p8.format).toBe('pkcs8');
    roundTrip(p8);
    const sec1 = loadSigningKey(readFileSync(join(dir, 'sec1.pem')), undefined);
    expect(sec1.format).toBe('sec1');
    roundTrip(sec1);
    expect(readFileSync(join(dir, 'rsa1.pem'), 'utf8')).toMatch(/BEGIN RSA PRIVATE KEY/);
    const rsa = loadSigningKey(readFileSync(join(dir, 'rsa1.pem')), undefined);
    expect(rsa.format).toBe('pkcs1');
  });

  it('refuses a public key, a certificate, an encrypted PKCS#1 PEM and garbage with USAGE', () => {
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'k.pem');
    openssl('pkey', '-in', 'k.pem', '-pubout', '-out', 'pub.pem');
    usage(() => loadSigningKey(readFileSync(join(dir, 'pub.pem')), undefined), /PEM type PUBLIC KEY is not a private key form/);
    openssl('genrsa', '-traditional', '-aes128', '-passout', 'pass:x', '-out', 'enc1.pem', '2048');
    usage(() => loadSigningKey(readFileSync(join(dir, 'enc1.pem')), undefined), /has headers/);
    usage(() => loadSigningKey('hello', undefined), /not a PEM private key/);
    usage(() => loadSigningKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', undefined), /not a valid key/);
  });
});
