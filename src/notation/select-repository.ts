// Which signature repository holds a repository's Notation signatures: the first repository entry
// matching it that sets `notation.repository`, else the upstream's `notation.repository`, else none
// (the image's own repository). The same first-match rule as `require` and cosign trust. Pure.
import { globToRegExp } from '../policy/policy.js';

export interface NotationRepositoryRule {
  match: string;
  repository: string;
}

export type NotationRepositorySelector = (repo: string) => string | undefined;

export function notationRepositorySelector(upstream: string | undefined, rules: readonly NotationRepositoryRule[]): NotationRepositorySelector {
  const compiled = rules.map((r) => ({ re: globToRegExp(r.match), repository: r.repository }));
  return (repo) => compiled.find((r) => r.re.test(repo))?.repository ?? upstream;
}
