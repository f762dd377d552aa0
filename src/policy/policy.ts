// Which policy applies to a repository: the first matching `repositories` pattern of its upstream,
// else the upstream's own. Pure.
import type { PolicyMode, RequireMode, UpstreamConfig } from '../config/schema.js';

/** `*` matches within one path segment, `**` across segments; everything else is literal. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function policyFor(upstream: Pick<UpstreamConfig, 'policy' | 'repositories'>, repo: string): PolicyMode {
  for (const r of upstream.repositories) if (globToRegExp(r.match).test(repo)) return r.policy;
  return upstream.policy;
}

/** Which signatures the repository's tags need: the first matching pattern that says, else the upstream's. */
export function requireFor(upstream: Pick<UpstreamConfig, 'require' | 'repositories'>, repo: string): RequireMode {
  for (const r of upstream.repositories) if (r.require && globToRegExp(r.match).test(repo)) return r.require;
  return upstream.require;
}
