// Which cosign trust applies to a repository: the first repository entry matching it that sets
// `cosign:`, else the upstream's — the same first-match rule as `require` (policy/effective.ts). Pure.
import { globToRegExp } from '../policy/policy.js';
import type { CosignTrust } from './verify-signature.js';

export interface CosignTrustRule {
  match: string;
  trust: CosignTrust;
}

export type CosignTrustSelector = (repo: string) => CosignTrust;

export function cosignTrustSelector(upstream: CosignTrust, rules: readonly CosignTrustRule[]): CosignTrustSelector {
  const compiled = rules.map((r) => ({ re: globToRegExp(r.match), trust: r.trust }));
  return (repo) => compiled.find((r) => r.re.test(repo))?.trust ?? upstream;
}
