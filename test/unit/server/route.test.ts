// Every bad-input class of the HTTP surface maps to a stable code before any upstream is involved.
import { describe, expect, it } from 'vitest';
import { routeRequest, type Route } from '../../../src/server/route.js';
import { D, routingConfig } from '../support/route-context.js';

const config = routingConfig;
const ctx = { upstreams: config.upstreams, defaultUpstream: config.default };
const route = (method: string, url: string) => routeRequest(method, url, ctx);

describe('routeRequest: accepted shapes', () => {
  it.each<[string, string, Partial<Route> & Record<string, unknown>]>([
    ['GET', '/v2/', { kind: 'ping' }],
    ['HEAD', '/v2', { kind: 'ping' }],
    ['GET', '/healthz', { kind: 'health' }],
    ['HEAD', '/v2/library/alpine/manifests/3.19', { kind: 'manifest', repo: 'library/alpine', ref: { tag: '3.19' } }],
    ['GET', `/v2/library/alpine/manifests/${D}`, { kind: 'manifest', repo: 'library/alpine', ref: { digest: D } }],
    ['GET', `/v2/team/app/blobs/${D}`, { kind: 'blob', repo: 'team/app', digest: D }],
    ['GET', '/v2/team/app/tags/list?n=10&last=v1', { kind: 'tags', repo: 'team/app', n: 10, last: 'v1' }],
  ])('%s %s', (method, url, want) => {
    expect(route(method, url)).toMatchObject(want);
  });

  it('selects the upstream by ?ns=, by path prefix, else the default', () => {
    expect(route('HEAD', '/v2/team/app/manifests/v1?ns=127.0.0.1:5000')).toMatchObject({ upstream: { name: 'local' }, repo: 'team/app' });
    expect(route('HEAD', '/v2/library/alpine/manifests/v1?ns=docker.io')).toMatchObject({ upstream: { name: 'hub' }, repo: 'library/alpine' });
    expect(route('HEAD', '/v2/library/alpine/manifests/v1?ns=index.docker.io')).toMatchObject({ upstream: { name: 'hub' } });
    expect(route('HEAD', '/v2/local/team/app/manifests/v1')).toMatchObject({ upstream: { name: 'local' }, repo: 'team/app' });
    expect(route('HEAD', '/v2/library/alpine/manifests/v1')).toMatchObject({ upstream: { name: 'hub' }, repo: 'library/alpine' });
  });
});

describe('routeRequest: refusals', () => {
  it.each<[string, string, string, string]>([
    ['path traversal', 'GET', '/v2/team/../secret/manifests/v1', 'NAME_INVALID'],
    ['dot segment', 'GET', '/v2/./team/manifests/v1', 'NAME_INVALID'],
    ['encoded slash', 'GET', '/v2/team%2fapp/manifests/v1', 'NAME_INVALID'],
    ['encoded dot-dot', 'GET', '/v2/team/%2e%2e/manifests/v1', 'NAME_INVALID'],
    ['double slash', 'GET', '/v2/team//app/manifests/v1', 'NAME_INVALID'],
    ['upper-case repository', 'GET', '/v2/Team/App/manifests/v1', 'NAME_INVALID'],
    ['invalid tag', 'GET', '/v2/team/app/manifests/-bad', 'NAME_INVALID'],
    ['tag too long', 'GET', `/v2/team/app/manifests/${'a'.repeat(129)}`, 'NAME_INVALID'],
    ['invalid digest', 'GET', '/v2/team/app/blobs/sha256:xyz', 'DIGEST_INVALID'],
    ['unsupported digest algorithm', 'GET', `/v2/team/app/manifests/sha512:${'a'.repeat(128)}`, 'DIGEST_INVALID'],
    ['push: PUT manifest', 'PUT', '/v2/team/app/manifests/v1', 'UNSUPPORTED'],
    ['push: POST upload', 'POST', '/v2/team/app/blobs/uploads/', 'UNSUPPORTED'],
    ['push: PATCH upload', 'PATCH', '/v2/team/app/blobs/uploads/abc', 'UNSUPPORTED'],
    ['upload status (GET: the method is right, there is no upload)', 'GET', '/v2/team/app/blobs/uploads/abc', 'NOT_FOUND'],
    ['DELETE', 'DELETE', `/v2/team/app/manifests/${D}`, 'UNSUPPORTED'],
    ['unknown route', 'GET', '/v2/team/app/referrers/x', 'NOT_FOUND'],
    ['outside /v2', 'GET', '/admin', 'NOT_FOUND'],
    ['catalog', 'GET', '/v2/_catalog', 'NOT_FOUND'],
    ['unknown ns', 'GET', '/v2/team/app/manifests/v1?ns=evil.example', 'NOT_FOUND'],
    ['bad n', 'GET', '/v2/team/app/tags/list?n=-1', 'PAGINATION_INVALID'],
    ['n too large', 'GET', '/v2/team/app/tags/list?n=1000000', 'PAGINATION_INVALID'],
    ['n with leading zeros', 'GET', '/v2/team/app/tags/list?n=00000001', 'PAGINATION_INVALID'],
    ['last not a tag', 'GET', '/v2/team/app/tags/list?last=a%22b', 'PAGINATION_INVALID'],
    ['PUT /metrics', 'PUT', '/metrics', 'UNSUPPORTED'],
    ['POST /healthz', 'POST', '/healthz', 'UNSUPPORTED'],
    ['DELETE /readyz', 'DELETE', '/readyz', 'UNSUPPORTED'],
    ['very long URL', 'GET', `/v2/${'a/'.repeat(3000)}manifests/v1`, 'NAME_INVALID'],
  ])('%s → %s', (_name, method, url, code) => {
    expect(() => route(method, url)).toThrow(expect.objectContaining({ code }));
  });
});
