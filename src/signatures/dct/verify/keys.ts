// Notary v1 public keys (tuf/data/keys.go): key IDs as notary computes them and node:crypto key objects.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { canonicalBytes } from './canonical-json.js';
import { boundedMemo } from './memo.js';
import { parsePemCertificates, type CertInfo } from './x509.js';

export const KEY_TYPES = ['ecdsa', 'ecdsa-x509', 'rsa', 'rsa-x509', 'ed25519'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export interface PublicKey {
  /** hex sha256 of the canonical key object: what `keyid` fields refer to. */
  readonly id: string;
  /** As written in the metadata; unknown types are kept and simply never verify. */
  readonly keytype: string;
  /** keyval.public exactly as written (base64). The ID covers this string, not its decoding. */
  readonly publicB64: string;
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** tuf/data/keys.go TUFKey.ID: `private` is always present as null, whatever the file held. */
export function keyIdOf(keytype: string, publicB64: string): string {
  return sha256Hex(canonicalBytes({ keytype, keyval: { private: null, public: publicB64 } }));
}

export function makeKey(keytype: string, publicB64: string): PublicKey {
  return { id: keyIdOf(keytype, publicB64), keytype, publicB64 };
}

/** A key rebuilt from a certificate chain the way notary does for root keys (CertsToKeys). */
export function keyFromCertChain(chain: readonly CertInfo[], certChainPem: string): PublicKey | null {
  const leaf = chain[0];
  if (!leaf) return null;
  const keytype = leaf.keyAlgorithm === 'ec' ? 'ecdsa-x509' : leaf.keyAlgorithm === 'rsa' ? 'rsa-x509' : undefined;
  if (!keytype) return null;
  return makeKey(keytype, Buffer.from(certChainPem, 'utf8').toString('base64'));
}

const decodeMemo = boundedMemo((typeAndKey: string) => {
  const i = typeAndKey.lastIndexOf(' '); // base64 has no spaces; a keytype might
  return decodeNodeKey(typeAndKey.slice(0, i), typeAndKey.slice(i + 1));
});

/** The node:crypto key for verification, or null when the key material does not parse (never verifies). */
export function nodeKeyOf(key: PublicKey): KeyObject | null {
  return decodeMemo(`${key.keytype} ${key.publicB64}`);
}

/** SubjectPublicKeyInfo of an Ed25519 key up to the key itself (RFC 8410 §4: SEQUENCE, id-Ed25519, BIT STRING). */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function decodeNodeKey(keytype: string, publicB64: string): KeyObject | null {
  const key = { keytype, publicB64 };
  try {
    const raw = Buffer.from(key.publicB64, 'base64');
    switch (key.keytype) {
      case 'ecdsa':
      case 'rsa': {
        const k = createPublicKey({ key: raw, format: 'der', type: 'spki' });
        return k.asymmetricKeyType === (key.keytype === 'ecdsa' ? 'ec' : 'rsa') ? k : null;
      }
      case 'ecdsa-x509':
      case 'rsa-x509': {
        const certs = parsePemCertificates(raw.toString('utf8'));
        const k = certs?.[0]?.cert.publicKey;
        if (!k) return null;
        return k.asymmetricKeyType === (key.keytype === 'ecdsa-x509' ? 'ec' : 'rsa') ? k : null;
      }
      case 'ed25519':
        if (raw.length !== 32) return null;
        // As SPKI DER (the fixed RFC 8410 prefix and the 32 bytes), not JWK: the JWK import was 0.4 ms
        // of a cold tag's CPU profile (getKeyObjectHandleFromJwk), the DER one is the path ecdsa keys take.
        return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
      default:
        return null;
    }
  } catch {
    return null;
  }
}

/**
 * tuf/utils/utils.go CanonicalKeyID: for *-x509 keys the ID of the bare public key (SPKI DER of the
 * leaf), which is what `docker trust inspect` lists for signers. Other keys: their own ID.
 */
export function canonicalKeyId(key: PublicKey): string {
  if (key.keytype !== 'ecdsa-x509' && key.keytype !== 'rsa-x509') return key.id;
  const k = nodeKeyOf(key);
  if (!k) return key.id;
  const spki = k.export({ format: 'der', type: 'spki' });
  return keyIdOf(key.keytype === 'ecdsa-x509' ? 'ecdsa' : 'rsa', spki.toString('base64'));
}
