// Read an upstream's cosign trust from disk, once, at start: PEM public keys and the Sigstore
// trusted_root.json. Nothing is fetched: air-gapped sites copy the trusted root in (refreshing it
// with @sigstore/tuf is the operator's step, outside the request path). A bad file fails start with
// the config key named.
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { TrustedRoot } from '@sigstore/protobuf-specs';
import { readFileSync } from 'node:fs';
import type { CosignConfig, UpstreamConfig } from '../../config/schema.js';
import { fail } from '../../errors.js';
import { cosignTrustSelector, type CosignTrustSelector } from './select-trust.js';
import { parseTrustedRoot, type CosignKey, type CosignTrust } from './verify-signature.js';

function read(file: string, key: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw fail('CONFIG_INVALID', `${key}: cannot read ${file}: ${(err as Error).message}`, err);
  }
}

/**
 * What responses and audit lines call a key: the name the config gives it, else the SHA-256 of its
 * SubjectPublicKeyInfo DER. Never its path: a file name on the server is not the client's business,
 * and a fingerprint stays the same wherever the file is kept.
 */
export function keyIdentifier(key: KeyObject, name?: string): string {
  return name ?? `sha256:${createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

export function loadCosignTrust(c: CosignConfig, path: string): CosignTrust {
  const keys: CosignKey[] = c.keys.map(({ path: file, name }, i) => {
    const key = `${path}.keys[${i}]`;
    try {
      const k = createPublicKey(read(file, key));
      return { name: keyIdentifier(k, name), key: k };
    } catch (err) {
      if ((err as { code?: string }).code === 'CONFIG_INVALID') throw err;
      throw fail('CONFIG_INVALID', `${key}: ${file} is not a PEM public key: ${(err as Error).message}`, err);
    }
  });
  let root;
  if (c.trustedRoot !== undefined) {
    const key = `${path}.trustedRoot`;
    const text = read(c.trustedRoot, key);
    try {
      root = parseTrustedRoot(text);
    } catch (err) {
      throw fail('CONFIG_INVALID', `${key}: ${c.trustedRoot} is not a usable Sigstore trusted root: ${(err as Error).message}`, err);
    }
  }
  return { keys, root, identities: c.identities, tlog: c.tlog, repository: c.repository };
}

/** The upstream's cosign trust and its repository entries' overrides, as one selector by repository. */
export function loadCosignTrustSelector(u: Pick<UpstreamConfig, 'cosign' | 'repositories'>, path: string): CosignTrustSelector & { readonly trusts: readonly CosignTrust[] } {
  const upstream = loadCosignTrust(u.cosign!, `${path}.cosign`);
  const rules = u.repositories.flatMap((r, j) => (r.cosign ? [{ match: r.match, trust: loadCosignTrust(r.cosign, `${path}.repositories[${j}].cosign`) }] : []));
  // `trusts`: everything loaded, for what start reports about it (the certificates' expiry).
  return Object.assign(cosignTrustSelector(upstream, rules), { trusts: [upstream, ...rules.map((r) => r.trust)] });
}

/**
 * Every certificate of a Sigstore trusted root: the Fulcio CA chains (`fulcio`) and the timestamp
 * authorities' (`tsa`). Public keys (cosign.keys, Rekor and CT log keys) have no notAfter.
 */
export function trustedRootCertificates(root: TrustedRoot): Array<{ role: 'fulcio' | 'tsa'; cert: X509Certificate }> {
  const out: Array<{ role: 'fulcio' | 'tsa'; cert: X509Certificate }> = [];
  for (const [role, cas] of [['fulcio', root.certificateAuthorities], ['tsa', root.timestampAuthorities]] as const) {
    for (const ca of cas) {
      for (const c of ca.certChain?.certificates ?? []) {
        out.push({ role, cert: new X509Certificate(c.rawBytes) });
      }
    }
  }
  return out;
}
