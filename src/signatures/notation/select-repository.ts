// Which signature repository holds a repository's Notation signatures: the first repository entry
// matching it that sets `notation.repository`, else the upstream's `notation.repository`, else none
// (the image's own repository). The first-match rule of policy/effective.ts, applied by it. Pure.
import { firstMatching } from '../../policy/effective.js';

export interface NotationRepositoryRule {
  match: string;
  repository: string;
}

export type NotationRepositorySelector = (repo: string) => string | undefined;

export function notationRepositorySelector(upstream: string | undefined, rules: readonly NotationRepositoryRule[]): NotationRepositorySelector {
  return (repo) => firstMatching(rules, repo, (r) => r.repository, upstream);
}
