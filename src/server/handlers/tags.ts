// GET /v2/<name>/tags/list: the trust view. Under enforce only signed tags are listed (a repository
// without trust data lists none); under audit and off the upstream's list. `n` and `last` paginate
// over the sorted list as the distribution spec describes, with a Link header for the next page.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fail, isTrustgateError } from '../../errors.js';
import { readBodyCapped } from '../../http/read-capped.js';
import { policyFor } from '../../policy/policy.js';
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
  const tags = (JSON.parse(Buffer.from(body).toString('utf8')) as { tags?: unknown }).tags;
  return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [];
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
  const policy = policyFor(up.config, route.repo);
  const all = policy === 'enforce' && up.trust
    ? await signedTags(up, `${up.config.gun}/${route.repo}`)
    : await upstreamTags(up, route.repo, deps.config.limits.manifestBytes);
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
