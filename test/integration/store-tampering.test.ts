// The shared store is not a root of trust (issue 26): a real redis-server shared by two trustgate
// replicas, a real notary-server signed with the real notary CLI, and an attacker who can write to Redis
// with redis-cli and forges Notary v1 metadata under keys of their own. Every tampering must end in a
// refusal or a re-fetch from notary, never in a served forged or superseded digest:
//   1. a forged root, timestamp (fresh, no TTL), snapshot and targets for a signed GUN, replicas restarted
//      (with TOFU, and with trust_pinning + disable_tofu), floors raised to 10 (no lock-out afterwards);
//   2. forged entries for a GUN notary has never seen (also after the negative cache has expired);
//   3. floors lowered with HSET plus an older timestamp replayed; a replica's own floors survive a restart
//      (last in the file: it ends with notary stopped);
//   and swapped manifest bytes and media type, planted "verdicts": nothing the store holds is a verdict.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli, pushSignedImage } from '../support/notary-cli.js';
import { startNotary, tufRequestsFor, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { startRedis, type RedisLab } from '../support/redis.js';
import { buildRepo, makeCertKey, makeKey } from '../support/signed-repo.js';
import { headDigest as head } from '../support/through-proxy.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

let dir: string;
let registry: Registry;
let notary: NotaryLab;
let redis: RedisLab;
let cli: NotaryCli;
let reader: Redis;
let notaryStopped = false;
const running = new Set<Trustgate>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-tamper-'));
  const pki = await makePki(dir);
  [registry, notary, redis] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' }), startRedis(dir)]);
  cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  reader = new Redis(redis.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  reader?.disconnect();
  for (const t of running) await t.stop().catch(() => undefined);
  if (!notaryStopped) await notary?.stop();
  await registry?.stop();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---- the attacker's tools: redis-cli, and metadata signed with keys of their own ----

const redisCli = (args: string[], input?: Buffer): string =>
  execFileSync('redis-cli', ['-p', String(redis.port), ...args], { input, timeout: 10_000 }).toString('utf8').trim();

/** SET a binary value with redis-cli (-x: the value from stdin), and check it arrived byte for byte. */
async function plant(key: string, value: Buffer): Promise<void> {
  expect(redisCli(['-x', 'SET', key], value)).toBe('OK');
  expect((await reader.getBuffer(key))?.equals(value)).toBe(true);
  expect(redisCli(['TTL', key])).toBe('-1'); // planted without a TTL
}

async function keysOf(pattern: string): Promise<string[]> {
  return (await reader.keys(pattern)).sort();
}

/** The one key matching `pattern` (e.g. the timestamp cache entry, whose name includes the notary URL). */
async function oneKey(pattern: string): Promise<string> {
  const keys = await keysOf(pattern);
  expect(keys, pattern).toHaveLength(1);
  return keys[0]!;
}

const sha256Hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A complete Notary v1 repository for `gun` under the forger's own keys, mapping `tags` to `image`. */
function forgeRepo(gun: string, image: PushedImage, tags: string[], version = 10): Map<string, Buffer> {
  return buildRepo({
    gun,
    root: [makeCertKey({ cn: gun })],
    targets: [makeKey('ecdsa')],
    tags: Object.fromEntries(tags.map((t) => [t, image.manifest])),
    version,
  });
}

/** The notary source in a GUN's metadata keys (`meta:<source>:<GUN>:…`), read off its `timestamp:last` key. */
async function sourceOf(prefix: string, gun: string): Promise<string> {
  const key = await oneKey(`${prefix}meta:*:${gun}:timestamp:last`);
  return key.slice(prefix.length + 'meta:'.length, key.indexOf(`:${gun}:timestamp:last`));
}

/**
 * `timestamp` as the shared fresh timestamp, without a TTL, in every form a replica reads: bare under
 * `:fresh` (earlier versions) and, under `:fresh-at`, with a fetch time of now (the forger knows the code).
 */
async function plantFresh(prefix: string, source: string, gun: string, timestamp: Buffer): Promise<void> {
  await plant(`${prefix}meta:${source}:${gun}:timestamp:fresh`, timestamp);
  await plant(`${prefix}meta:${source}:${gun}:timestamp:fresh-at`, Buffer.concat([Buffer.from(`tgfresh1 ${Date.now()}\n`), timestamp]));
}

/** Plant a forged repository for `gun` the way a replica would have stored a genuine one, floors raised to 10. */
async function plantForgery(prefix: string, source: string, gun: string, forged: Map<string, Buffer>): Promise<void> {
  await plant(`${prefix}trust:root:${gun}`, forged.get('root')!);
  await plantFresh(prefix, source, gun, forged.get('timestamp')!);
  await plant(`${prefix}meta:${source}:${gun}:timestamp:last`, forged.get('timestamp')!);
  await plant(`${prefix}meta:${source}:${gun}:root:last`, forged.get('root')!);
  for (const role of ['snapshot', 'targets']) await plant(`${prefix}meta:${source}:${gun}:${role}:${sha256Hex(forged.get(role)!)}`, forged.get(role)!);
  redisCli(['HSET', `${prefix}trust:floors:${gun}`, 'root', '10', 'timestamp', '10', 'snapshot', '10', 'targets', '10']);
}

// ---- the replicas ----

function replicaConfig(name: string, prefix: string, extra: Record<string, unknown> = {}) {
  return {
    upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }],
    default: 'lab',
    log: { level: 'info' },
    // Each replica keeps what it trusts itself (TOFU roots, floors) in a directory of its own.
    store: { kind: 'redis', url: redis.url, prefix, localPath: join(dir, `${name}-local`) },
    limits: { trustCacheSeconds: 1 },
    ...extra,
  };
}

async function replica(name: string, prefix: string, extra: Record<string, unknown> = {}): Promise<Trustgate> {
  const t = await startTrustgate(dir, replicaConfig(name, prefix, extra), name);
  running.add(t);
  return t;
}

async function restart(t: Trustgate, name: string, prefix: string, extra: Record<string, unknown> = {}): Promise<Trustgate> {
  await t.stop();
  running.delete(t);
  return replica(name, prefix, extra);
}

/** Every answer for `repo:tag` on every replica: the genuine digest (re-fetched from notary), never another. */
async function expectGenuine(replicas: Trustgate[], repo: string, tag: string, genuine: string): Promise<void> {
  for (const t of replicas) expect(await head(t.url, `/v2/${repo}/manifests/${tag}`), t.url).toEqual({ status: 200, digest: genuine });
}

async function expectRefused(replicas: Trustgate[], repo: string, tag: string): Promise<void> {
  for (const t of replicas) expect((await head(t.url, `/v2/${repo}/manifests/${tag}`)).status, t.url).toBe(403);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const realRootKeyId = async (prefix: string, gun: string) =>
  (JSON.parse(((await reader.getBuffer(`${prefix}trust:root:${gun}`)) ?? Buffer.from('{}')).toString('utf8')) as { signed: { roles: { root: { keyids: string[] } } } }).signed.roles.root.keyids[0]!;

describe('1. a forged root, timestamp (fresh, no TTL), snapshot and targets for a signed GUN', () => {
  it('with TOFU: restarted replicas and a new one re-fetch from notary and serve the signed digest, and raised floors lock nothing out', async () => {
    const P = 'forge1:';
    const repo = 'forge/tofu';
    const gun = `${registry.host}/${repo}`;
    const real = await pushSignedImage(cli, dir, registry.host, repo, 'v1');
    const evil = await pushImage(dir, registry.host, repo, 'evil');
    let a = await replica('f1-a', P);
    let b = await replica('f1-b', P);
    await expectGenuine([a, b], repo, 'v1', real.digest);
    await expectRefused([a, b], repo, 'evil');

    await plantForgery(P, await sourceOf(P, gun), gun, forgeRepo(gun, evil, ['v1', 'evil']));
    a = await restart(a, 'f1-a', P);
    b = await restart(b, 'f1-b', P);
    const c = await replica('f1-c', P); // has never seen the GUN: its first root must come from notary
    await expectGenuine([a, b, c], repo, 'v1', real.digest);
    await expectRefused([a, b, c], repo, 'evil');
    // The forged floors (10) are not backed by anything the trusted root signed: a new publish is served.
    const next = await pushImage(dir, registry.host, repo, 'v2');
    writeFileSync(join(dir, 'm-forge-tofu-v2'), next.manifest);
    await cli.sign(gun, 'v2', join(dir, 'm-forge-tofu-v2'));
    await sleep(1500);
    await expectGenuine([a, b, c], repo, 'v2', next.digest);
    await expectGenuine([a, b, c], repo, 'v1', real.digest);
  });

  it('with trust_pinning + disable_tofu: a forged root is refused by the pins, the pinned root comes from notary', async () => {
    const P = 'forge2:';
    const repo = 'forge/pinned';
    const gun = `${registry.host}/${repo}`;
    const real = await pushSignedImage(cli, dir, registry.host, repo, 'v1');
    const evil = await pushImage(dir, registry.host, repo, 'evil');
    const probe = await replica('f2-probe', P);
    await expectGenuine([probe], repo, 'v1', real.digest);
    const pinning = { trust_pinning: { certs: { [gun]: [await realRootKeyId(P, gun)] }, disable_tofu: true } };
    let a = await replica('f2-a', P, pinning);
    await expectGenuine([a], repo, 'v1', real.digest);

    await plantForgery(P, await sourceOf(P, gun), gun, forgeRepo(gun, evil, ['v1', 'evil']));
    a = await restart(a, 'f2-a', P, pinning);
    const b = await replica('f2-b', P, pinning); // new: nothing local, the pins decide
    await expectGenuine([a, b], repo, 'v1', real.digest);
    await expectRefused([a, b], repo, 'evil');
  });
});

describe('2. entries forged in Redis for a GUN notary has never seen', () => {
  it('are refused, with TOFU and with disable_tofu, also once the negative cache has expired', { timeout: 180_000 }, async () => {
    const P = 'ghost:';
    const repo = 'ghost/app';
    const gun = `${registry.host}/${repo}`;
    const signedRepo = 'ghost/known';
    const signed = await pushSignedImage(cli, dir, registry.host, signedRepo, 'v1');
    const evil = await pushImage(dir, registry.host, repo, 'v1');
    const tofu = await replica('g-tofu', P);
    await expectGenuine([tofu], signedRepo, 'v1', signed.digest);
    const pinning = { trust_pinning: { certs: { [`${registry.host}/${signedRepo}`]: [await realRootKeyId(P, `${registry.host}/${signedRepo}`)] }, disable_tofu: true } };
    const pinned = await replica('g-pinned', P, pinning);
    await expectGenuine([pinned], signedRepo, 'v1', signed.digest);
    await expectRefused([tofu, pinned], repo, 'v1'); // notary has no trust data: remembered for 30 s

    // The forger writes the ghost GUN's entries under the same notary source as a genuine GUN's.
    const source = await sourceOf(P, `${registry.host}/${signedRepo}`);
    await plantForgery(P, source, gun, forgeRepo(gun, evil, ['v1']));
    await expectRefused([tofu, pinned], repo, 'v1');
    const fresh = await replica('g-new', P); // and on a replica whose negative cache is empty
    await expectRefused([fresh], repo, 'v1');
    await sleep(31_000);
    await plantForgery(P, source, gun, forgeRepo(gun, evil, ['v1'])); // re-planted, in case a replica cleaned up
    await expectRefused([tofu, pinned, fresh], repo, 'v1');
  });
});

describe('swapped manifest bytes and planted verdicts', () => {
  it('a manifest whose bytes or media type were swapped in Redis is fetched again; planted verdicts change nothing', async () => {
    const P = 'swap:';
    const repo = 'swap/app';
    const gun = `${registry.host}/${repo}`;
    const real = await pushSignedImage(cli, dir, registry.host, repo, 'v1');
    const evil = await pushImage(dir, registry.host, repo, 'evil');
    let a = await replica('s-a', P);
    const b = await replica('s-b', P);
    const get = async (t: Trustgate, ref: string) => {
      const res = await fetch(`${t.url}/v2/${repo}/manifests/${ref}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      return { status: res.status, type: res.headers.get('content-type'), digest: res.headers.get('docker-content-digest'), body: Buffer.from(await res.arrayBuffer()) };
    };
    expect((await get(a, 'v1')).body.equals(real.manifest)).toBe(true);
    const manifestKey = await oneKey(`${P}manifest:*${repo}@${real.digest}`);

    // The unsigned image's bytes under the signed digest's key.
    await plant(manifestKey, Buffer.concat([Buffer.from(`${real.mediaType}\n`), evil.manifest]));
    a = await restart(a, 's-a', P);
    for (const t of [a, b]) {
      const r = await get(t, 'v1');
      expect(r.status).toBe(200);
      expect(r.digest).toBe(real.digest);
      expect(r.body.equals(real.manifest)).toBe(true);
    }
    // The right bytes under a media type that is not theirs.
    await plant(manifestKey, Buffer.concat([Buffer.from('application/vnd.oci.image.index.v1+json\n'), real.manifest]));
    a = await restart(a, 's-a', P);
    const r = await get(a, 'v1');
    expect(r).toMatchObject({ status: 200, digest: real.digest, type: real.mediaType });
    expect(r.body.equals(real.manifest)).toBe(true);

    // "Verdicts" an attacker might hope a replica reads: an allow for the unsigned tag under every
    // name a decision cache could plausibly use.
    const allow = Buffer.from(JSON.stringify({ decision: 'allow', digest: evil.digest, length: evil.manifest.length, role: 'targets', verifiedBy: 'dct targets' }));
    for (const k of [`verdict:${gun}:evil`, `decision:${gun}:evil`, `tag:${gun}:evil`, `tag:lab/${repo}:evil`, `warm:lab/${repo}:evil`, `resolved:${gun}:evil`]) await plant(`${P}${k}`, allow);
    a = await restart(a, 's-a', P);
    await expectRefused([a, b], repo, 'evil');
    await expectGenuine([a, b], repo, 'v1', real.digest);
    // Nothing a replica stores is a verdict: every key it wrote is metadata, a manifest, a root, floors,
    // a floor proof, a lock, or a DCT verification record (`dct:verified…`, frozen trust: it names files
    // by checksum, which the trusted set verifies again; docs/failure-modes.md says what its time claims).
    // A new kind of entry must come with its own re-verification (and this list).
    const written = (await keysOf(`${P}*`)).filter((k) => !/^swap:(verdict|decision|tag|warm|resolved):/.test(k));
    const kinds = new Set(written.map((k) => k.slice(P.length).split(':')[0]));
    expect([...kinds].sort()).toEqual(['dct', 'manifest', 'meta', 'trust']);
    for (const k of written.filter((k) => k.startsWith(`${P}trust:`))) expect(k).toMatch(/^swap:trust:(root|floors|floor-proof):/);
    expect(tufRequestsFor(notary, gun).length).toBeGreaterThan(0);
  });
});

describe('3. floors lowered with HSET and an older timestamp replayed', () => {
  it('replicas keep serving the current digest, not the superseded one, and their own floors survive a restart', async () => {
    const P = 'replay:';
    const repo = 'replay/app';
    const gun = `${registry.host}/${repo}`;
    const first = await pushSignedImage(cli, dir, registry.host, repo, 'v1');
    let a = await replica('r-a', P);
    let b = await replica('r-b', P);
    await expectGenuine([a, b], repo, 'v1', first.digest);
    const lastKey = await oneKey(`${P}meta:*:${gun}:timestamp:last`);
    const oldTimestamp = (await reader.getBuffer(lastKey))!;

    // v1 is re-signed to a new image: the old timestamp (still unexpired) names the superseded digest.
    const second = await pushImage(dir, registry.host, repo, 'v1', 'v1-second');
    writeFileSync(join(dir, 'm-replay-second'), second.manifest);
    await cli.sign(gun, 'v1', join(dir, 'm-replay-second'));
    await sleep(1500);
    await expectGenuine([a, b], repo, 'v1', second.digest);
    const floors = await reader.hgetall(`${P}trust:floors:${gun}`);
    expect(Number(floors.timestamp)).toBeGreaterThan(1);

    const source = await sourceOf(P, gun);
    const replay = async () => {
      redisCli(['HSET', `${P}trust:floors:${gun}`, 'root', '1', 'timestamp', '1', 'snapshot', '1', 'targets', '1']);
      await plantFresh(P, source, gun, oldTimestamp);
      await plant(lastKey, oldTimestamp);
    };
    await replay();
    await sleep(1500); // a's verified set is older than trustCacheSeconds: it updates through the store
    await expectGenuine([a], repo, 'v1', second.digest);
    await replay();
    b = await restart(b, 'r-b', P); // its floors come from its own record, not from Redis
    await expectGenuine([b], repo, 'v1', second.digest);

    // Notary itself unreachable: the replayed `last` copy is older than what the replicas saw: refused.
    await replay();
    await notary.stop(); // the last test of the file: the lab's notary keeps its data in memory
    notaryStopped = true;
    a = await restart(a, 'r-a', P);
    const answer = await head(a.url, `/v2/${repo}/manifests/v1`);
    expect(answer.digest).not.toBe(first.digest);
    expect([200, 403, 503]).toContain(answer.status);
  });
});
