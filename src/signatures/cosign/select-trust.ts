// Which cosign trust applies to a repository: the first repository entry matching it that sets
// `cosign:`, else the upstream's — the first-match rule of policy/effective.ts, applied by it. Pure.
import { firstMatching } from '../../policy/effective.js';
import type { CosignTrust } from './verify-signature.js';

export interface CosignTrustRule {
  match: string;
  trust: CosignTrust;
}

export type CosignTrustSelector = (repo: string) => CosignTrust;

export function cosignTrustSelector(upstream: CosignTrust, rules: readonly CosignTrustRule[]): CosignTrustSelector {
  return (repo) => firstMatching(rules, repo, (r) => r.trust, upstream);
}
