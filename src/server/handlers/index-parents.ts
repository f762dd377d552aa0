// Where the candidate parents of a child digest come from (policy/covered-children.ts has the rule):
//   1. the indexes this server has served `allow` in the repository: children → parent digests, kept in a
//      bounded LRU (a client pulls the index, by tag or by digest, right before its children);
//   2. with no such record (another replica served the index, or this one restarted) and DCT in the
//      requirement: the signed targets of the GUN, each target's manifest fetched through the verified
//      manifest cache with its signed length, at most limits.maxTagsListed of them. That scan is
//      single-flight per repository and its child → parents map is reused for cache.tagTtlSeconds (at
//      least 1 s), so a flood of random digests cannot multiply requests upstream.
// Either way a candidate is only a hint: coverChild checks that its verified bytes list the child and
// that it is covered now (decide.ts satisfyDigest) on every request. docs/trust-model.md, "Multi-arch
// images under digestPulls: signed".
import { isTrustgateError } from '../../errors.js';
import { satisfyDigest, type DecidePorts, type Decision, type Refusals } from '../../policy/decide.js';
import { coverChild, indexChildren, isIndex, MAX_INDEX_CHILDREN, type CoverPorts, type IndexCaps } from '../../policy/covered-children.js';
import type { EffectivePolicy } from '../../policy/effective.js';
import { ExpiringLru } from '../../store/expiring-lru.js';
import type { CachedManifest } from '../../store/manifest-cache.js';
import type { ServerDeps, UpstreamDeps } from '../deps.js';

/** Children recorded from served indexes (one entry per repository and child). */
export const MAX_RECORDED_CHILDREN = 10_000;
/** Parents kept per child: the most recently served first. */
const MAX_PARENTS_PER_CHILD = 4;
/** Children one scan keeps; past it the rest of the repository's indexes cover nothing until they are served here. */
const MAX_SCANNED_CHILDREN = 10_000;
/** Repositories whose scan is kept, and the children all kept scans hold together. */
const MAX_SCANS = 256;
const MAX_SCANS_WEIGHT = 100_000;
/** Signed targets fetched at once during a scan. */
const SCAN_CONCURRENCY = 4;

type Load = (digest: string, length: number | undefined, what: string) => Promise<CachedManifest>;
type ChildParents = ReadonlyMap<string, readonly string[]>;

/** One per server: what it served and what it scanned. */
class IndexParents {
  readonly served = new ExpiringLru<readonly string[]>(MAX_RECORDED_CHILDREN);
  readonly scans = new ExpiringLru<ChildParents>(MAX_SCANS, { of: (m) => m.size + 1, max: MAX_SCANS_WEIGHT });
}

// Keyed by the server's deps object, as deps.ts keeps the tag resolutions it makes: the state lives and
// goes with that server, never shared between two built in one process (tests build many).
const perServer = new WeakMap<ServerDeps, IndexParents>();

function parentsOf(deps: ServerDeps): IndexParents {
  let p = perServer.get(deps);
  if (!p) perServer.set(deps, (p = new IndexParents()));
  return p;
}

const capsOf = (deps: ServerDeps): IndexCaps => ({ maxBytes: deps.config.limits.manifestBytes, maxChildren: MAX_INDEX_CHILDREN });
const nowMs = (deps: ServerDeps): number => deps.clock.nowMs?.() ?? deps.clock.now().getTime();

/** After a decision is rendered: an index served `allow` records its children → its digest. */
export function noteServedIndex(deps: ServerDeps, d: Decision<CachedManifest>): void {
  if (d.outcome !== 'serve' || d.audit.decision !== 'allow' || !isIndex(d.manifest)) return;
  const children = indexChildren(d.manifest, capsOf(deps));
  if (!children) return;
  const { served } = parentsOf(deps);
  const repoKey = `${d.audit.upstream}/${d.audit.repo}`;
  for (const child of children) {
    const key = `${repoKey}@${child}`;
    const had = served.get(key) ?? [];
    if (had[0] === d.digest) continue;
    served.set(key, [d.digest, ...had.filter((x) => x !== d.digest)].slice(0, MAX_PARENTS_PER_CHILD));
  }
}

/**
 * DigestQuery.coveredBy for `child` in `repo`: the record first, then (DCT in the requirement) the scan.
 * `load` fetches a manifest by digest through the verified manifest cache (manifest.ts verifiedManifest).
 */
export function coveredByParents(deps: ServerDeps, up: UpstreamDeps, eff: EffectivePolicy, gun: string, repo: string, child: string, ports: DecidePorts<CachedManifest, any>, load: Load): (refusals: Refusals) => Promise<string | undefined> {
  return async (refusals) => {
    const cover: CoverPorts<CachedManifest> = {
      load: (parent) => load(parent, undefined, `index listing ${child}`),
      // The same effective policy, the same ports: exactly what a pull of the index by digest would get.
      covered: (parent, m, r) => satisfyDigest(ports, eff, gun, m, parent, r),
      caps: capsOf(deps),
    };
    const repoKey = `${up.config.name}/${repo}`;
    const tried = new Set<string>();
    const by = await coverChild(child, parentsOf(deps).served.get(`${repoKey}@${child}`) ?? [], cover, refusals, tried);
    if (by || !eff.require.of.includes('dct') || !up.trust) return by;
    const scanned = await scanOf(deps, up, gun, repoKey, load).catch(refusals.catch);
    return scanned ? coverChild(child, scanned.get(child) ?? [], cover, refusals, tried) : undefined;
  };
}

/** The repository's child → signed-index map, scanned once per cache.tagTtlSeconds (at least 1 s), single-flight. */
async function scanOf(deps: ServerDeps, up: UpstreamDeps, gun: string, repoKey: string, load: Load): Promise<ChildParents> {
  const ttlMs = Math.max(1000, (deps.config.cache?.tagTtlSeconds ?? 10) * 1000);
  const e = await parentsOf(deps).scans.getOrLoad(repoKey, () => nowMs(deps), async () => {
    const value = await scanSignedIndexes(deps, up, gun, load);
    return { value, until: nowMs(deps) + ttlMs };
  });
  return e.value;
}

/** Every index among the GUN's signed targets (at most limits.maxTagsListed distinct digests), by the children it lists. */
async function scanSignedIndexes(deps: ServerDeps, up: UpstreamDeps, gun: string, load: Load): Promise<ChildParents> {
  const t0 = performance.now();
  const targets = await up.trust!.signedTags(gun);
  const seen = new Set<string>();
  const list = targets.filter((t) => !seen.has(t.digest) && seen.add(t.digest)).slice(0, deps.config.limits.maxTagsListed);
  const caps = capsOf(deps);
  const map = new Map<string, string[]>();
  let indexes = 0;
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < list.length; i = next++) {
      const t = list[i]!;
      let m: CachedManifest;
      try {
        m = await load(t.digest, t.length, `signed for ${t.tag} by ${t.role}`);
      } catch (err) {
        if (!isTrustgateError(err)) throw err;
        continue; // a target whose manifest cannot be had (or does not verify) lists nothing
      }
      const children = indexChildren(m, caps);
      if (!children) continue;
      indexes++;
      for (const c of children) {
        const l = map.get(c);
        if (l) {
          if (l.length < MAX_PARENTS_PER_CHILD && !l.includes(t.digest)) l.push(t.digest);
        } else if (map.size < MAX_SCANNED_CHILDREN) map.set(c, [t.digest]);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SCAN_CONCURRENCY, list.length) }, worker));
  deps.log.debug({ upstream: up.config.name, gun, targets: list.length, indexes, children: map.size, durationMs: Math.round(performance.now() - t0) }, 'scanned signed targets for multi-arch indexes');
  return map;
}
