// GET /v2/<name>/tags/list: the trust view. Under enforce only signed tags are listed (a repository
// without trust data lists none); under audit and off the upstream's list. `n` and `last` paginate
// over the sorted list as the distribution spec describes, with a Link header for the next page.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CODES, fail, isTrustgateError, TrustgateError } from '../../errors.js';
import { readBodyCapped } from '../../http/read-capped.js';
import { parseUpstreamObject } from '../../http/upstream-json.js';
import { effectivePolicy, type EffectivePolicy } from '../../policy/effective.js';
import { decideTagsList, type TagsDecision, type TagsPorts } from '../../policy/decide.js';
import { ExpiringLru } from '../../store/expiring-lru.js';
import { audit } from '../../observe/logger.js';
import { MANIFEST_MEDIA_TYPES } from '../../registry/registry-client.js';
import { fetchByTag, tagKey, verifiedManifest } from './manifest.js';
import { missingSourceRefusal, tagResolutionsOf, type ServerDeps, type UpstreamDeps } from '../deps.js';
import type { Route } from '../route.js';

type TagsRoute = Extract<Route, { kind: 'tags' }>;

async function upstreamTags(up: UpstreamDeps, repo: string, maxBytes: number): Promise<string[]> {
  const res = await up.registry.send(`/v2/${repo}/tags/list`, { method: 'GET', repo, signal: AbortSignal.timeout(30_000) });
  if (res.statusCode === 404) {
    await res.body.dump();
    return [];
  }
  if (res.statusCode !== 200) {
    await res.body.dump().catch(() => {});
    throw fail('UPSTREAM_UNAVAILABLE', `upstream ${up.config.name} answered ${res.statusCode} for the tags of ${repo}`);
  }
  const body = await readBodyCapped(res.body, maxBytes, `tags of ${repo}`, res.headers['content-length']);
  return parseTagList(Buffer.from(body), `upstream ${up.config.name} tags of ${repo}`);
}

/** The upstream's answer is input: `{"name":…, "tags":[strings] | null}` or UPSTREAM_INVALID. */
export function parseTagList(body: Buffer, what: string): string[] {
  const tags = parseUpstreamObject(body, what).tags;
  if (tags === undefined || tags === null) return []; // distribution answers `"tags": null` for an empty repository
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw fail('UPSTREAM_INVALID', `${what}: tags is not a list of strings`);
  return tags as string[];
}

/** The ports of a tags/list decision over this upstream. */
function tagsPorts(deps: ServerDeps, up: UpstreamDeps, gun: string, repo: string): TagsPorts {
  const maxBytes = deps.config.limits.manifestBytes;
  return {
    upstreamTags: () => upstreamTags(up, repo, maxBytes),
    dctTags: () => up.trust!.signedTags(gun),
    prove: (kind, d) => up.signatures![kind]!.verify(up.registry, gun, repo, d),
    // Through the same tag resolutions and verified manifests as the manifest path: a listing warms
    // what pulls use, and a second listing within cache.tagTtlSeconds asks the upstream nothing.
    tagDescriptor: async (tag) => {
      let r;
      try {
        r = await tagResolutionsOf(deps, up).resolve(tagKey(up, repo, tag), () => fetchByTag(up, repo, tag, MANIFEST_MEDIA_TYPES));
      } catch (err) {
        if (isTrustgateError(err) && err.code === 'MANIFEST_UNKNOWN') return undefined;
        throw err;
      }
      return { digest: r.value.digest, size: r.value.m.bytes.length, mediaType: r.value.m.mediaType };
    },
    signedDescriptor: async (t) => {
      // The registry is not trusted: the bytes must be the signed ones before their media type counts.
      const m = await verifiedManifest(deps, up, repo, t.digest, t.length, MANIFEST_MEDIA_TYPES, `signed for ${t.tag} by ${t.role}`);
      return { digest: t.digest, size: m.bytes.length, mediaType: m.mediaType };
    },
    maxVerifications: deps.config.limits.maxTagsListed,
  };
}

const listings = new WeakMap<UpstreamDeps, ExpiringLru<TagsDecision>>();

/**
 * A listing that verifies signatures (Notation, cosign) is kept for cache.tagTtlSeconds, and concurrent
 * listings of one repository share one computation (issue 27: one listing of 153 tags made 614 upstream
 * GETs, and so did every repeat). DCT-only listings come from the trust service's own cache as before.
 */
function listingOf(deps: ServerDeps, up: UpstreamDeps, eff: EffectivePolicy, repo: string, after: string | undefined, decide: () => Promise<TagsDecision>): Promise<TagsDecision> {
  if (eff.require.of.every((k) => k === 'dct')) return decide();
  let cache = listings.get(up);
  // Bounded in entries and in bytes (an upstream's tag list may be megabytes).
  if (!cache) listings.set(up, (cache = new ExpiringLru(1000, { of: (d) => d.tags.reduce((n, t) => n + t.length + 16, 64), max: 16 * 1024 * 1024 })));
  const ttlMs = deps.config.cache.tagTtlSeconds * 1000;
  const nowMs = () => deps.clock.nowMs?.() ?? deps.clock.now().getTime();
  return cache.getOrLoad(`${repo}\0${after ?? ''}`, nowMs, async () => ({ value: await decide(), until: nowMs() + ttlMs })).then((e) => e.value);
}

export async function handleTags(route: TagsRoute, req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  const up = deps.upstreams.get(route.upstream.name)!;
  const eff = effectivePolicy(up.config, route.repo);
  const gun = `${up.config.gun}/${route.repo}`;
  let all: string[];
  let truncatedAfter: string | undefined;
  try {
    const missing = eff.policy === 'enforce' ? missingSourceRefusal(up, eff, `${route.repo} tags`) : undefined;
    if (missing) throw missing;
    // Under enforce, the trust view, decided by policy/decide.ts as the manifest path decides each tag.
    if (eff.policy !== 'enforce') all = await upstreamTags(up, route.repo, deps.config.limits.manifestBytes);
    else {
      const d = await listingOf(deps, up, eff, route.repo, route.last, () => decideTagsList(eff, tagsPorts(deps, up, gun, route.repo), route.last));
      all = [...d.tags];
      truncatedAfter = d.truncatedAfter;
    }
  } catch (err) {
    // A listing that fails is a decision an operator must see too (malformed upstream answers included).
    // The client is told what it asked for and the rule; the detail (trust-server addresses) is the audit line's.
    if (!isTrustgateError(err)) throw err;
    audit(deps, { upstream: up.config.name, gun, repo: route.repo, ref: 'tags/list', policy: eff.policy, require: eff.require.label, decision: 'deny', code: err.code, reason: err.message, durationMs: 0 });
    throw new TrustgateError(err.code, `tags of ${route.repo}: ${CODES[err.code].summary}`, { cause: err });
  }
  all.sort();
  // Cut short by limits.maxTagsListed: only what was decided is listed, and the Link goes on after it.
  let after = route.last !== undefined ? all.filter((t) => t > route.last!) : all;
  if (truncatedAfter !== undefined) after = after.filter((t) => t <= truncatedAfter!);
  const page = route.n !== undefined ? after.slice(0, route.n) : after;
  const headers: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'docker-distribution-api-version': 'registry/2.0' };
  const prefix = route.upstream.name !== deps.config.default && req.url?.startsWith(`/v2/${route.upstream.name}/`) ? `${route.upstream.name}/` : '';
  const n = route.n !== undefined ? `n=${route.n}&` : '';
  if (route.n !== undefined && page.length < after.length && page.length > 0) {
    headers.link = `</v2/${prefix}${route.repo}/tags/list?${n}last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`;
  } else if (truncatedAfter !== undefined && truncatedAfter !== '') {
    headers.link = `</v2/${prefix}${route.repo}/tags/list?${n}last=${encodeURIComponent(truncatedAfter)}>; rel="next"`;
  }
  const body = JSON.stringify({ name: route.repo, tags: page });
  headers['content-length'] = Buffer.byteLength(body);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}
