// GET /v2/<name>/tags/list: the trust view. Under enforce only signed tags are listed (a repository
// without trust data lists none); under audit and off the upstream's list. `n` and `last` paginate
// over the sorted list as the distribution spec describes, with a Link header for the next page.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CODES, fail, isTrustgateError, TrustgateError } from '../../errors.js';
import { readBodyCapped } from '../../http/read-capped.js';
import { parseUpstreamObject } from '../../http/upstream-json.js';
import { effectivePolicy } from '../../policy/effective.js';
import { audit } from '../../observe/logger.js';
import { MANIFEST_MEDIA_TYPES } from '../../registry/registry-client.js';
import { mediaTypeOf } from './manifest.js';
import { missingSourceRefusal, type ServerDeps, type UpstreamDeps } from '../deps.js';
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

async function signedTags(up: UpstreamDeps, gun: string): Promise<string[]> {
  try {
    return (await up.trust!.signedTags(gun)).map((t) => t.tag);
  } catch (err) {
    if (isTrustgateError(err) && err.code === 'TRUST_DATA_MISSING') return [];
    throw err;
  }
}

/**
 * Notation and cosign sign digests: under a requirement of those kinds the trust view is the tags
 * whose current digest carries signatures that satisfy it (`any-of`: one kind, `all-of`: every kind).
 * Each tag's manifest is fetched (its digest, size and media type are what a signature must name) and
 * verified, a few at a time. Verified Notation inspections are cached by signature digest, so listing
 * again costs the referrers look-ups, not the signatures. `skip`: tags already known to be signed.
 */
async function digestSignedTags(up: UpstreamDeps, repo: string, gun: string, maxBytes: number, kinds: readonly ('notation' | 'cosign')[], mode: 'any-of' | 'all-of', skip: ReadonlySet<string> = new Set()): Promise<string[]> {
  const tags = (await upstreamTags(up, repo, maxBytes)).filter((t) => !skip.has(t));
  const ok = new Array<boolean>(tags.length).fill(false);
  let next = 0;
  const satisfies = async (kind: 'notation' | 'cosign', m: { digest: string; size: number; mediaType: string }) => {
    try {
      await up.signatures![kind]!.verify(up.registry, gun, repo, m);
      return true;
    } catch (err) {
      // A tag that is not signed (or whose signatures fail) is simply not listed; upstream trouble is.
      if (!isTrustgateError(err) || !(err.code.startsWith('NOTATION_') || err.code.startsWith('COSIGN_'))) throw err;
      return false;
    }
  };
  const worker = async () => {
    for (let i = next++; i < tags.length; i = next++) {
      const m = await up.registry.fetchManifest(repo, tags[i]!, MANIFEST_MEDIA_TYPES);
      if (!m) continue;
      const d = { digest: `sha256:${createHash('sha256').update(m.bytes).digest('hex')}`, size: m.bytes.length, mediaType: mediaTypeOf(m.bytes, m.mediaType) };
      let passed = 0;
      for (const kind of kinds) {
        if (await satisfies(kind, d)) passed++;
        else if (mode === 'all-of') break;
        if (mode === 'any-of' && passed > 0) break;
      }
      ok[i] = mode === 'any-of' ? passed > 0 : passed === kinds.length;
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, tags.length) }, worker));
  return tags.filter((_, i) => ok[i]);
}

export async function handleTags(route: TagsRoute, req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  const up = deps.upstreams.get(route.upstream.name)!;
  const eff = effectivePolicy(up.config, route.repo);
  const gun = `${up.config.gun}/${route.repo}`;
  let all: string[];
  try {
    const missing = eff.policy === 'enforce' ? missingSourceRefusal(up, eff, `${route.repo} tags`) : undefined;
    if (missing) throw missing;
    // Under enforce, the trust view: tags signed with DCT where the requirement includes it; under a
    // requirement of digest-signing kinds (notation, cosign), the tags whose current digest carries
    // satisfying signatures; `any-of` mixing both is the union of the two.
    const digestKinds = eff.require.of.filter((k): k is 'notation' | 'cosign' => k !== 'dct');
    const withDct = eff.require.of.includes('dct');
    if (eff.policy !== 'enforce') all = await upstreamTags(up, route.repo, deps.config.limits.manifestBytes);
    else if (!withDct) all = await digestSignedTags(up, route.repo, gun, deps.config.limits.manifestBytes, digestKinds, eff.require.mode);
    else if (eff.require.mode === 'any-of' && digestKinds.length > 0) {
      const dct = await signedTags(up, gun);
      all = [...dct, ...(await digestSignedTags(up, route.repo, gun, deps.config.limits.manifestBytes, digestKinds, 'any-of', new Set(dct)))];
    } else all = await signedTags(up, gun);
  } catch (err) {
    // A listing that fails is a decision an operator must see too (malformed upstream answers included).
    // The client is told what it asked for and the rule; the detail (trust-server addresses) is the audit line's.
    if (!isTrustgateError(err)) throw err;
    audit(deps, { upstream: up.config.name, gun, repo: route.repo, ref: 'tags/list', policy: eff.policy, require: eff.require.label, decision: 'deny', code: err.code, reason: err.message, durationMs: 0 });
    throw new TrustgateError(err.code, `tags of ${route.repo}: ${CODES[err.code].summary}`, { cause: err });
  }
  all.sort();
  const after = route.last !== undefined ? all.filter((t) => t > route.last!) : all;
  const page = route.n !== undefined ? after.slice(0, route.n) : after;
  const headers: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'docker-distribution-api-version': 'registry/2.0' };
  if (route.n !== undefined && page.length < after.length && page.length > 0) {
    const prefix = route.upstream.name !== deps.config.default && req.url?.startsWith(`/v2/${route.upstream.name}/`) ? `${route.upstream.name}/` : '';
    headers.link = `</v2/${prefix}${route.repo}/tags/list?n=${route.n}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`;
  }
  const body = JSON.stringify({ name: route.repo, tags: page });
  headers['content-length'] = Buffer.byteLength(body);
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}
