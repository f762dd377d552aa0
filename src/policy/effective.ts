// The effective policy of a request: what (upstream, repository) actually requires after repository
// overrides. Config validation and the request path both use this one function, so a combination
// that `config check` accepts is exactly the combination the proxy enforces. Pure.
import { globToRegExp } from './policy.js';
import type { DigestPulls, PolicyMode, RequireSpec, SignatureKind } from './vocabulary.js';

export interface EffectivePolicy {
  policy: PolicyMode;
  require: RequireSpec;
  digestPulls: DigestPulls;
}

/** A repository entry as far as policy is concerned (config's RepositoryPolicy has these fields). */
export interface PolicyEntry {
  match: string;
  policy: PolicyMode;
  require?: RequireSpec | undefined;
  digestPulls?: DigestPulls | undefined;
}

/** An upstream as far as policy is concerned: its own policy and its repository entries, in order. */
export interface PolicySource {
  policy: PolicyMode;
  require: RequireSpec;
  digestPulls: DigestPulls;
  repositories: readonly PolicyEntry[];
}

const compiled = new WeakMap<object, RegExp>();
function matches(entry: { match: string }, repo: string): boolean {
  let re = compiled.get(entry);
  if (!re) compiled.set(entry, (re = globToRegExp(entry.match)));
  return re.test(repo);
}

/**
 * The first-match rule, once. `policy`: the first matching entry's, else the upstream's. `require` and
 * `digestPulls`: the first matching entry that sets them, else the upstream's — an entry that only
 * changes the policy keeps the upstream's requirement, never a weaker one. `isMatch` says which
 * entries match: a repository name's (effectivePolicy), or a set config check enumerates.
 */
function firstMatch(upstream: PolicySource, isMatch: (entry: PolicyEntry, index: number) => boolean): EffectivePolicy {
  let policy: PolicyMode | undefined;
  let require: RequireSpec | undefined;
  let digestPulls: DigestPulls | undefined;
  for (let i = 0; i < upstream.repositories.length; i++) {
    const r = upstream.repositories[i]!;
    if (!isMatch(r, i)) continue;
    policy ??= r.policy;
    require ??= r.require;
    digestPulls ??= r.digestPulls;
    if (policy && require && digestPulls) break;
  }
  return { policy: policy ?? upstream.policy, require: require ?? upstream.require, digestPulls: digestPulls ?? upstream.digestPulls };
}

/** The effective policy of one repository of `upstream`. */
export function effectivePolicy(upstream: PolicySource, repo: string): EffectivePolicy {
  return firstMatch(upstream, (r) => matches(r, repo));
}

/**
 * The first entry matching `repo` for which `pick` gives a value, else `fallback`: the same first-match
 * rule for a per-repository setting that is not part of the policy (cosign trust, cosign/select-trust.ts).
 */
export function firstMatching<E extends { match: string }, T>(entries: readonly E[], repo: string, pick: (e: E) => T | undefined, fallback: T): T {
  for (const e of entries) {
    if (!matches(e, repo)) continue;
    const v = pick(e);
    if (v !== undefined) return v;
  }
  return fallback;
}

/**
 * A requirement some repository can end up with, and why: `entry` is the first entry it matches (none:
 * the upstream's own), `requireFrom` a later matching entry whose `require` it takes because `entry`
 * sets none. What `config check` checks, computed by the same first-match rule as the request path.
 */
export interface CandidatePolicy {
  entry?: number | undefined;
  requireFrom?: number | undefined;
  eff: EffectivePolicy;
}

/** Every effective policy a repository name could get (config check cannot know the names). */
export function candidatePolicies(upstream: PolicySource): CandidatePolicy[] {
  const out: CandidatePolicy[] = [{ eff: firstMatch(upstream, () => false) }];
  upstream.repositories.forEach((r, j) => {
    out.push({ entry: j, eff: firstMatch(upstream, (_, i) => i === j) });
    if (r.require) return;
    for (let k = j + 1; k < upstream.repositories.length; k++) {
      if (upstream.repositories[k]!.require) out.push({ entry: j, requireFrom: k, eff: firstMatch(upstream, (_, i) => i === j || i === k) });
    }
  });
  return out;
}

/** Which trust sources an upstream has: a notary server or bundles (dct), notation files, cosign keys/roots. */
export type TrustSources = Readonly<Record<SignatureKind, boolean>>;

export function trustSourcesOf(u: { notary?: unknown; bundle: boolean; notation?: unknown; cosign?: unknown }): TrustSources {
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
