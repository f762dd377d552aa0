// Request → route, pure. Everything the handlers use to build an upstream request is checked here
// against the distribution grammar first: no upstream URL is ever built from unchecked input.
import type { UpstreamConfig } from '../config/schema.js';
import { fail, type TrustgateError } from '../errors.js';

export type Reference = { tag: string; digest?: undefined } | { digest: string; tag?: undefined };

export type Route =
  | { kind: 'ping' }
  | { kind: 'health' }
  | { kind: 'ready' }
  | { kind: 'metrics' }
  | { kind: 'manifest'; upstream: UpstreamConfig; repo: string; ref: Reference }
  | { kind: 'blob'; upstream: UpstreamConfig; repo: string; digest: string }
  | { kind: 'tags'; upstream: UpstreamConfig; repo: string; n?: number | undefined; last?: string | undefined };

// distribution/reference: path components of [a-z0-9] joined by . _ __ or -+, at most 255 in all.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isValidRepo(repo: string): boolean {
  return repo.length > 0 && repo.length <= 255 && repo.split('/').every((c) => COMPONENT.test(c));
}

function parseDigest(d: string): string {
  if (DIGEST.test(d)) return d;
  if (ANY_DIGEST.test(d)) throw fail('DIGEST_INVALID', `unsupported digest ${d.slice(0, 80)}: only sha256 is accepted`);
  throw fail('DIGEST_INVALID', `invalid digest ${JSON.stringify(d.slice(0, 80))}`);
}

export interface RouteContext {
  upstreams: readonly UpstreamConfig[];
  defaultUpstream?: string | undefined;
}

/** The registry host of an upstream's GUN prefix: what containerd sends as `?ns=`. */
function gunHost(u: UpstreamConfig): string {
  return u.gun.split('/')[0]!;
}

function pickUpstream(ctx: RouteContext, segments: string[], ns: string | null): { upstream: UpstreamConfig; segments: string[] } {
  if (ns !== null) {
    const host = ns === 'index.docker.io' || ns === 'registry-1.docker.io' ? 'docker.io' : ns;
    const u = ctx.upstreams.find((x) => gunHost(x) === host);
    if (!u) throw fail('NOT_FOUND', `no upstream is configured for registry ${JSON.stringify(ns.slice(0, 100))}`);
    return { upstream: u, segments };
  }
  const byPrefix = segments.length > 1 ? ctx.upstreams.find((x) => x.name === segments[0]) : undefined;
  if (byPrefix) return { upstream: byPrefix, segments: segments.slice(1) };
  const def = ctx.defaultUpstream !== undefined ? ctx.upstreams.find((x) => x.name === ctx.defaultUpstream) : undefined;
  if (!def) throw fail('NOT_FOUND', 'no upstream matches this path and no default upstream is configured');
  return { upstream: def, segments };
}

/** Routes without parameters; each answers GET and HEAD only. */
const FIXED_ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  ['/healthz', { kind: 'health' }],
  ['/readyz', { kind: 'ready' }],
  ['/metrics', { kind: 'metrics' }],
  ['/v2', { kind: 'ping' }],
  ['/v2/', { kind: 'ping' }],
]);

const NO_QUERY: Pick<URLSearchParams, 'get'> = { get: () => null };

export function routeRequest(method: string, rawUrl: string, ctx: RouteContext): Route {
  if (rawUrl.length > 4096) throw fail('NAME_INVALID', 'request URL too long');
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  // Clients send path-only URLs almost always (containerd adds ?ns=): no query object to build for them.
  const query = q === -1 ? NO_QUERY : new URLSearchParams(rawUrl.slice(q + 1));
  const fixed = FIXED_ROUTES.get(path);
  if (fixed) {
    // 405 is for a method the route does not take, and only for that (distribution spec).
    if (method !== 'GET' && method !== 'HEAD') throw fail('UNSUPPORTED', `${method} is not supported`);
    return fixed;
  }
  if (!path.startsWith('/v2/')) throw fail('NOT_FOUND', 'unknown route');
  if (method !== 'GET' && method !== 'HEAD') throw fail('UNSUPPORTED', `${method} is not supported: this proxy is read-only`);
  // Repository names never need percent-encoding; an encoded slash or dot is an attempt to smuggle
  // a different path past us to the upstream.
  if (path.includes('%')) throw fail('NAME_INVALID', 'percent-encoded characters are not allowed in the path');
  const segments = path.slice(4).split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) throw fail('NAME_INVALID', 'empty, "." or ".." path segment');

  // /v2/<name>/(manifests|blobs)/<ref> or /v2/<name>/tags/list — find the operation from the end.
  const n = segments.length;
  let op: 'manifests' | 'blobs' | 'tags' | undefined;
  let ref = '';
  let nameSegs: string[] = [];
  if (n >= 3 && (segments[n - 2] === 'manifests' || segments[n - 2] === 'blobs')) {
    op = segments[n - 2] as 'manifests' | 'blobs';
    ref = segments[n - 1]!;
    nameSegs = segments.slice(0, n - 2);
  } else if (n >= 3 && segments[n - 2] === 'tags' && segments[n - 1] === 'list') {
    op = 'tags';
    nameSegs = segments.slice(0, n - 2);
  } else if (segments.includes('uploads') || segments.includes('blobs')) {
    // A GET or HEAD of an upload's status: the method is right, there is no such upload (405 is only
    // for a method the route does not take).
    throw fail('NOT_FOUND', 'this proxy is read-only: it has no uploads');
  }
  if (!op) throw fail('NOT_FOUND', 'unknown route');
  const { upstream, segments: repoSegs } = pickUpstream(ctx, nameSegs, query.get('ns'));
  const repo = repoSegs.join('/');
  if (!isValidRepo(repo)) throw fail('NAME_INVALID', `invalid repository name ${JSON.stringify(repo.slice(0, 100))}`);

  if (op === 'tags') {
    const nParam = query.get('n');
    const last = query.get('last') ?? undefined;
    // Bad pagination is the client's error: 400 (distribution's PAGINATION_NUMBER_INVALID), not 405.
    if (nParam !== null && !/^(?:0|[1-9]\d{0,5})$/.test(nParam)) throw fail('PAGINATION_INVALID', 'n must be an integer from 0 to 999999 without leading zeros');
    if (last !== undefined && !TAG.test(last)) throw fail('PAGINATION_INVALID', 'last must be a tag');
    return { kind: 'tags', upstream, repo, n: nParam === null ? undefined : Number(nParam), last };
  }
  if (op === 'blobs') return { kind: 'blob', upstream, repo, digest: parseDigest(ref) };
  if (ref.includes(':')) return { kind: 'manifest', upstream, repo, ref: { digest: parseDigest(ref) } };
  if (!TAG.test(ref)) throw fail('NAME_INVALID', `invalid tag ${JSON.stringify(ref.slice(0, 100))}`);
  return { kind: 'manifest', upstream, repo, ref: { tag: ref } };
}

export type RouteError = TrustgateError;
