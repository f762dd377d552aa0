// A real redis-server on 127.0.0.1, no persistence, in a temp dir; restartable on the same port.
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, spawnServer, type RunningServer } from './spawn-server.js';

export interface RedisLab {
  url: string;
  port: number;
  server: RunningServer;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Whether a redis-server (or sentinel) answers PING on 127.0.0.1:port. */
export function pingRedis(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * One redis-server on 127.0.0.1:port without persistence, its files in `dir` and its log in
 * `${name}-${port}.log`; `extra` arguments (cluster, replica) are appended.
 */
export function spawnRedisServer(dir: string, name: string, port: number, extra: string[] = []): Promise<RunningServer> {
  return spawnServer({
    cmd: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no', ...extra],
    logFile: join(dir, `${name}-${port}.log`),
    ready: () => pingRedis(port),
  });
}

export async function startRedis(dir: string): Promise<RedisLab> {
  const port = await freePort();
  const launch = () => spawnRedisServer(dir, 'redis', port);
  const lab: RedisLab = {
    url: `redis://127.0.0.1:${port}`,
    port,
    server: await launch(),
    stop: async () => lab.server.stop(),
    start: async () => {
      lab.server = await launch();
    },
  };
  return lab;
}

/**
 * A store handed to a test once its client is connected (at most 20 s): RedisKv fails fast while Redis
 * is away and waits only 2 s for the first connection, which a loaded CI machine can exceed.
 */
export async function whenConnected<T extends { health(): { ok: boolean } }>(kv: T): Promise<T> {
  for (const deadline = Date.now() + 20_000; !kv.health().ok && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
  return kv;
}
