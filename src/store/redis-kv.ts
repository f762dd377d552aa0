// Redis for a fleet of replicas (ioredis): a single server, Sentinel (redis+sentinel://) or Cluster
// (several comma-separated redis:// URLs), password and TLS (rediss://) from the URL, and a key prefix
// per deployment. Commands fail fast while Redis is away (no offline queue), so callers fall back to
// their in-process layer instead of hanging; ioredis reconnects on its own when it returns.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { KvStore, Release } from './kv.js';
import { parseRedisUrl } from './redis-url.js';

// Fields only ever rise: HSET field to max(current, new) for each pair, atomically in Redis.
const RAISE = `
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  local new = tonumber(ARGV[i + 1])
  if new > cur then redis.call('HSET', KEYS[1], ARGV[i], new) end
end
return redis.call('HGETALL', KEYS[1])`;
/** How long a floor write waits for a replica's acknowledgement (Sentinel only). */
const FLOOR_REPLICATION_WAIT_MS = 500;
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
  const parsed = parseRedisUrl(url);
  // Config validation refuses a bad URL first; this is for callers that build a store directly.
  if (!parsed.ok) throw new Error(`store.url ${JSON.stringify(url)}: expected ${parsed.expected}`);
  const t = parsed.target;
  let client: Redis | Cluster;
  if (t.kind === 'cluster') {
    client = new Cluster(t.nodes, {
      enableOfflineQueue: false,
      // Slot moves during a resharding or failover answer MOVED/ASK; follow them a few times.
      maxRedirections: 16,
      clusterRetryStrategy: (times) => Math.min(times * 200, 2000),
      redisOptions: { ...common, password: t.password, ...(t.tls ? { tls: {} } : {}) },
    });
  } else if (t.kind === 'sentinel') {
    client = new Redis({
      ...common,
      sentinels: t.sentinels,
      name: t.name,
      password: t.password,
      db: t.db,
      // Also listen for +switch-master, so a failover is followed without waiting for the old
      // master's socket to time out (a partitioned master may never close it).
      failoverDetector: true,
    });
  } else {
    client = new Redis(t.url, common);
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
  private readonly sentinel: boolean;

  constructor(
    url: string,
    private readonly prefix = 'trustgate:',
  ) {
    let resolveReady!: () => void;
    this.firstReady = new Promise((r) => (resolveReady = r));
    const parsed = parseRedisUrl(url);
    this.sentinel = parsed.ok && parsed.target.kind === 'sentinel';
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
    const c = await this.c();
    const merged = hashToRecord((await c.eval(RAISE, 1, this.k(key), ...args)) as string[]);
    // Sentinel replication is asynchronous: a floor only on the master would be lost if the master
    // died before sending it, and the promoted replica would accept a rollback. WAIT holds the answer
    // until a replica has the write (bounded, so a fleet without a live replica still serves; each
    // trustgate process also keeps every floor it has seen in memory, see TieredKv).
    if (this.sentinel && c instanceof Redis) await c.wait(1, FLOOR_REPLICATION_WAIT_MS).catch(() => undefined);
    return merged;
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
