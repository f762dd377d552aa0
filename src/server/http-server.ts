// The node:http listener: route, dispatch, and turn every failure into an OCI error (oci-errors.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ociErrorBody, sendError } from './oci-errors.js';
import { handleBlob } from './handlers/blob.js';
import { handleManifest } from './handlers/manifest.js';
import { handleTags } from './handlers/tags.js';
import type { ServerDeps } from './deps.js';
import type { Route } from './route.js';
import { RouteMemo } from './route-memo.js';
import { WarmTags } from './handlers/warm-tag.js';
import { fail } from '../errors.js';
import { ClientStreams } from './client-streams.js';
import { StallWatch } from './stall-watch.js';
import { ConnectionLimit } from './connection-limit.js';

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'docker-distribution-api-version': 'registry/2.0',
  });
  res.end(req.method === 'HEAD' ? undefined : text);
}

/**
 * Slowloris and idle connections: headers must arrive within the stall period (at most 60 s), the whole
 * request within 60 s, idle keep-alive connections close after 5 s, and the deadlines are checked every
 * second (Node's default, 30 s, lets a timed-out connection linger that long). Answered 408.
 */
export function serverTimeouts(clientStallSeconds: number) {
  const headersTimeout = Math.min(clientStallSeconds, 60) * 1000;
  return { maxHeaderSize: 16 * 1024, headersTimeout, requestTimeout: Math.max(60_000, headersTimeout), keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 };
}

export function buildServer(deps: ServerDeps): Server {
  const log = deps.log.child({ component: 'server' });
  const limits = deps.config.limits;
  const stalls = new StallWatch(limits.clientStallSeconds * 1000, (res) => log.warn({ client: res.req.socket.remoteAddress, url: res.req.url }, 'client stopped reading: response cut'));
  const streams = new ClientStreams(limits.perClientStreams);
  const debug = log.isLevelEnabled('debug');
  const warm = new WarmTags(deps);
  const routes = new RouteMemo({ upstreams: deps.config.upstreams, defaultUpstream: deps.config.default });
  const metrics = deps.metrics;
  /** A response still in progress: watched for stalls, counted when it closes (its status is final then). */
  const track = (res: ServerResponse, route: string, method: string) => {
    stalls.watch(res);
    if (metrics) res.once('close', () => metrics.request(route, method, res.statusCode));
  };
  const server = createServer(serverTimeouts(limits.clientStallSeconds), (req, res) => {
    const method = req.method === 'HEAD' ? 'HEAD' : req.method === 'GET' ? 'GET' : 'other';
    let route: Route | undefined;
    try {
      route = routes.route(req.method ?? 'GET', req.url ?? '/');
      if (debug) log.debug({ method: req.method, url: req.url, route: route.kind }, 'request'); // no object built per request at info
      // No decision without its audit line: with the audit buffer full (audit.onFailure: refuse) every
      // route that decides (manifests by tag or digest, tags/list) is refused before it decides — the
      // warm path included. One call and a comparison per request.
      if ((route.kind === 'manifest' || route.kind === 'tags') && deps.audit?.accepting?.() === false) {
        throw fail('AUDIT_UNAVAILABLE', `trust decisions are refused until the audit trail can be written: ${deps.audit.problem?.() ?? 'audit buffer full'}`);
      }
      // A warm manifest by tag is answered here, synchronously (handlers/warm-tag.ts): counted at once,
      // and watched only if the socket has not taken the whole response (else it cannot stall).
      if (route.kind === 'manifest' && warm.answer(route, req, res)) {
        metrics?.request(route.kind, method, res.statusCode);
        if (res.writableLength > 0) stalls.watch(res);
        return;
      }
    } catch (err) {
      track(res, route?.kind ?? 'unrouted', method);
      return sendError(res, err, req.method ?? 'GET', log);
    }
    track(res, route.kind, method);
    void handle(route, req, res).catch((err) => sendError(res, err, req.method ?? 'GET', log));
  });

  async function handle(route: Route, req: IncomingMessage, res: ServerResponse): Promise<void> {
    switch (route.kind) {
      case 'metrics': {
        if (!deps.metrics) return sendJson(req, res, 404, {});
        deps.metrics.storeUp.set(deps.kv?.health().ok === false ? 0 : 1);
        const text = await deps.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType, 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
        return;
      }
      case 'health':
        return sendJson(req, res, 200, { status: 'ok' });
      case 'ready': {
        if (deps.lifecycle?.draining) return sendJson(req, res, 503, { status: 'draining' });
        // Audit lines waiting for a failing destination: not ready (a load balancer moves traffic to a
        // replica that can record it), with the reason; decisions are refused only once the buffer is full.
        const auditProblem = deps.audit?.problem?.();
        if (auditProblem) return sendJson(req, res, 503, { status: 'audit-unavailable', reason: auditProblem });
        // Degraded (store down) still serves — from memory and the upstreams, never unverified — so
        // it stays ready; the body says which layer is missing.
        const h = deps.kv?.health() ?? { ok: true };
        return sendJson(req, res, 200, { status: h.ok ? 'ok' : 'degraded', store: deps.kv?.kind ?? 'memory', ...(h.ok ? {} : { detail: h.detail }) });
      }
      case 'ping':
        return sendJson(req, res, 200, {});
      case 'manifest':
        return handleManifest(route, req, res, deps);
      case 'blob': {
        if (req.method === 'GET') {
          // HEAD holds no stream; a GET does until its response closes (finished, cut or aborted).
          const address = req.socket.remoteAddress ?? 'unknown';
          const release = streams.acquire(address);
          if (!release) throw fail('TOO_MANY_STREAMS', `${address} already has ${limits.perClientStreams} blob streams in flight (limits.perClientStreams)`);
          res.once('close', release);
        }
        return handleBlob(route, req, res, deps);
      }
      case 'tags':
        return handleTags(route, req, res, deps);
    }
  }

  // Malformed requests, oversized headers and request timeouts never reach the handler: answer them in
  // OCI JSON too — unless a response is already in flight on this socket (a pipelined bad request, a
  // reset mid-stream): writing an error then would corrupt the response the client is reading.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const inFlight = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
    if (!socket.writable || inFlight) return socket.destroy();
    const [status, code, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? (['431 Request Header Fields Too Large', 'NAME_INVALID', 'request headers too large'] as const)
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? (['408 Request Timeout', 'REQUEST_TIMEOUT', 'the request was not received in time'] as const)
          : (['400 Bad Request', 'UNSUPPORTED', 'malformed HTTP request'] as const);
    const body = ociErrorBody(code, message);
    socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  server.once('close', () => stalls.stop());
  let refusedWarnAt = 0; // at most one warning per 10 s: a flood must not flood the log too
  const onRefuse = (client: string, limit: string) => {
    if (Date.now() - refusedWarnAt < 10_000) return;
    refusedWarnAt = Date.now();
    log.warn({ client, limit }, 'connection refused with 503: at limits.maxConnections or limits.perClientConnections and no idle connection to close');
  };
  new ConnectionLimit({ max: limits.maxConnections, perClient: limits.perClientConnections, onRefuse }).attach(server);
  return server;
}
