// GET /v2/<name>/tags/list: the trust view. Under enforce only signed tags are listed (a repository
// without trust data lists none); under audit and off the upstream's list. `n` and `last` paginate
// over the sorted list as the distribution spec describes, with a Link header for the next page.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fail, isTrustgateError } from '../../errors.js';
import { readBodyCapped } from '../../http/read-capped.js';
import { parseUpstreamObject } from '../../http/upstream-json.js';
import { effectivePolicy, missingSources } from '../../policy/effective.js';
import { audit } from '../../observe/logger.js';
import type { ServerDeps, UpstreamDeps } from '../deps.js';
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

export async function handleTags(route: TagsRoute, req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  const up = deps.upstreams.get(route.upstream.name)!;
  const eff = effectivePolicy(up.config, route.repo);
  const gun = `${up.config.gun}/${route.repo}`;
  let all: string[];
  try {
    if (eff.policy === 'enforce' && missingSources(eff, { dct: up.trust !== undefined, notation: up.signatures?.notation !== undefined, cosign: up.signatures?.cosign !== undefined }).length > 0) {
      throw fail('TRUST_SOURCE_MISSING', `${route.repo}: policy enforce requires ${eff.require.label}, which upstream ${up.config.name} does not configure`);
    }
    // Under enforce, the trust view: tags signed with DCT where the requirement includes it.
    all = eff.policy === 'enforce' && eff.require.of.includes('dct') && up.trust ? await signedTags(up, gun) : await upstreamTags(up, route.repo, deps.config.limits.manifestBytes);
  } catch (err) {
    // A listing that fails is a decision an operator must see too (malformed upstream answers included).
    if (isTrustgateError(err)) audit(deps.log, { upstream: up.config.name, gun, repo: route.repo, ref: 'tags/list', policy: eff.policy, require: eff.require.label, decision: 'deny', code: err.code, reason: err.message, durationMs: 0 }, deps.metrics);
    throw err;
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
