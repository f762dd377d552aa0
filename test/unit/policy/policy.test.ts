import { describe, expect, it } from 'vitest';
import { DEFAULT_REQUIRE, type RequireSpec } from '../../../src/config/schema.js';
import { effectivePolicy, missingSources } from '../../../src/policy/effective.js';
import { globToRegExp } from '../../../src/policy/policy.js';

const policyFor = (u: { policy: 'enforce' | 'audit' | 'off'; repositories: { match: string; policy: 'enforce' | 'audit' | 'off' }[] }, repo: string) =>
  effectivePolicy({ ...u, require: DEFAULT_REQUIRE, digestPulls: 'allow' }, repo).policy;

describe('policyFor', () => {
  const upstream = {
    policy: 'enforce' as const,
    repositories: [
      { match: 'legacy/*', policy: 'audit' as const },
      { match: 'mirror/**', policy: 'off' as const },
      { match: 'legacy/critical', policy: 'off' as const }, // shadowed: first match wins
    ],
  };
  it.each([
    ['team/app', 'enforce'],
    ['legacy/app', 'audit'],
    ['legacy/critical', 'audit'],
    ['legacy/deep/app', 'enforce'], // `*` stays within one segment
    ['mirror/a/b/c', 'off'],
    ['mirrored/x', 'enforce'],
  ])('%s → %s', (repo, want) => {
    expect(policyFor(upstream, repo)).toBe(want);
  });

  it('treats regex metacharacters in patterns literally', () => {
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('a.b').test('a.b')).toBe(true);
    expect(globToRegExp('(x)+').test('xx')).toBe(false);
  });
});

describe('effectivePolicy: require and digestPulls after repository overrides', () => {
  const notation: RequireSpec = { mode: 'any-of', of: ['notation'], label: 'notation' };
  const both: RequireSpec = { mode: 'all-of', of: ['dct', 'notation'], label: 'all-of' };
  const upstream = {
    policy: 'off' as const,
    require: DEFAULT_REQUIRE,
    digestPulls: 'allow' as const,
    repositories: [
      { match: 'bar/**', policy: 'enforce' as const }, // policy only: the upstream's require stays
      { match: 'n/*', policy: 'audit' as const, require: notation, digestPulls: 'signed' as const },
      { match: '**', policy: 'off' as const, require: both },
    ],
  };
  it('an entry that sets only the policy keeps a require from a later matching entry, else the upstream\'s', () => {
    expect(effectivePolicy(upstream, 'bar/x')).toEqual({ policy: 'enforce', require: both, digestPulls: 'allow' });
    expect(effectivePolicy({ ...upstream, repositories: upstream.repositories.slice(0, 1) }, 'bar/x')).toEqual({ policy: 'enforce', require: DEFAULT_REQUIRE, digestPulls: 'allow' });
  });
  it('the first matching entry sets policy, require and digestPulls', () => {
    expect(effectivePolicy(upstream, 'n/app')).toEqual({ policy: 'audit', require: notation, digestPulls: 'signed' });
    expect(effectivePolicy(upstream, 'other')).toEqual({ policy: 'off', require: both, digestPulls: 'allow' });
  });
  it('missingSources names every required kind without a source, and nothing under policy off', () => {
    const none = { dct: false, notation: false, cosign: false };
    expect(missingSources(effectivePolicy(upstream, 'bar/x'), none)).toEqual(['dct', 'notation']);
    expect(missingSources(effectivePolicy(upstream, 'bar/x'), { ...none, dct: true })).toEqual(['notation']);
    expect(missingSources(effectivePolicy(upstream, 'other'), none)).toEqual([]);
  });
});

describe('candidatePolicies and firstMatching (the first-match rule config check and cosign trust share)', () => {
  it('lists the upstream, each entry, and each entry taking a later entry\'s require', async () => {
    const { candidatePolicies, firstMatching } = await import('../../../src/policy/effective.js');
    const cosign: RequireSpec = { mode: 'any-of', of: ['cosign'], label: 'cosign' };
    const u = {
      policy: 'enforce' as const,
      require: DEFAULT_REQUIRE,
      digestPulls: 'allow' as const,
      repositories: [
        { match: 'a/*', policy: 'audit' as const },
        { match: 'b/*', policy: 'enforce' as const, require: cosign },
      ],
    };
    const c = candidatePolicies(u);
    expect(c.map((x) => [x.entry, x.requireFrom, x.eff.policy, x.eff.require.label])).toEqual([
      [undefined, undefined, 'enforce', 'dct'],
      [0, undefined, 'audit', 'dct'],
      [0, 1, 'audit', 'cosign'],
      [1, undefined, 'enforce', 'cosign'],
    ]);
    expect(firstMatching([{ match: 'x/**', v: 1 }, { match: 'x/y', v: 2 }], 'x/y', (e) => e.v, 0)).toBe(1);
    expect(firstMatching([{ match: 'x/**', v: undefined }, { match: 'x/y', v: 2 }], 'x/y', (e) => e.v, 0)).toBe(2);
    expect(firstMatching([{ match: 'z', v: 1 }], 'x/y', (e) => e.v, 0)).toBe(0);
  });
});
