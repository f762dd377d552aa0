// Redis for a fleet of replicas (ioredis): a single server, Sentinel (redis+sentinel://) or Cluster
// (several comma-separated redis:// URLs), password and TLS (rediss://) from the URL, and a key prefix
// per deployment. Commands fail fast while Redis is away (no offline queue), so callers fall back to
// their in-process layer instead of hanging; ioredis reconnects on its own when it returns.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { KvStore, Release } from './kv.js';

// Fields only ever rise: HSET field to max(current, new) for each pair, atomically in Redis.
const RAISE = `
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  local new = tonumber(ARGV[i + 1])
  if new > cur then redis.call('HSET', KEYS[1], ARGV[i], new) end
end
return redis.call('HGETALL', KEYS[1])`;
const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

function hashToRecord(flat: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = Number(flat[i + 1]);
  return out;
}

export function connectRedis(url: string, onEvent: (ok: boolean, detail: string) => void): Redis | Cluster {
  const common: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    lazyConnect: false,
  };
  let client: Redis | Cluster;
  const urls = url.split(',').map((u) => u.trim());
  if (urls.length > 1) {
    client = new Cluster(
      urls.map((u) => {
        const p = new URL(u);
        return { host: p.hostname, port: Number(p.port || 6379) };
      }),
      { enableOfflineQueue: false, redisOptions: { ...common, password: new URL(urls[0]!).password || undefined } },
    );
  } else if (url.startsWith('redis+sentinel://')) {
    const p = new URL(url.replace('redis+sentinel://', 'http://'));
    client = new Redis({
      ...common,
      sentinels: p.host.split(',').map((h) => ({ host: h.split(':')[0]!, port: Number(h.split(':')[1] ?? 26379) })),
      name: p.pathname.replace(/^\//, '') || 'mymaster',
      password: p.password || undefined,
    });
  } else {
    client = new Redis(url, common);
  }
  client.on('ready', () => onEvent(true, 'ready'));
  client.on('error', (err: Error) => onEvent(false, err.message));
  client.on('end', () => onEvent(false, 'connection closed'));
  return client;
}

export class RedisKv implements KvStore {
  readonly kind = 'redis';
  private ok = false;
  private detail = 'connecting';
  private readonly client: Redis | Cluster;
  private readonly firstReady: Promise<void>;

  constructor(
    url: string,
    private readonly prefix = 'trustgate:',
  ) {
    let resolveReady!: () => void;
    this.firstReady = new Promise((r) => (resolveReady = r));
    this.client = connectRedis(url, (ok, detail) => {
      this.ok = ok;
      this.detail = detail;
      if (ok) resolveReady();
    });
  }

  private k(key: string): string {
    return this.prefix + key;
  }

  /**
   * Commands fail fast while Redis is away, but right after start the first connection is still
   * being made: wait for it briefly rather than report a healthy Redis as down.
   */
  private async c(): Promise<Redis | Cluster> {
    if (!this.ok) await Promise.race([this.firstReady, new Promise((r) => setTimeout(r, 2000))]);
    return this.client;
  }

  async get(key: string): Promise<Buffer | undefined> {
    return (await (await this.c()).getBuffer(this.k(key))) ?? undefined;
  }

  async set(key: string, value: Buffer, ttlSeconds = 0): Promise<void> {
    const c = await this.c();
    if (ttlSeconds > 0) await c.set(this.k(key), value, 'EX', ttlSeconds);
    else await c.set(this.k(key), value);
  }

  async delete(key: string): Promise<void> {
    await (await this.c()).del(this.k(key));
  }

  async raiseVersions(key: string, versions: Readonly<Record<string, number>>): Promise<Record<string, number>> {
    const args = Object.entries(versions).flatMap(([f, v]) => [f, String(v)]);
    return hashToRecord((await (await this.c()).eval(RAISE, 1, this.k(key), ...args)) as string[]);
  }

  async getVersions(key: string): Promise<Record<string, number>> {
    const h = await (await this.c()).hgetall(this.k(key));
    return Object.fromEntries(Object.entries(h).map(([f, v]) => [f, Number(v)]));
  }

  async tryLock(key: string, ttlMs: number): Promise<Release | undefined> {
    const token = randomBytes(12).toString('hex');
    const got = await (await this.c()).set(this.k(key), token, 'PX', ttlMs, 'NX');
    if (got !== 'OK') return undefined;
    return async () => {
      await this.client.eval(UNLOCK, 1, this.k(key), token).catch(() => undefined);
    };
  }

  health(): { ok: boolean; detail?: string } {
    return { ok: this.ok, detail: this.detail };
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
