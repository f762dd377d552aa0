// The warm tag path, answered synchronously: a tag whose verified mapping and manifest bytes are both
// in memory gets the same answer handleManifest would give — the same audit line, headers and bytes —
// without a promise, a closure or a record built per request. Anything else (cold, expired, another
// requirement, a refusal) returns false and goes the full way (manifest.ts), which is also what
// proves an answer before it is kept here. docs/benchmarks.md, "The warm HEAD path, second profile pass".
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UpstreamConfig } from '../../config/schema.js';
import { auditPrepared, PreparedAudit } from '../../observe/logger.js';
import { effectivePolicy } from '../../policy/effective.js';
import type { CachedManifest } from '../../store/manifest-cache.js';
import type { SignedTarget } from '../../trust/resolve-tag.js';
import { dctLabel, type ResolvedTarget } from '../../trust/trust-service.js';
import { missingSourceRefusal, type ServerDeps, type UpstreamDeps } from '../deps.js';
import type { Route } from '../route.js';
import { manifestHeaders } from './manifest.js';

/** What one tag of one repository answers while its verified mapping lasts. */
interface WarmAnswer {
  /** The mapping it was proven for: the trust service hands out a new object for every new set. */
  target: ResolvedTarget;
  config: UpstreamConfig;
  audit: PreparedAudit;
  headers: Readonly<Record<string, string | number>>;
}

/** Tags kept per manifest: a digest signed under many tags must not grow its entry without bound. */
const MAX_TAGS_PER_MANIFEST = 64;

/**
 * The answer for `tag` if the full path would allow it with Notary v1 (dct) alone: a policy that
 * verifies (enforce or audit: both allow a verified tag), an `any-of` requirement naming dct (the full
 * path tries dct first and stops there), every source the requirement names configured, and bytes of
 * the signed length. Else undefined. The fields are those of handleManifest's allow record, in its order.
 */
function proveAnswer(up: UpstreamDeps, repo: string, tag: string, gun: string, target: ResolvedTarget, m: CachedManifest): WarmAnswer | undefined {
  const eff = effectivePolicy(up.config, repo);
  if (eff.policy === 'off' || eff.require.mode !== 'any-of' || !eff.require.of.includes('dct')) return undefined;
  if (missingSourceRefusal(up, eff, `${repo}:${tag}`) || m.bytes.length !== target.length) return undefined;
  const by = dctLabel(target);
  const rec = {
    upstream: up.config.name,
    gun,
    repo,
    ref: tag,
    policy: eff.policy,
    require: eff.require.label,
    digest: target.digest,
    role: target.role,
    decision: 'allow' as const,
    satisfiedBy: by,
    ...(target.stale ? { stale: true } : {}),
    ...(target.frozen ? { frozen: target.frozen } : {}),
  };
  return { target, config: up.config, audit: new PreparedAudit(rec), headers: manifestHeaders(m, target.digest, by) };
}

/** The lookup keys of one route (a memoised route object: server/route-memo.ts), built once, not per request. */
interface RouteKeys {
  gun: string;
  /** The target the manifest key was built for, and that key. */
  target?: SignedTarget | undefined;
  manifestKey: string;
}

/** One per server: answers warm HEAD/GET of manifests by tag. */
export class WarmTags {
  // Keyed by the route object: the strings a lookup needs (the GUN, the manifest cache key) are built
  // and hashed once per route rather than concatenated per request. Weak: routes come and go with the memo.
  private readonly keys = new WeakMap<object, RouteKeys>();

  constructor(private readonly deps: ServerDeps) {}

  /** Answers a warm HEAD/GET of a manifest by tag and returns true, or returns false having done nothing. */
  answer(route: Extract<Route, { kind: 'manifest' }>, req: IncomingMessage, res: ServerResponse): boolean {
    const tag = route.ref.tag;
    if (tag === undefined) return false;
    const deps = this.deps;
    const up = deps.upstreams.get(route.upstream.name);
    if (!up?.trust) return false;
    const t0 = performance.now();
    let k = this.keys.get(route);
    if (!k) this.keys.set(route, (k = { gun: `${up.config.gun}/${route.repo}`, manifestKey: '' }));
    const target = up.trust.resolvedNow(k.gun, tag);
    if (!target) return false;
    if (k.target !== target) {
      k.manifestKey = `${up.config.name}/${route.repo}@${target.digest}`;
      k.target = target;
    }
    const m = deps.manifests.get(k.manifestKey);
    if (!m) return false;
    let a = m.answers?.get(tag) as WarmAnswer | undefined;
    if (a?.target !== target || a.config !== up.config) {
      a = proveAnswer(up, route.repo, tag, k.gun, target, m);
      if (!a) return false;
      m.answers ??= new Map();
      if (m.answers.size < MAX_TAGS_PER_MANIFEST || m.answers.has(tag)) m.answers.set(tag, a);
    }
    // As in handleManifest: the audit line is queued before the response is written.
    auditPrepared(deps, a.audit, Math.round((performance.now() - t0) * 10) / 10);
    res.writeHead(200, a.headers);
    res.end(req.method === 'HEAD' ? undefined : m.bytes);
    return true;
  }
}
