import { describe, expect, it } from 'vitest';
import { globToRegExp, policyFor } from '../../../src/policy/policy.js';

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
