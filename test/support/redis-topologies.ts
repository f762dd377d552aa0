// Real Redis Cluster and Sentinel setups on 127.0.0.1, each node its own redis-server process in a temp
// dir, stopped by pid. Cluster: three masters joined by `redis-cli --cluster create … --cluster-yes`
// (no replicas: the test is about keys spreading over slots). Sentinel: a master, one replica and three
// sentinels (quorum 2) with short timeouts so a killed master is replaced within seconds.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { pingRedis, spawnRedisServer } from './redis.js';
import { freePort, spawnServer, type RunningServer } from './spawn-server.js';

const run = promisify(execFile);

/** One command over RESP with redis-cli (the real client, so replies are parsed as Redis means them). */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout.trim();
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface RedisNodeProc {
  port: number;
  server: RunningServer;
}

async function startNode(dir: string, name: string, extra: string[], port?: number): Promise<RedisNodeProc> {
  const p = port ?? (await freePort());
  return { port: p, server: await spawnRedisServer(dir, name, p, extra) };
}

export interface RedisClusterLab {
  masters: RedisNodeProc[];
  /** store.url as docs/configuration.md documents it: the seed nodes, comma-separated. */
  url: string;
  stop(): Promise<void>;
}

export async function startRedisCluster(dir: string, count = 3): Promise<RedisClusterLab> {
  const masters: RedisNodeProc[] = [];
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    // The cluster bus port is given explicitly (Redis 7 `cluster-port`): port+10000 may be taken or > 65535.
    const bus = await freePort();
    masters.push(
      await startNode(dir, `cluster${i}`, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-port', String(bus), '--cluster-node-timeout', '2000'], port),
    );
  }
  const lab: RedisClusterLab = {
    masters,
    url: masters.map((m) => `redis://127.0.0.1:${m.port}`).join(','),
    stop: async () => {
      for (const m of masters) await m.server.stop();
    },
  };
  try {
    await run('redis-cli', ['--cluster', 'create', ...masters.map((m) => `127.0.0.1:${m.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    for (const m of masters) await until(`cluster_state:ok on ${m.port}`, async () => (await redisCli(m.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'), 20_000);
  } catch (err) {
    await lab.stop();
    throw err;
  }
  return lab;
}

export interface SentinelLab {
  master: RedisNodeProc;
  replica: RedisNodeProc;
  sentinels: RedisNodeProc[];
  name: string;
  /** store.url as docs/configuration.md documents it. */
  url: string;
  /** The address the sentinels currently give for the master. */
  currentMasterPort(): Promise<number>;
  stop(): Promise<void>;
}

export async function startSentinel(dir: string, name = 'tg'): Promise<SentinelLab> {
  const master = await startNode(dir, 'sentinel-master', []);
  const replica = await startNode(dir, 'sentinel-replica', ['--replicaof', '127.0.0.1', String(master.port)]);
  await until('replica in sync', async () => (await redisCli(replica.port, 'INFO', 'replication')).includes('master_link_status:up'), 20_000);
  const sentinels: RedisNodeProc[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // Sentinel rewrites its config file (known replicas, epochs): one writable file per sentinel.
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'protected-mode no',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const server = await spawnServer({ cmd: 'redis-server', args: [conf, '--sentinel'], logFile: join(dir, `sentinel-${port}.log`), ready: () => pingRedis(port) });
      sentinels.push({ port, server });
    }
    // Each sentinel must know the replica and the other sentinels before a failover can be voted.
    for (const s of sentinels) {
      await until(`sentinel ${s.port} sees replica and peers`, async () => {
        const info = await redisCli(s.port, 'SENTINEL', 'MASTER', name);
        const f = info.split('\n');
        const val = (k: string) => Number(f[f.indexOf(k) + 1]);
        return val('num-slaves') >= 1 && val('num-other-sentinels') >= 2;
      }, 30_000);
    }
  } catch (err) {
    for (const s of sentinels) await s.server.stop();
    await replica.server.stop();
    await master.server.stop();
    throw err;
  }
  return {
    master,
    replica,
    sentinels,
    name,
    url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${name}`,
    currentMasterPort: async () => Number((await redisCli(sentinels[0]!.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)).split('\n')[1]),
    stop: async () => {
      for (const s of sentinels) await s.server.stop();
      await replica.server.stop();
      await master.server.stop();
    },
  };
}
