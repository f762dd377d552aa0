// The effective policy of a request: what (upstream, repository) actually requires after repository
// overrides. Config validation and the request path both use this one function, so a combination
// that `config check` accepts is exactly the combination the proxy enforces. Pure.
import type { DigestPulls, PolicyMode, RequireSpec, SignatureKind, UpstreamConfig } from '../config/schema.js';
import { globToRegExp } from './policy.js';

export interface EffectivePolicy {
  policy: PolicyMode;
  require: RequireSpec;
  digestPulls: DigestPulls;
}

type PolicySource = Pick<UpstreamConfig, 'policy' | 'require' | 'digestPulls' | 'repositories'>;

const compiled = new WeakMap<object, RegExp>();
function matches(entry: { match: string }, repo: string): boolean {
  let re = compiled.get(entry);
  if (!re) compiled.set(entry, (re = globToRegExp(entry.match)));
  return re.test(repo);
}

/**
 * `policy`: the first repository entry whose pattern matches, else the upstream's. `require` and
 * `digestPulls`: the first matching entry that sets them, else the upstream's — an entry that only
 * changes the policy keeps the upstream's requirement, never a weaker one.
 */
export function effectivePolicy(upstream: PolicySource, repo: string): EffectivePolicy {
  let policy: PolicyMode | undefined;
  let require: RequireSpec | undefined;
  let digestPulls: DigestPulls | undefined;
  for (const r of upstream.repositories) {
    if (!matches(r, repo)) continue;
    policy ??= r.policy;
    require ??= r.require;
    digestPulls ??= r.digestPulls;
    if (policy && require && digestPulls) break;
  }
  return { policy: policy ?? upstream.policy, require: require ?? upstream.require, digestPulls: digestPulls ?? upstream.digestPulls };
}

/** Which trust sources an upstream has: a notary server or bundles (dct), notation files, cosign keys/roots. */
export type TrustSources = Readonly<Record<SignatureKind, boolean>>;

export function trustSourcesOf(u: Pick<UpstreamConfig, 'notary' | 'bundle' | 'notation' | 'cosign'>): TrustSources {
  return { dct: u.notary !== undefined || u.bundle, notation: u.notation !== undefined, cosign: u.cosign !== undefined };
}

/**
 * The signature kinds an effective policy names but the upstream has no source for. Every kind named
 * must have its source, `any-of` included: a kind that can never verify is a configuration mistake,
 * and under `all-of` it would refuse everything. Empty under policy `off`, which verifies nothing.
 */
export function missingSources(eff: EffectivePolicy, sources: TrustSources): SignatureKind[] {
  if (eff.policy === 'off') return [];
  return eff.require.of.filter((k) => !sources[k]);
}

/** The `require` value as an operator wrote it, for messages and audit lines. */
export function requireLabel(r: RequireSpec): string {
  if (r.label) return r.label;
  return r.of.length === 1 ? r.of[0]! : `${r.mode}: [${r.of.join(', ')}]`;
}
