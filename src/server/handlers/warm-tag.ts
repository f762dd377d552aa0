// The warm tag path, answered synchronously: a tag whose decision can be replayed from memory gets the
// same answer handleManifest would give — the same audit line, headers and bytes — without a promise,
// a closure or a record built per request. The decision is policy/decide.ts replayTag's, over the
// caches the full path fills: DCT's fresh trusted set, tag resolutions (cache.tagTtlSeconds) and
// signature verdicts (signatures/verdicts.ts), for every signature kind and `require` form. Anything
// else (cold, expired, a refusal) returns false and goes the full way (manifest.ts), which is also what
// fills those caches. docs/benchmarks.md, "The warm HEAD path, second profile pass".
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UpstreamConfig } from '../../config/schema.js';
import { auditPrepared, PreparedAudit } from '../../observe/logger.js';
import { replayTag, type ReplayPorts } from '../../policy/decide.js';
import { effectivePolicy, type EffectivePolicy } from '../../policy/effective.js';
import type { Expiring } from '../../store/expiring-lru.js';
import type { CachedManifest } from '../../store/manifest-cache.js';
import type { TagResolution, TagResolutions } from '../../registry/tag-resolutions.js';
import { CachedProver } from '../../signatures/verdicts.js';
import { dctLabel, type ResolvedTarget } from '../../signatures/dct/trust-service.js';
import { missingSourceRefusal, tagResolutionsOf, type ServerDeps, type UpstreamDeps } from '../deps.js';
import type { Route } from '../route.js';
import { manifestHeaders, tagKey } from './manifest.js';
import { noteServedIndex } from './index-parents.js';

/** What one tag answers while the cache entries it was replayed from stay live. */
interface WarmAnswer {
  /** The DCT mapping it rests on (the trust service hands out a new object for every new set). */
  target?: ResolvedTarget | undefined;
  /** The tag resolution it rests on (digest-signing kinds without DCT). */
  resolution?: object | undefined;
  /** The verdicts it rests on (Notation, cosign). */
  verdicts: readonly Expiring<unknown>[];
  config: UpstreamConfig;
  audit: PreparedAudit;
  headers: Readonly<Record<string, string | number>>;
}

/** Tags kept per manifest: a digest signed under many tags must not grow its entry without bound. */
const MAX_TAGS_PER_MANIFEST = 64;

/** The lookup keys of one route (a memoised route object: server/route-memo.ts), built once, not per request. */
interface RouteKeys {
  gun: string;
  config: UpstreamConfig;
  eff: EffectivePolicy;
  /** Whether the requirement names dct: the answer then rests on the DCT mapping (and lives on its manifest). */
  dct: boolean;
  tagKey: string;
  /** The target the manifest key was built for, and that key. */
  target?: ResolvedTarget | undefined;
  manifestKey: string;
  /** The tag resolution last answered from (digest-signing kinds): used while live, without a look-up. */
  resolution?: Expiring<TagResolution> | undefined;
}

const verdictsLive = (a: WarmAnswer, now: number): boolean => {
  for (const v of a.verdicts) if (!v.live || v.until <= now) return false;
  return true;
};

/** One per server: answers warm HEAD/GET of manifests by tag. */
export class WarmTags {
  // Keyed by the route object: the strings a lookup needs (the GUN, the cache keys) are built and
  // hashed once per route rather than concatenated per request. Weak: routes come and go with the memo.
  private readonly keys = new WeakMap<object, RouteKeys>();
  /** Answers resting on a tag resolution, by that resolution entry (it goes when the entry goes). */
  private readonly byResolution = new WeakMap<object, WarmAnswer>();

  constructor(private readonly deps: ServerDeps) {}

  private nowMs(): number {
    return this.deps.clock.nowMs?.() ?? this.deps.clock.now().getTime();
  }

  /** Answers a warm HEAD/GET of a manifest by tag and returns true, or returns false having done nothing. */
  answer(route: Extract<Route, { kind: 'manifest' }>, req: IncomingMessage, res: ServerResponse): boolean {
    const tag = route.ref.tag;
    if (tag === undefined) return false;
    const deps = this.deps;
    const up = deps.upstreams.get(route.upstream.name);
    if (!up) return false;
    const t0 = performance.now();
    let k = this.keys.get(route);
    if (k?.config !== up.config) {
      const eff = effectivePolicy(up.config, route.repo);
      k = { gun: `${up.config.gun}/${route.repo}`, config: up.config, eff, dct: eff.require.of.includes('dct'), tagKey: tagKey(up, route.repo, tag), manifestKey: '' };
      this.keys.set(route, k);
    }
    if (k.eff.policy === 'off') return false;
    let m: CachedManifest | undefined;
    let a: WarmAnswer | undefined;
    const now = this.nowMs();
    if (k.dct) {
      const target = up.trust?.resolvedNow(k.gun, tag);
      if (!target) return false;
      if (k.target !== target) {
        k.manifestKey = `${up.config.name}/${route.repo}@${target.digest}`;
        k.target = target;
      }
      m = deps.manifests.get(k.manifestKey);
      if (!m) return false;
      a = m.answers?.get(tag) as WarmAnswer | undefined;
      if (a?.target !== target || a.config !== up.config || !verdictsLive(a, now)) {
        a = this.replay(up, k, route.repo, tag);
        if (!a) return false;
        m.answers ??= new Map();
        if (m.answers.size < MAX_TAGS_PER_MANIFEST || m.answers.has(tag)) m.answers.set(tag, a);
      }
    } else {
      let r = k.resolution;
      if (!r?.live || r.until <= now) {
        r = k.resolution = tagResolutionsOf(deps, up).now(k.tagKey);
        if (!r) return false;
      }
      m = r.value.m;
      a = this.byResolution.get(r);
      if (a?.config !== up.config || !verdictsLive(a, now)) {
        a = this.replay(up, k, route.repo, tag);
        if (a?.resolution !== r) return false;
        this.byResolution.set(r, a);
      }
    }
    // As in handleManifest: the audit line is queued before the response is written.
    auditPrepared(deps, a.audit, Math.round((performance.now() - t0) * 10) / 10);
    res.writeHead(200, a.headers);
    res.end(req.method === 'HEAD' ? undefined : m.bytes);
    return true;
  }

  /** replayTag over this upstream's caches: the answer and what it rests on, or undefined. */
  private replay(up: UpstreamDeps, k: RouteKeys, repo: string, tag: string): WarmAnswer | undefined {
    const deps = this.deps;
    const tags: TagResolutions = tagResolutionsOf(deps, up);
    const trust = up.trust;
    const ports: ReplayPorts<CachedManifest, ResolvedTarget> = {
      dct: trust && { now: (t) => trust.resolvedNow(k.gun, t), label: dctLabel },
      signedManifest: (digest, length) => {
        const m = deps.manifests.get(`${up.config.name}/${repo}@${digest}`);
        return m && m.bytes.length === length ? m : undefined;
      },
      tagNow: (t): Expiring<TagResolution> | undefined => tags.now(tagKey(up, repo, t)),
      verdictNow: (kind, d) => {
        const p = up.signatures?.[kind];
        return p instanceof CachedProver ? p.now(k.gun, d) : undefined;
      },
      missingSource: (what) => missingSourceRefusal(up, k.eff, what),
    };
    const r = replayTag({ upstream: up.config.name, gun: k.gun, repo, tag }, k.eff, ports);
    if (!r) return undefined;
    const d = r.decision;
    // An index answered warm (a tags/list may have filled the caches before any pull) records its
    // children too, as the full path does: its platform manifests are pulled by digest next.
    noteServedIndex(deps, d);
    return { target: r.target, resolution: r.resolution, verdicts: r.verdicts as Expiring<unknown>[], config: up.config, audit: new PreparedAudit(d.audit), headers: manifestHeaders(d.manifest, d.digest, d.verifiedBy) };
  }
}
