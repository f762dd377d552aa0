// cosign's encrypted private key format, made the way `cosign generate-key-pair` makes it
// (sigstore/cosign pkg/cosign/keys.go marshalKeyPair → go-securesystemslib encrypted.Encrypt): the
// PKCS#8 DER of the key, sealed with nacl/secretbox under a key derived by scrypt from the password,
// the JSON {kdf, cipher, ciphertext} (byte fields base64, as Go marshals []byte) in a PEM block.
// The decrypting side (src/resign/keys.ts) is also checked against keys cosign itself wrote
// (test/unit/resign/keys.test.ts), so this encryptor is not the only witness of the format.
import { randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';

export interface EncryptOptions {
  /** scrypt N (cosign writes 65536, go-securesystemslib's Standard). */
  N?: number;
  pemType?: 'ENCRYPTED SIGSTORE PRIVATE KEY' | 'ENCRYPTED COSIGN PRIVATE KEY';
}

export function encryptedCosignKey(key: KeyObject, password: string, o: EncryptOptions = {}): string {
  const N = o.N ?? 65536;
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const boxKey = scryptSync(Buffer.from(password, 'utf8'), salt, 32, { N, r: 8, p: 1, maxmem: 256 * N * 8 });
  const plaintext = key.export({ type: 'pkcs8', format: 'der' });
  const ciphertext = Buffer.from(xsalsa20poly1305(boxKey, nonce).encrypt(plaintext));
  const json = JSON.stringify({
    kdf: { name: 'scrypt', params: { N, r: 8, p: 1 }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: ciphertext.toString('base64'),
  });
  const type = o.pemType ?? 'ENCRYPTED SIGSTORE PRIVATE KEY';
  return `-----BEGIN ${type}-----\n${Buffer.from(json).toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END ${type}-----\n`;
}
