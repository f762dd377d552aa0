// Signature checks as notary's tuf/signed/verifiers.go and verify.go do them. Pure.
import { constants, verify } from 'node:crypto';
import { fail } from '../../../errors.js';
import { nodeKeyOf, type PublicKey } from './keys.js';

export interface Signature {
  keyid: string;
  /** Lower-cased on parse, as notary's Signature.UnmarshalJSON does. */
  method: string;
  sig: Buffer;
}

// node:crypto over @noble/*: bench/verify-signatures.bench.ts measured it (docs/benchmarks.md,
// "Dependency choices (measured)"); OpenSSL's Ed25519 is also the strict RFC 8032 check Go's crypto/ed25519 does, where
// @noble/ed25519 defaults to the more permissive ZIP-215 rules.
const MIN_RSA_BITS = 2048;

/** One signature, one key. False for any mismatch of method and key type (ErrInvalidKeyType). */
export function verifySignature(key: PublicKey, method: string, msg: Uint8Array, sig: Uint8Array): boolean {
  const k = nodeKeyOf(key);
  if (!k) return false;
  try {
    switch (method) {
      case 'ecdsa': {
        if (key.keytype !== 'ecdsa' && key.keytype !== 'ecdsa-x509') return false;
        // r‖s fixed width: exactly 2·⌈bits/8⌉ bytes (ecdsaVerifier); DER-encoded signatures are refused.
        const curve = k.asymmetricKeyDetails?.namedCurve;
        const width = curve === 'prime256v1' ? 32 : curve === 'secp384r1' ? 48 : curve === 'secp521r1' ? 66 : 0;
        if (width === 0 || sig.length !== 2 * width) return false;
        return verify('sha256', msg, { key: k, dsaEncoding: 'ieee-p1363' }, sig);
      }
      case 'rsapss':
      case 'rsapkcs1v15': {
        if (key.keytype !== 'rsa' && key.keytype !== 'rsa-x509') return false;
        const bits = k.asymmetricKeyDetails?.modulusLength ?? 0;
        if (bits < MIN_RSA_BITS || sig.length < MIN_RSA_BITS / 8) return false;
        // notary signs PSS with SHA-256, MGF1-SHA-256 and a salt of exactly 32 bytes (rsaPSSVerifier);
        // an explicit saltLength makes OpenSSL require that length rather than recover any.
        const padding =
          method === 'rsapss'
            ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
            : { padding: constants.RSA_PKCS1_PADDING };
        return verify('sha256', msg, { key: k, ...padding }, sig);
      }
      case 'eddsa':
        if (key.keytype !== 'ed25519' || sig.length !== 64) return false;
        return verify(null, msg, k, sig);
      default:
        // Includes the legacy "pycrypto-pkcs#1 pss": nothing notary 0.7 writes uses it.
        return false;
    }
  } catch {
    return false;
  }
}

export type ThresholdOutcome =
  | { ok: true }
  | { ok: false; fatal: boolean; code: 'SIGNATURE_INVALID' | 'THRESHOLD_NOT_MET' | 'MALFORMED'; message: string };

/**
 * tuf/signed/verify.go VerifySignatures: a key counts once however many signatures it made, so a
 * threshold cannot be inflated by repeating one signature. A signature whose keyid names a role key
 * that hashes to another ID, or no signature at all, is fatal (ErrInvalidKeyID, ErrNoSignatures); bad
 * signatures are skipped and only count against the threshold (ErrRoleThreshold) — the distinction
 * matters for delegations, where notary skips a role that misses its threshold but fails on the rest.
 */
export function checkThreshold(
  role: string,
  msg: Uint8Array,
  signatures: readonly Signature[],
  keys: ReadonlyMap<string, PublicKey>,
  threshold: number,
): ThresholdOutcome {
  if (threshold < 1) return { ok: false, fatal: true, code: 'MALFORMED', message: `${role}: threshold must be at least 1` };
  if (signatures.length === 0) return { ok: false, fatal: true, code: 'SIGNATURE_INVALID', message: `${role}: metadata has no signatures` };
  const valid = new Set<string>();
  let invalid = 0;
  for (const s of signatures) {
    if (valid.has(s.keyid)) continue;
    const key = keys.get(s.keyid);
    if (!key) continue;
    if (key.id !== s.keyid) {
      return { ok: false, fatal: true, code: 'SIGNATURE_INVALID', message: `${role}: key ID ${s.keyid} is not valid for its key content` };
    }
    if (verifySignature(key, s.method, msg, s.sig)) valid.add(s.keyid);
    else invalid++;
  }
  if (valid.size >= threshold) return { ok: true };
  // Codes for people: a bad or foreign signature is SIGNATURE_INVALID; only "every signature we have is
  // good, there are just too few distinct keys" is THRESHOLD_NOT_MET.
  if (invalid > 0 || valid.size === 0) {
    return { ok: false, fatal: false, code: 'SIGNATURE_INVALID', message: `${role}: no valid signature from the role's keys (${valid.size} of ${threshold} required)` };
  }
  return { ok: false, fatal: false, code: 'THRESHOLD_NOT_MET', message: `${role}: valid signatures did not meet threshold (${valid.size} of ${threshold} required)` };
}

/** checkThreshold that throws its refusal. */
export function verifyThreshold(
  role: string,
  msg: Uint8Array,
  signatures: readonly Signature[],
  keys: ReadonlyMap<string, PublicKey>,
  threshold: number,
): void {
  const r = checkThreshold(role, msg, signatures, keys, threshold);
  if (!r.ok) throw fail(r.code, r.message);
}
