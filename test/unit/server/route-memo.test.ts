// The route memo answers exactly what routeRequest answers — the same route, the same refusal code —
// and stays within its bound whatever URLs clients send.
import { describe, expect, it } from 'vitest';
import { isTrustgateError } from '../../../src/errors.js';
import { routeRequest } from '../../../src/server/route.js';
import { RouteMemo } from '../../../src/server/route-memo.js';
import { D, routingConfig } from '../support/route-context.js';

const config = routingConfig;
const ctx = { upstreams: config.upstreams, defaultUpstream: config.default };

/** The route, or the refusal's code. */
function outcome(f: () => unknown): unknown {
  try {
    return f();
  } catch (err) {
    if (!isTrustgateError(err)) throw err;
    return { refused: err.code };
  }
}

const cases: Array<[string, string]> = [
  ['GET', '/v2/'],
  ['HEAD', '/healthz'],
  ['HEAD', '/v2/library/alpine/manifests/3.19'],
  ['GET', '/v2/library/alpine/manifests/3.19'],
  ['GET', `/v2/library/alpine/manifests/${D}`],
  ['GET', `/v2/team/app/blobs/${D}`],
  ['GET', '/v2/team/app/tags/list?n=10&last=v1'],
  ['HEAD', '/v2/team/app/manifests/v1?ns=127.0.0.1:5000'],
  ['HEAD', '/v2/local/team/app/manifests/v1'],
  ['PUT', '/v2/library/alpine/manifests/3.19'], // after a GET of the same URL was memoised
  ['DELETE', '/v2/library/alpine/manifests/3.19'],
  ['GET', '/v2/library/alpine/manifests/bad:tag:'],
  ['GET', '/v2/library/%2e%2e/manifests/v1'],
  ['GET', '/v2/UPPER/manifests/v1'],
  ['GET', '/v2/team/app/tags/list?n=x'],
  ['GET', `/v2/team/app/manifests/${'a'.repeat(600)}`],
];

describe('RouteMemo', () => {
  it('gives routeRequest\'s answer for every case, the first time and when asked again', () => {
    const memo = new RouteMemo(ctx);
    for (let round = 0; round < 3; round++) {
      for (const [method, url] of cases) {
        expect(outcome(() => memo.route(method, url)), `${method} ${url} (round ${round})`).toEqual(outcome(() => routeRequest(method, url, ctx)));
      }
    }
    // Only successful GET/HEAD routes of short URLs are kept, one per URL.
    expect(memo.size).toBe(8);
    expect(memo.route('HEAD', '/v2/library/alpine/manifests/3.19')).toBe(memo.route('GET', '/v2/library/alpine/manifests/3.19'));
  });

  it('stays within its bound however many different URLs come', () => {
    const memo = new RouteMemo(ctx, 16);
    for (let i = 0; i < 100; i++) {
      expect(memo.route('HEAD', `/v2/team/app/manifests/v${i}`)).toMatchObject({ kind: 'manifest', ref: { tag: `v${i}` } });
      expect(memo.size).toBeLessThanOrEqual(16);
    }
  });
});
