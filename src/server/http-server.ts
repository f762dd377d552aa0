// The node:http listener: route, dispatch, and turn every failure into an OCI error (oci-errors.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ociErrorBody, sendError } from './oci-errors.js';
import { handleBlob } from './handlers/blob.js';
import { handleManifest } from './handlers/manifest.js';
import { handleTags } from './handlers/tags.js';
import type { ServerDeps } from './deps.js';
import { routeRequest } from './route.js';

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'docker-distribution-api-version': 'registry/2.0',
  });
  res.end(req.method === 'HEAD' ? undefined : text);
}

export function buildServer(deps: ServerDeps): Server {
  const log = deps.log.child({ component: 'server' });
  const debug = log.isLevelEnabled('debug');
  const server = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 60_000 }, (req, res) => {
    const labels = { route: 'unrouted', method: req.method === 'HEAD' ? 'HEAD' : req.method === 'GET' ? 'GET' : 'other' };
    if (deps.metrics) {
      const m = deps.metrics;
      res.once('close', () => m.request(labels.route, labels.method, res.statusCode));
    }
    void handle(req, res, labels).catch((err) => sendError(res, err, req.method ?? 'GET', log));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, labels: { route: string }): Promise<void> {
    const route = routeRequest(req.method ?? 'GET', req.url ?? '/', { upstreams: deps.config.upstreams, defaultUpstream: deps.config.default });
    labels.route = route.kind;
    if (debug) log.debug({ method: req.method, url: req.url, route: route.kind }, 'request'); // no object built per request at info
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
        // Degraded (store down) still serves — from memory and the upstreams, never unverified — so
        // it stays ready; the body says which layer is missing.
        const h = deps.kv?.health() ?? { ok: true };
        return sendJson(req, res, 200, { status: h.ok ? 'ok' : 'degraded', store: deps.kv?.kind ?? 'memory', ...(h.ok ? {} : { detail: h.detail }) });
      }
      case 'ping':
        return sendJson(req, res, 200, {});
      case 'manifest':
        return handleManifest(route, req, res, deps);
      case 'blob':
        return handleBlob(route, req, res, deps);
      case 'tags':
        return handleTags(route, req, res, deps);
    }
  }

  // Malformed requests and oversized headers never reach the handler: answer them in OCI JSON too.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const tooBig = err.code === 'HPE_HEADER_OVERFLOW';
    const body = ociErrorBody(tooBig ? 'NAME_INVALID' : 'UNSUPPORTED', tooBig ? 'request headers too large' : 'malformed HTTP request');
    socket.end(
      `HTTP/1.1 ${tooBig ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}
