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

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write('PING\r\n'));
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    s.once('error', () => resolve(false));
  });
}

export async function startRedis(dir: string): Promise<RedisLab> {
  const port = await freePort();
  const launch = () =>
    spawnServer({
      cmd: 'redis-server',
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no'],
      logFile: join(dir, `redis-${port}.log`),
      ready: () => ping(port),
    });
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
