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

// Patterns compiled once per config entry, not on every request (the entries are frozen config objects;
// a WeakMap lets a reloaded config's old entries go).
const compiled = new WeakMap<object, RegExp>();
function matches(r: { match: string }, repo: string): boolean {
  let re = compiled.get(r);
  if (!re) compiled.set(r, (re = globToRegExp(r.match)));
  return re.test(repo);
}

export function policyFor(upstream: Pick<UpstreamConfig, 'policy' | 'repositories'>, repo: string): PolicyMode {
  for (const r of upstream.repositories) if (matches(r, repo)) return r.policy;
  return upstream.policy;
}

/** Which signatures the repository's tags need: the first matching pattern that says, else the upstream's. */
export function requireFor(upstream: Pick<UpstreamConfig, 'require' | 'repositories'>, repo: string): RequireMode {
  for (const r of upstream.repositories) if (r.require && matches(r, repo)) return r.require;
  return upstream.require;
}
