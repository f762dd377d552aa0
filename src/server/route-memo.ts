// Routing is pure and clients ask for the same few URLs over and over (a tag, its digests): the routes
// of GET/HEAD URLs are kept, bounded, so a warm request skips the split, the regexps and the join
// (docs/benchmarks.md, "The warm HEAD path, second profile pass"). Refusals are not kept: they are thrown again every time.
import { routeRequest, type Route, type RouteContext } from './route.js';

/** URLs longer than this are routed every time: the memo stays small whatever clients send. */
const MAX_URL = 512;

export class RouteMemo {
  private readonly routes = new Map<string, Route>();

  constructor(
    private readonly ctx: RouteContext,
    private readonly max = 1024,
  ) {}

  /** routeRequest(method, url, ctx): the same route, or the same refusal. */
  route(method: string, url: string): Route {
    // GET and HEAD route alike (routeRequest refuses every other method), so the URL is the key.
    const memo = (method === 'GET' || method === 'HEAD') && url.length <= MAX_URL;
    if (memo) {
      const hit = this.routes.get(url);
      if (hit) return hit;
    }
    const r = routeRequest(method, url, this.ctx);
    if (memo) {
      // Full: start again rather than track recency per request; the hot URLs come back at once.
      if (this.routes.size >= this.max) this.routes.clear();
      this.routes.set(url, Object.freeze(r));
    }
    return r;
  }

  get size(): number {
    return this.routes.size;
  }
}
