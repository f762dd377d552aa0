// limits.maxConnections / perClientConnections (server/connection-limit.ts) on a real node:http server
// on 127.0.0.1: past a cap the longest-idle connection is closed first; when all are busy, 503.
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionLimit } from '../../../src/server/connection-limit.js';

let server: Server | undefined;
const held: Socket[] = [];
afterEach(async () => {
  for (const s of held.splice(0)) s.destroy();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

async function start(max: number, perClient: number): Promise<{ port: number; limit: ConnectionLimit }> {
  // Requests to /hang never get an answer: their connections stay busy.
  server = createServer((req, res) => (req.url === '/hang' ? undefined : res.end('ok')));
  const limit = new ConnectionLimit({ max, perClient });
  limit.attach(server);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { port: (server!.address() as { port: number }).port, limit };
}

interface Conn {
  socket: Socket;
  closed: Promise<void>;
  data: () => string;
}

async function open(port: number, localAddress: string, send?: string): Promise<Conn> {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  held.push(socket);
  let got = '';
  socket.on('data', (d) => (got += d.toString()));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise((r) => socket.once('connect', r));
  if (send) socket.write(send);
  await new Promise((r) => setTimeout(r, 30)); // the server has seen it
  return { socket, closed, data: () => got };
}

const isClosed = (c: Conn) => Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]);

describe('ConnectionLimit', () => {
  it('per address: a connection past perClientConnections closes that address longest-idle one', async () => {
    const { port, limit } = await start(100, 2);
    const a = await open(port, '127.0.0.1');
    const b = await open(port, '127.0.0.1');
    const other = await open(port, '127.0.0.2');
    const c = await open(port, '127.0.0.1');
    expect(await isClosed(a)).toBe(true);
    expect([await isClosed(b), await isClosed(c), await isClosed(other)]).toEqual([false, false, false]);
    expect(limit.size).toBe(3);
    expect(limit.idleClosed).toBe(1);
  });

  it('in total: past maxConnections the longest-idle connection of anyone goes; busy ones are kept', async () => {
    const { port } = await start(3, 10);
    const busy = await open(port, '127.0.0.1', 'GET /hang HTTP/1.1\r\nhost: x\r\n\r\n');
    const idle1 = await open(port, '127.0.0.2');
    const idle2 = await open(port, '127.0.0.3');
    const fresh = await open(port, '127.0.0.4');
    expect(await isClosed(idle1)).toBe(true);
    expect([await isClosed(busy), await isClosed(idle2), await isClosed(fresh)]).toEqual([false, false, false]);
  });

  it('all busy: the newcomer is answered 503 TOO_MANY_CONNECTIONS and closed, never handled', async () => {
    const { port, limit } = await start(2, 10);
    await open(port, '127.0.0.1', 'GET /hang HTTP/1.1\r\nhost: x\r\n\r\n');
    await open(port, '127.0.0.2', 'GET /hang HTTP/1.1\r\nhost: x\r\n\r\n');
    const late = await open(port, '127.0.0.3', 'GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(await isClosed(late)).toBe(true);
    expect(late.data()).toMatch(/^HTTP\/1\.1 503 /);
    expect(late.data()).toMatch(/"code":"TOO_MANY_CONNECTIONS"/);
    expect(late.data()).not.toMatch(/ok$/);
    expect(limit.refused).toBe(1);
  });

  it('a keep-alive connection between requests counts as idle again', async () => {
    const { port } = await start(2, 10);
    const ka = await open(port, '127.0.0.1', 'GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(ka.data()).toMatch(/ok$/);
    const busy = await open(port, '127.0.0.2', 'GET /hang HTTP/1.1\r\nhost: x\r\n\r\n');
    const fresh = await open(port, '127.0.0.3');
    expect(await isClosed(ka)).toBe(true);
    expect([await isClosed(busy), await isClosed(fresh)]).toEqual([false, false]);
  });
});
