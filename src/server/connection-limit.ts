// Connections an anonymous client cannot pile up (issue 26): at most `max` in total and `perClient` per
// remote address. A connection past either cap first makes room by closing the longest-idle connection
// (of that address for the per-client cap, of anyone for the total): one with no request in flight,
// such as one that connected and never sent a byte, or a keep-alive between requests. When every
// connection is busy, the newcomer is answered 503 and closed. Descriptors therefore stay for the
// upstream pools (a flood of idle sockets used to end in `connect EMFILE` on upstream connects).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ociErrorBody } from './oci-errors.js';

export interface ConnectionLimitOptions {
  max: number;
  perClient: number;
  onRefuse?: (address: string, why: 'total' | 'per-client') => void;
  onIdleClosed?: (address: string, why: 'total' | 'per-client') => void;
}

interface Conn {
  socket: Socket;
  address: string;
  /** Requests in flight on it (pipelining may make it more than one). */
  busy: number;
}

export class ConnectionLimit {
  private readonly conns = new Map<Socket, Conn>();
  /** Idle connections, longest idle first (Map insertion order). */
  private readonly idle = new Map<Socket, Conn>();
  private readonly perAddress = new Map<string, Set<Conn>>();
  refused = 0;
  idleClosed = 0;

  constructor(private readonly opts: ConnectionLimitOptions) {}

  get size(): number {
    return this.conns.size;
  }

  /** Wire into a server: its first 'connection' listener, and every request's start and end. */
  attach(server: Server): void {
    server.prependListener('connection', (socket: Socket) => this.onConnection(socket));
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
  }

  private onConnection(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const mine = this.perAddress.get(address);
    if (mine && mine.size >= this.opts.perClient && !this.closeIdle(mine.values(), address, 'per-client')) return this.refuse(socket, address, 'per-client');
    if (this.conns.size >= this.opts.max && !this.closeIdle(this.idle.values(), address, 'total')) return this.refuse(socket, address, 'total');
    const c: Conn = { socket, address, busy: 0 };
    this.conns.set(socket, c);
    this.idle.set(socket, c);
    let set = this.perAddress.get(address);
    if (!set) this.perAddress.set(address, (set = new Set()));
    set.add(c);
    socket.once('close', () => this.forget(c));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const c = this.conns.get(req.socket);
    // A refused connection whose request arrived before it was destroyed: it gets nothing more.
    if (!c) return void req.socket.destroy();
    c.busy++;
    this.idle.delete(c.socket);
    res.once('close', () => {
      c.busy--;
      if (c.busy === 0 && this.conns.has(c.socket)) this.idle.set(c.socket, c);
    });
  }

  /** Close the longest-idle connection among `candidates`: true if one was closed. */
  private closeIdle(candidates: Iterable<Conn>, address: string, why: 'total' | 'per-client'): boolean {
    for (const c of candidates) {
      if (c.busy > 0) continue;
      this.forget(c);
      c.socket.destroy();
      this.idleClosed++;
      this.opts.onIdleClosed?.(address, why);
      return true;
    }
    return false;
  }

  private forget(c: Conn): void {
    if (!this.conns.delete(c.socket)) return;
    this.idle.delete(c.socket);
    const set = this.perAddress.get(c.address);
    set?.delete(c);
    if (set?.size === 0) this.perAddress.delete(c.address);
  }

  private refuse(socket: Socket, address: string, why: 'total' | 'per-client'): void {
    this.refused++;
    this.opts.onRefuse?.(address, why);
    const body = ociErrorBody('TOO_MANY_CONNECTIONS', why === 'total' ? 'the server is at limits.maxConnections, every connection busy' : `${address} is at limits.perClientConnections, every connection busy`);
    socket.on('error', () => undefined);
    // Never handed to a handler: the socket is flushed and destroyed, whatever it sends.
    socket.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n${body}`);
    socket.destroySoon();
    socket.pause();
  }
}
