// The Notation trust material of an upstream — its trustpolicy.json and the trust store certificates the
// policy names — read and validated the same way by `start` and `config check`, so a policy that would
// stop the proxy from starting fails the check first, naming its config key.
import type { X509Certificate } from 'node:crypto';
import { readConfigFile } from '../config/load.js';
import type { UpstreamConfig } from '../config/schema.js';
import { parseTrustPolicy, type TrustPolicyDocument } from '../signatures/notation/trust-policy.js';
import { loadTrustStore } from '../signatures/notation/trust-store.js';

export interface NotationTrust {
  trustPolicy: TrustPolicyDocument;
  /** `<type>:<name>` → certificates, for every trust store a policy names. */
  trustStores: Map<string, X509Certificate[]>;
}

export async function loadNotationTrust(u: UpstreamConfig, i: number): Promise<NotationTrust | undefined> {
  if (!u.notation) return undefined;
  const trustPolicy = parseTrustPolicy(readConfigFile(u.notation.trustPolicy, `upstreams[${i}].notation.trustPolicy`).toString('utf8'));
  const trustStores = new Map<string, X509Certificate[]>();
  for (const p of trustPolicy.trustPolicies) {
    for (const ref of p.trustStores) {
      const key = `${ref.type}:${ref.name}`;
      if (!trustStores.has(key)) trustStores.set(key, await loadTrustStore(u.notation.trustStore, ref));
    }
  }
  return { trustPolicy, trustStores };
}
