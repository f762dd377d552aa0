// store.url as docs/configuration.md and docs/deployment.md ("A fleet: compose, Redis") document it for fleets, against real redis-server processes: a 3-master Cluster
// shared by two trustgate replicas, and a Sentinel setup (master, replica, three sentinels) whose master
// is killed mid-test. Rollback floors are followed through the failover: kept (the floor write waits for
// the replica), and what happens when a failover loses them anyway.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { RedisKv } from '../../src/store/redis-kv.js';
import { startHostileNotary, type HostileNotary } from '../support/hostile-notary.js';
import { runKvContract } from '../support/kv-contract.js';
import { NotaryCli, pushSignedImage } from '../support/notary-cli.js';
import { startNotary, tufRequestsFor, type NotaryLab } from '../support/notary-server.js';
import { pushImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { generateRealFixtures, type RealFixtures } from '../support/real-fixtures.js';
import { whenConnected } from '../support/redis.js';
import { redisCli, startRedisCluster, startSentinel, type RedisClusterLab, type SentinelLab } from '../support/redis-topologies.js';
import { headDigest as head } from '../support/through-proxy.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

let dir: string;
let registry: Registry;
let notary: NotaryLab;
let cli: NotaryCli;
const started: Array<{ stop(): Promise<void> }> = [];
let n = 0;
/**
 * Contract stores are closed before the servers stop (else ioredis keeps reconnecting to nothing), and
 * handed to the contract once connected: the contract is about a connected store (a cluster client's
 * first connection once took longer than RedisKv's 2 s start-up wait in a loaded CI run).
 */
async function keep(kv: RedisKv): Promise<RedisKv> {
  started.push({ stop: () => kv.close() });
  return whenConnected(kv);
}

const signedImage = (repo: string, tag: string, init = true) => pushSignedImage(cli, dir, registry.host, repo, tag, init);

const upstreamConfig = (store: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }],
  default: 'lab',
  store,
  ...extra,
});

async function tg(name: string, config: Record<string, unknown>): Promise<Trustgate> {
  const t = await startTrustgate(dir, config, name);
  started.push(t);
  return t;
}

async function getJson(base: string, path: string): Promise<{ status: number; body: any }> {
  const res = await request(`${base}${path}`);
  const text = await res.body.text();
  return { status: res.statusCode, body: text.startsWith('{') ? JSON.parse(text) : text };
}

async function eventually<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get().catch((e) => e as T);
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const notaryRequestsFor = (gun: string) => tufRequestsFor(notary, gun);

/** A Redis hash as numbers, read with redis-cli from one node. */
async function hgetall(port: number, key: string): Promise<Record<string, number>> {
  const lines = (await redisCli(port, 'HGETALL', key)).split('\n').filter((l) => l !== '');
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) out[lines[i]!] = Number(lines[i + 1]);
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-topologies-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
});

afterAll(async () => {
  for (const s of started.reverse()) await s.stop().catch(() => undefined);
  await notary?.stop();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Redis Cluster (3 masters) shared by two replicas', () => {
  let cluster: RedisClusterLab;
  beforeAll(async () => {
    cluster = await startRedisCluster(dir);
    started.push(cluster);
  });

  runKvContract('Redis Cluster (3 masters)', () => keep(new RedisKv(cluster.url, `contract-cl${++n}:`)));

  it('serves signed tags, refuses unsigned ones, deduplicates a stampede across replicas, spreads keys over the masters', async () => {
    const repos = ['cluster/app', 'cluster/web', 'cluster/db'];
    const imgs = await Promise.all(repos.map((r) => signedImage(r, 'v1')));
    await pushImage(dir, registry.host, 'cluster/app', 'unsigned');
    const cfg = upstreamConfig({ kind: 'redis', url: cluster.url, prefix: 'cl:' });
    const [a, b] = await Promise.all([tg('cluster-a', cfg), tg('cluster-b', cfg)]);

    const gun = `${registry.host}/cluster/app`;
    const before = notaryRequestsFor(gun).length;
    const agent = new Agent({ connections: 400 });
    const results = await Promise.all(Array.from({ length: 400 }, (_, i) => head(i % 2 ? a.url : b.url, '/v2/cluster/app/manifests/v1', agent)));
    await agent.close();
    expect(results.filter((r) => r.status === 200 && r.digest === imgs[0]!.digest)).toHaveLength(400);
    // One replica fetched the metadata under a lock in the Cluster; the other waited and read the
    // snapshot and targets from there. Each takes its first root and timestamp from notary itself: the
    // shared store is not a root of trust (issue 26).
    expect(notaryRequestsFor(gun).slice(before).map((u) => u.replace(/\.[0-9a-f]{64}\.json$/, '.<sha256>.json')).sort()).toEqual([
      'root.json',
      'root.json',
      // The first contact's prefetch asks for these by name (each used: it hashes to the name its
      // parent gives); the replica that came second found the GUN verified and asked ahead for its
      // timestamp only.
      'snapshot.json',
      'targets.json',
      'targets/releases.json',
      'timestamp.json',
      'timestamp.json',
    ]);

    for (const [i, r] of repos.entries()) expect(await head(i % 2 ? a.url : b.url, `/v2/${r}/manifests/v1`)).toEqual({ status: 200, digest: imgs[i]!.digest });
    const refused = await getJson(b.url, '/v2/cluster/app/manifests/unsigned');
    expect(refused.status).toBe(403);
    expect(refused.body.errors[0]).toMatchObject({ code: 'DENIED', message: expect.stringMatching(/no valid trust data for cluster\/app:unsigned/) });

    const perMaster = await Promise.all(cluster.masters.map(async (m) => (await redisCli(m.port, '--scan', '--pattern', 'cl:*')).split('\n').filter(Boolean)));
    // A Cluster node only accepts keys of its own slots, so keys found on two or more masters means the
    // client routed by slot (a client talking to one node would have been refused with MOVED).
    expect(perMaster.filter((keys) => keys.length > 0).length).toBeGreaterThanOrEqual(2);
    expect(perMaster.flat().some((k) => k === `cl:trust:floors:${gun}`)).toBe(true);
    for (const t of [a, b]) expect((await getJson(t.url, '/readyz')).body).toMatchObject({ status: 'ok' });
  });
});

describe('Redis Sentinel: the master is killed, the replica promoted', () => {
  let sentinel: SentinelLab;
  let fx: RealFixtures;
  let hostile: HostileNotary;
  let hostileCa: string;
  let rb: Trustgate; // saw the s3 publish before the failover and keeps running
  const HGUN = '127.0.0.1:5000/attack/app';
  const serve = (name: string) => {
    hostile.files.clear();
    for (const [k, v] of fx.loadSet(name)) hostile.files.set(k, v);
  };
  const hostileConfig = () => ({
    upstreams: [{ name: 'h', registry: registry.url, gun: '127.0.0.1:5000', notary: { url: hostile.url, ca: hostileCa }, policy: 'enforce' }],
    default: 'h',
    store: { kind: 'redis', url: sentinel.url, prefix: 'rb:' },
    limits: { trustCacheSeconds: 0 }, // re-check on every request, so a replayed set is fetched at all
  });
  const tags = async (t: Trustgate) => getJson(t.url, '/v2/attack/app/tags/list');

  beforeAll(async () => {
    [sentinel, fx] = await Promise.all([startSentinel(dir), generateRealFixtures(join(dir, 'real'))]);
    started.push(sentinel);
    const tls = await makePki(dir, 'h');
    hostileCa = tls.caFile;
    hostile = await startHostileNotary({ gun: HGUN, key: readFileSync(tls.keyFile), cert: readFileSync(tls.certFile) });
    started.push({ stop: () => hostile.close() });
  });

  runKvContract('Redis Sentinel', () => keep(new RedisKv(sentinel.url, `contract-sn${++n}:`)));

  it('keeps serving through the failover, including a tag signed after it; floors survive; /readyz back to ok', async () => {
    const v1 = await signedImage('sentinel/app', 'v1');
    await pushImage(dir, registry.host, 'sentinel/app', 'unsigned');
    const gun = `${registry.host}/sentinel/app`;
    const proxy = await tg('sentinel', upstreamConfig({ kind: 'redis', url: sentinel.url, prefix: 'sn:' }, { limits: { trustCacheSeconds: 1 } }));
    expect(await head(proxy.url, '/v2/sentinel/app/manifests/v1')).toEqual({ status: 200, digest: v1.digest });
    expect((await head(proxy.url, '/v2/sentinel/app/manifests/unsigned')).status).toBe(403);
    expect((await getJson(proxy.url, '/readyz')).body).toMatchObject({ status: 'ok', store: 'memory+redis' });

    // Rollback floors as another trustgate saw them: a real notary-signed repository at its third publish.
    serve('s3');
    rb = await tg('sentinel-rb', hostileConfig());
    expect(await tags(rb)).toMatchObject({ status: 200, body: { tags: ['rel1', 'v2'] } });

    const floorsBefore = await hgetall(sentinel.master.port, `sn:trust:floors:${gun}`);
    const rbFloorsBefore = await hgetall(sentinel.master.port, `rb:trust:floors:${HGUN}`);
    expect(floorsBefore).toMatchObject({ root: expect.any(Number), timestamp: expect.any(Number), snapshot: expect.any(Number), targets: expect.any(Number) });
    expect(rbFloorsBefore.targets).toBeGreaterThan(1);
    // The floor write waited for the replica (WAIT), so the replica has it before the master dies.
    expect(await hgetall(sentinel.replica.port, `rb:trust:floors:${HGUN}`)).toEqual(rbFloorsBefore);

    const t0 = Date.now();
    process.kill(sentinel.master.server.pid, 'SIGKILL'); // a crash, not a clean shutdown
    const statuses: number[] = [];
    await eventually('the replica promoted by the sentinels', async () => {
      statuses.push((await head(proxy.url, '/v2/sentinel/app/manifests/v1')).status, (await head(proxy.url, '/v2/sentinel/app/manifests/unsigned')).status === 403 ? 200 : 500);
      return sentinel.currentMasterPort();
    }, (p) => p === sentinel.replica.port);
    const failoverMs = Date.now() - t0;
    // While the master was gone every answer was still right: signed 200, unsigned 403 (mapped to 200 above).
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200)).toBe(true);

    const ready = await eventually('readyz ok after failover', () => getJson(proxy.url, '/readyz'), (r) => r.body?.status === 'ok');
    expect(ready.status).toBe(200);
    // A tag signed once the failover is over (the store answers again) is served at once, and its metadata
    // and floors are written to the new master. (Signed while the store was still degraded, a newly signed
    // tag is served too — revalidated at once — but its floors then stay in the replica's memory and
    // local record, not in Redis: docs/failure-modes.md.)
    const v2 = await signedImage('sentinel/app', 'v2', false);
    expect(await eventually('v2 served after failover', () => head(proxy.url, '/v2/sentinel/app/manifests/v2'), (r) => r.status === 200)).toEqual({ status: 200, digest: v2.digest });
    expect((await head(proxy.url, '/v2/sentinel/app/manifests/unsigned')).status).toBe(403);

    // Floors on the promoted master never went backwards; v2's publish raised targets.
    const floorsAfter = await hgetall(sentinel.replica.port, `sn:trust:floors:${gun}`);
    for (const [role, v] of Object.entries(floorsBefore)) expect(floorsAfter[role]).toBeGreaterThanOrEqual(v);
    expect(floorsAfter.targets).toBeGreaterThan(floorsBefore.targets!);

    // A fresh replica started after the failover refuses a replayed older publish: the floor survived.
    serve('s1');
    const fresh = await tg('sentinel-rb-fresh', hostileConfig());
    expect(await tags(fresh)).toMatchObject({ status: 403, body: { errors: [{ detail: { code: 'ROLLBACK' } }] } });
    console.log(`sentinel failover: master killed → replica promoted in ${failoverMs} ms`);
  });

  it('a failover that lost the floors: running replicas still refuse (floors kept in memory), a replica started afterwards cannot know', async () => {
    // Simulate what asynchronous replication can lose when no replica acknowledged in time (docs/deployment.md, "A fleet: compose, Redis"):
    // the promoted master no longer has this GUN's floors, nor the signed timestamp that proves them.
    const port = await sentinel.currentMasterPort();
    expect(await redisCli(port, 'DEL', `rb:trust:floors:${HGUN}`, `rb:trust:root:${HGUN}`, `rb:trust:floor-proof:${HGUN}`)).toBe('3');
    serve('s1');
    expect(await tags(rb)).toMatchObject({ status: 403, body: { errors: [{ detail: { code: 'ROLLBACK' } }] } });
    // The running replica's floors are its own (memory and its local record): still the s3 versions.
    const late = await tg('sentinel-rb-late', hostileConfig());
    expect(await tags(late)).toMatchObject({ status: 200, body: { tags: ['v1', 'v2'] } });
  });
});
