// The site's signing key for `trustgate resign`, from the bytes of a PEM file: PKCS#8 (`PRIVATE KEY`),
// SEC 1 (`EC PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`), or cosign's own encrypted form
// (`ENCRYPTED SIGSTORE PRIVATE KEY`, and the older `ENCRYPTED COSIGN PRIVATE KEY`). The encrypted form is
// sigstore/cosign pkg/cosign/keys.go LoadPrivateKey: the PEM body is the JSON of
// secure-systems-lab/go-securesystemslib encrypted/encrypted.go —
//   {"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},"cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"}
// (byte fields base64, as Go marshals []byte) — and the plaintext is a PKCS#8 DER key. Pure: no fs, no env.
import { createPrivateKey, createPublicKey, scryptSync, type KeyObject } from 'node:crypto';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { fail } from '../errors.js';

export const SIGSTORE_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const COSIGN_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';

// encrypted.go CheckParams: only these three parameter sets are accepted. Anything else is refused
// before any work, so a tampered file cannot make scrypt allocate gigabytes (the DoS it names).
const SCRYPT_PARAMS = [
  { N: 32768, r: 8, p: 1 }, // Legacy
  { N: 65536, r: 8, p: 1 }, // Standard (what cosign generate-key-pair writes)
  { N: 131072, r: 8, p: 1 }, // OWASP
];

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** How it was stored: `pkcs8`, `sec1`, `pkcs1`, or the encrypted PEM type. */
  format: string;
}

const bad = (why: string) => fail('USAGE', `--key: ${why}`);

/** The first PEM block's type and body. */
function pemBlock(pem: string): { type: string; der: Buffer } {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(pem);
  if (!m) throw bad('not a PEM private key');
  // Headers (Proc-Type and the like) are not part of any form accepted here.
  if (m[2]!.includes(':')) throw bad(`PEM block ${m[1]} has headers (encrypted PKCS#1/SEC 1 keys are not supported; use PKCS#8 or cosign's format)`);
  return { type: m[1]!, der: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64') };
}

const b64 = (v: unknown, what: string): Buffer => {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw bad(`encrypted key: ${what} is not base64`);
  return Buffer.from(v, 'base64');
};

/** go-securesystemslib encrypted.Decrypt, with node:crypto scrypt and @noble/ciphers' secretbox. */
export function decryptSecretBox(json: Buffer, passphrase: string): Buffer {
  let doc: { kdf?: { name?: unknown; params?: { N?: unknown; r?: unknown; p?: unknown }; salt?: unknown }; cipher?: { name?: unknown; nonce?: unknown }; ciphertext?: unknown };
  try {
    doc = JSON.parse(json.toString('utf8'));
  } catch {
    throw bad('the encrypted key is not JSON');
  }
  if (doc?.kdf?.name !== 'scrypt') throw bad(`encrypted key: unknown kdf name ${JSON.stringify(doc?.kdf?.name)}`);
  if (doc.cipher?.name !== 'nacl/secretbox') throw bad(`encrypted key: unknown cipher name ${JSON.stringify(doc.cipher?.name)}`);
  const { N, r, p } = doc.kdf.params ?? {};
  const params = SCRYPT_PARAMS.find((x) => x.N === N && x.r === r && x.p === p);
  if (!params) throw bad('encrypted key: unsupported scrypt parameters');
  const salt = b64(doc.kdf.salt, 'kdf.salt');
  const nonce = b64(doc.cipher.nonce, 'cipher.nonce');
  if (nonce.length !== 24) throw bad('encrypted key: incorrect nonce size');
  const sealed = b64(doc.ciphertext, 'ciphertext');
  // scrypt needs 128·N·r bytes; node's default cap (32 MiB) is below the Standard parameters.
  const key = scryptSync(Buffer.from(passphrase, 'utf8'), salt, 32, { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r });
  try {
    return Buffer.from(xsalsa20poly1305(key, nonce).decrypt(sealed));
  } catch {
    // secretbox.Open failing: wrong passphrase, or the file was altered.
    throw bad('cannot decrypt the key: wrong passphrase (COSIGN_PASSWORD) or a damaged key file');
  }
}

/**
 * Load a private key PEM. `passphrase` is only used for cosign's encrypted form, where an absent one is
 * the empty passphrase cosign itself uses when COSIGN_PASSWORD is set to "".
 */
export function loadSigningKey(pem: Buffer | string, passphrase: string | undefined): SigningKey {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  const { type, der } = pemBlock(text);
  let privateKey: KeyObject;
  let format: string;
  try {
    if (type === SIGSTORE_PEM || type === COSIGN_PEM) {
      if (passphrase === undefined) throw bad(`${type}: set COSIGN_PASSWORD to the key's passphrase`);
      privateKey = createPrivateKey({ key: decryptSecretBox(der, passphrase), format: 'der', type: 'pkcs8' });
      format = type;
    } else if (type === 'PRIVATE KEY') {
      privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      format = 'pkcs8';
    } else if (type === 'EC PRIVATE KEY') {
      privateKey = createPrivateKey({ key: der, format: 'der', type: 'sec1' });
      format = 'sec1';
    } else if (type === 'RSA PRIVATE KEY') {
      privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs1' });
      format = 'pkcs1';
    } else {
      throw bad(`PEM type ${type} is not a private key form trustgate reads (PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY, ${SIGSTORE_PEM}, ${COSIGN_PEM})`);
    }
  } catch (err) {
    if ((err as { code?: string }).code === 'USAGE') throw err;
    throw bad(`the ${type} block is not a valid key (${(err as Error).message})`);
  }
  return { privateKey, publicKey: createPublicKey(privateKey), format };
}

/** The public key as SubjectPublicKeyInfo DER: what "the same key" compares. */
export function spkiOf(k: KeyObject): Buffer {
  return (k.type === 'private' ? createPublicKey(k) : k).export({ type: 'spki', format: 'der' });
}
