// trustgate against the direct registry, distribution's own pull-through cache (proxy mode) and a
// bare node:http server, all measured in one run on this machine, reported as ratios (absolute numbers
// are noisy here: client, servers and proxy share 2 cores). Traffic only to 127.0.0.1; every loop is
// bounded in time. `npm run bench` (BENCH_SECONDS, BENCH_ROUNDS, MIXED_SECONDS shorten or lengthen the runs).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { Agent, request } from 'undici';
import { pushBlob, sha256Of } from '../test/support/blob-push.js';
import { startRegistry } from '../test/support/docker-registry.js';
import { NotaryCli } from '../test/support/notary-cli.js';
import { startNotary } from '../test/support/notary-server.js';
import { pushImage, type PushedImage } from '../test/support/oci-image.js';
import { makePki } from '../test/support/pki.js';
import { startRedis } from '../test/support/redis.js';
import { rssBytes, startTrustgate } from '../test/support/trustgate-process.js';
import { startBareProcess } from './lib/bare-server.js';
import { getLoad, headLoad, type LoadResult } from './lib/load.js';
import { median, printEnv, runBench, writeResults } from './lib/report.js';
import { updateBenchDocs } from './lib/docs-tables.js';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const MIXED_SECONDS = Number(process.env.MIXED_SECONDS ?? 60);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 64;
/** COLD_ONLY=1: only the cold-tag comparison (trustgate, proxy mode, `notary lookup`), nothing written. */
const COLD_ONLY = process.env.COLD_ONLY === '1';
/** Never-seen GUNs per cold-tag comparison (the median of these). */
const COLD_TAGS = Number(process.env.COLD_TAGS ?? 9);
const dir = mkdtempSync(join(tmpdir(), 'trustgate-bench-'));
const stops: Array<() => Promise<unknown>> = [];
const results: Record<string, unknown> = {};

function fmt(n: number, d = 0): string {
  return n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });
}

async function main(): Promise<void> {
  printEnv();
  const pki = await makePki(dir);
  const [registry, notary, redis] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' }), startRedis(dir)]);
  stops.push(() => registry.stop(), () => notary.stop(), () => redis.stop());
  const mirror = await startRegistry(dir, { proxyRemote: registry.url });
  stops.push(() => mirror.stop());
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  const sign = async (repo: string, img: PushedImage) => {
    const gun = `${registry.host}/${repo}`;
    const f = join(dir, `m-${repo.replace(/\//g, '_')}-${img.tag}`);
    writeFileSync(f, img.manifest);
    await cli.sign(gun, img.tag, f);
  };
  const REPO = 'bench/app';
  await cli.initRepo(`${registry.host}/${REPO}`);
  const img = await pushImage(dir, registry.host, REPO, 'v1');
  await pushImage(dir, registry.host, REPO, 'unsigned');
  await sign(REPO, img);
  console.log(`# manifest ${img.manifest.length} bytes, ${img.digest}`);

  // The default configuration (audit line per decision, info log), stdout to a file as under a
  // service manager: the headline rows. Other rows say what they change.
  const tgConfig = (store: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }],
    default: 'lab',
    store,
    ...extra,
  });
  const tgFile = await startTrustgate(dir, tgConfig({ kind: 'file', path: join(dir, 'tg-file') }), 'tg-file');
  // 3. Cold tag resolution for never-seen GUNs: time to first byte, each path once per GUN.
  const coldTags = async () => {
    const cold: Record<string, number[]> = { 'trustgate (file store)': [], 'notary lookup (CLI)': [], 'registry proxy mode': [] };
    // The bench's own connections to both servers are open before the first sample (the full run's
    // warm passes open them too): the figure is the server's cold path, not a TCP handshake.
    for (const base of [tgFile.url, mirror.url]) await (await request(`${base}/v2/`)).body.dump();
    for (let i = 0; i < COLD_TAGS; i++) {
      const repo = `cold${i}/app`;
      await cli.initRepo(`${registry.host}/${repo}`);
      const c = await pushImage(dir, registry.host, repo, 'v1');
      await sign(repo, c);
      const ttfb = async (url: string) => {
        const t0 = performance.now();
        const r = await request(url, { headers: { accept: c.mediaType } });
        const t = performance.now() - t0;
        await r.body.dump();
        if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode}`);
        return t;
      };
      cold['trustgate (file store)']!.push(await ttfb(`${tgFile.url}/v2/${repo}/manifests/v1`));
      cold['registry proxy mode']!.push(await ttfb(`${mirror.url}/v2/${repo}/manifests/v1`));
      const t0 = performance.now();
      await run('notary', ['-s', notary.url, '--tlscacert', notary.caFile, '-d', join(dir, `cold-trust-${i}`), 'lookup', `${registry.host}/${repo}`, 'v1']);
      cold['notary lookup (CLI)']!.push(performance.now() - t0);
    }
    for (const [k, v] of Object.entries(cold)) console.log(`cold tag ${k.padEnd(24)} median ${fmt(median(v), 1)} ms  (${v.map((x) => fmt(x, 1)).join(', ')})`);
    const [tg, nl, pm] = [median(cold['trustgate (file store)']!), median(cold['notary lookup (CLI)']!), median(cold['registry proxy mode']!)];
    console.log(`cold tag trustgate: ${fmt(tg / pm, 2)}× proxy mode (goal ≤ 1.0), ${fmt(tg / nl, 2)}× notary lookup (goal ≤ 0.6)`);
    return Object.fromEntries(Object.entries(cold).map(([k, v]) => [k, { medianMs: median(v), samplesMs: v }]));
  };
  if (COLD_ONLY) {
    stops.push(() => tgFile.stop());
    await coldTags();
    return;
  }
  const tgRedis = await startTrustgate(dir, tgConfig({ kind: 'redis', url: redis.url }), 'tg-redis');
  const tgNoVerify = await startTrustgate(dir, tgConfig({ kind: 'file', path: join(dir, 'tg-nv') }, { limits: { verifyBlobDigests: false } }), 'tg-nv');
  // Audit cannot be switched off: "off" here is the closest thing, lines to /dev/null and log.level warn.
  const tgQuiet = await startTrustgate(dir, tgConfig({ kind: 'file', path: join(dir, 'tg-quiet') }, { log: { level: 'warn' }, audit: { path: '/dev/null' } }), 'tg-quiet');
  const tgWorkers = await startTrustgate(dir, tgConfig({ kind: 'file', path: join(dir, 'tg-workers') }, { workers: 2 }), 'tg-workers');
  stops.push(() => tgFile.stop(), () => tgRedis.stop(), () => tgNoVerify.stop(), () => tgQuiet.stop(), () => tgWorkers.stop());
  const bare = await startBareProcess(dir, img.manifest, img.mediaType, img.digest);
  stops.push(() => bare.stop());

  const targets: Record<string, string> = {
    'direct registry': registry.url,
    'registry proxy mode': mirror.url,
    'bare node:http': bare.url,
    'trustgate (file store)': tgFile.url,
    'trustgate (redis store)': tgRedis.url,
    'trustgate (file store, audit off)': tgQuiet.url,
    'trustgate (file store, workers: 2)': tgWorkers.url,
  };
  // Warm every cache (and the proxy-mode registry's copy) before measuring.
  for (const base of Object.values(targets)) {
    for (const ref of ['v1', img.digest]) {
      const r = await request(`${base}/v2/${REPO}/manifests/${ref}`, { headers: { accept: img.mediaType } });
      await r.body.dump();
      if (r.statusCode !== 200) throw new Error(`${base} ${ref}: ${r.statusCode}`);
    }
  }

  // 1–2. Warm manifests: HEAD/GET by tag, GET by digest. ROUNDS passes over every target, interleaved,
  // and per target the median of each figure: one busy moment on a shared machine then moves one
  // sample, not a whole row (and every ratio still compares figures taken in the same minutes).
  const manifestRows: Array<{ scenario: string; target: string; rounds?: number[] } & LoadResult> = [];
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const [scenario, path, method] of [
    ['HEAD manifest by tag', `/v2/${REPO}/manifests/v1`, 'HEAD'],
    ['GET manifest by tag', `/v2/${REPO}/manifests/v1`, 'GET'],
    ['GET manifest by digest', `/v2/${REPO}/manifests/${img.digest}`, 'GET'],
  ] as const) {
    const samples = new Map<string, LoadResult[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [target, base] of Object.entries(targets)) {
        const r = method === 'HEAD' ? await headLoad(`${base}${path}`, CONNECTIONS, SECONDS, { accept: img.mediaType }) : await getLoad(`${base}${path}`, CONNECTIONS, SECONDS, { accept: img.mediaType });
        samples.set(target, [...(samples.get(target) ?? []), r]);
        console.log(`${scenario.padEnd(24)} ${target.padEnd(36)} ${fmt(r.rps).padStart(8)} req/s  p50 ${fmt(r.p50, 1)} ms  p99 ${fmt(r.p99, 1)} ms  errors ${r.errors} non2xx ${r.non2xx}  (round ${round + 1})`);
      }
    }
    for (const [target, rs] of samples) {
      const sum = (k: 'requests' | 'errors' | 'non2xx') => rs.reduce((a, r) => a + r[k], 0);
      manifestRows.push({ scenario, target, rps: med(rs.map((r) => r.rps)), p50: med(rs.map((r) => r.p50)), p99: med(rs.map((r) => r.p99)), requests: sum('requests'), errors: sum('errors'), non2xx: sum('non2xx'), rounds: rs.map((r) => Math.round(r.rps)) });
    }
  }
  results.manifests = manifestRows;

  results.cold = await coldTags();

  // 4. Stampede: 1000 concurrent requests for one cold tag, counted in the servers' own logs.
  {
    const repo = 'stampede/app';
    const gun = `${registry.host}/${repo}`;
    await cli.initRepo(gun);
    const s = await pushImage(dir, registry.host, repo, 'v1');
    await sign(repo, s);
    const nBefore = notary.requests().filter((u) => u.includes(`/${gun}/_trust/`)).length;
    const rBefore = registry.requests().filter((u) => u.includes(`/${repo}/manifests/`)).length;
    const agent = new Agent({ connections: 1000 });
    const statuses = await Promise.all(
      Array.from({ length: 1000 }, async () => {
        const r = await request(`${tgFile.url}/v2/${repo}/manifests/v1`, { method: 'HEAD', dispatcher: agent });
        await r.body.dump();
        return r.statusCode;
      }),
    );
    await agent.close();
    const notaryHits = notary.requests().filter((u) => u.includes(`/${gun}/_trust/`)).slice(nBefore);
    const registryHits = registry.requests().filter((u) => u.includes(`/${repo}/manifests/`)).length - rBefore;
    results.stampede = { requests: 1000, ok: statuses.filter((x) => x === 200).length, notaryRequests: notaryHits.length, notaryPaths: notaryHits, registryManifestRequests: registryHits };
    console.log(`stampede: 1000 requests → notary ${notaryHits.length} (${notaryHits.map((u) => u.split('/').pop()!.replace(/\.[0-9a-f]{64}/, '.<sha>')).join(', ')}), registry manifests ${registryHits}`);
  }

  // 5. Blob streaming: throughput, and trustgate's resident memory. trustgate's rows are each blob's
  // first pull, through the blob cache's fill (warm pulls: bench/blob-cache.bench.ts).
  const blobRows: Array<{ sizeMiB: number; target: string; MBps: number; rssGrowthMiB?: number }> = [];
  for (const size of [256 << 20, 1024 << 20]) {
    const digest = await pushBlob(registry.url, REPO, size, size >> 20);
    const fetchBlob = async (base: string, sample?: number) => {
      let peak = sample ? rssBytes(sample) : 0;
      const timer = sample ? setInterval(() => (peak = Math.max(peak, rssBytes(sample))), 50) : undefined;
      const t0 = performance.now();
      const r = await request(`${base}/v2/${REPO}/blobs/${digest}`);
      let n = 0;
      for await (const c of r.body) n += (c as Buffer).length;
      const s = (performance.now() - t0) / 1000;
      if (timer) clearInterval(timer);
      if (n !== size) throw new Error(`${base}: got ${n} bytes`);
      return { MBps: size / 1e6 / s, peak };
    };
    await fetchBlob(mirror.url); // warm the proxy-mode registry's copy
    for (const [target, base, pid] of [
      ['direct registry', registry.url, undefined],
      ['registry proxy mode (warm)', mirror.url, undefined],
      ['trustgate, first pull (blob cache fill, digest checked)', tgFile.url, tgFile.pid],
      ['trustgate, first pull, verifyBlobDigests: false (the fill still checks)', tgNoVerify.url, tgNoVerify.pid],
    ] as const) {
      const before = pid ? rssBytes(pid) : 0;
      const r = await fetchBlob(base, pid);
      const row = { sizeMiB: size >> 20, target, MBps: r.MBps, ...(target.startsWith('trustgate') ? { rssGrowthMiB: (r.peak - before) / 2 ** 20 } : {}) };
      blobRows.push(row);
      console.log(`blob ${row.sizeMiB} MiB ${target.padEnd(28)} ${fmt(r.MBps)} MB/s${row.rssGrowthMiB !== undefined ? `  RSS +${fmt(row.rssGrowthMiB, 1)} MiB` : ''}`);
    }
    // The blob was only a means: check trustgate delivered the right bytes once.
    if ((await sha256Of((await request(`${tgFile.url}/v2/${REPO}/blobs/${digest}`)).body)) !== digest) throw new Error('blob digest mismatch');
  }
  results.blobs = blobRows;

  // 6. Mixed load: tags, digests, small blobs and unsigned tags together.
  {
    const small = img.blobs[0]!.digest;
    // The server's own count of decisions (a request autocannon abandons at the end still got one).
    const serverDecisions = async () => {
      const r = await request(`${tgFile.url}/metrics`);
      const text = await r.body.text();
      return text.split('\n').filter((l) => l.startsWith('trustgate_trust_decisions_total{')).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    };
    const decisionsBefore = await serverDecisions();
    const rssStart = rssBytes(tgFile.pid);
    const auditBefore = readFileSync(tgFile.logFile, 'utf8').split('\n').filter((l) => l.includes('"audit":true') && l.includes(`"repo":"${REPO}"`)).length;
    const byPath = new Map<string, Map<number, number>>();
    const paths = [`/v2/${REPO}/manifests/v1`, `/v2/${REPO}/manifests/${img.digest}`, `/v2/${REPO}/blobs/${small}`, `/v2/${REPO}/manifests/unsigned`];
    // RSS every 5 s: flat or still growing at the end is what tells a leak from a warm-up.
    const rssSamples: number[] = [];
    const sampler = setInterval(() => rssSamples.push(rssBytes(tgFile.pid) / 2 ** 20), 5000);
    const r = await autocannon({
      url: tgFile.url,
      connections: 32,
      duration: MIXED_SECONDS,
      requests: paths.map((path) => ({
        method: 'GET' as const,
        path,
        headers: { accept: img.mediaType },
        onResponse: (status: number) => {
          const m = byPath.get(path) ?? new Map<number, number>();
          m.set(status, (m.get(status) ?? 0) + 1);
          byPath.set(path, m);
        },
      })),
    });
    clearInterval(sampler);
    const rssEnd = rssBytes(tgFile.pid);
    // Every manifest request, by tag or by digest, is a decision and must have its audit line (issue 27;
    // blob pulls have none).
    const decisions = [...byPath.entries()].filter(([p]) => /manifests\/(v1|unsigned|sha256:[0-9a-f]{64})$/.test(p)).reduce((n, [, m]) => n + [...m.values()].reduce((a, c) => a + c, 0), 0);
    const countAudit = () => readFileSync(tgFile.logFile, 'utf8').split('\n').filter((l) => l.includes('"audit":true') && l.includes(`"repo":"${REPO}"`)).length;
    let auditLines = countAudit() - auditBefore;
    for (let i = 0; i < 100 && auditLines < decisions; i++) {
      await new Promise((res) => setTimeout(res, 50)); // lines reach the file a moment after the response
      auditLines = countAudit() - auditBefore;
    }
    const unexpected = [...byPath.entries()].reduce((n, [path, m]) => n + [...m.entries()].filter(([st]) => (path.endsWith('/unsigned') ? st !== 403 : st !== 200)).reduce((a, [, c]) => a + c, 0), 0);
    results.mixed = {
      seconds: MIXED_SECONDS,
      rps: r.requests.average,
      p99: r.latency.p99,
      errors: r.errors + r.timeouts,
      unexpectedStatuses: unexpected,
      statuses: Object.fromEntries([...byPath.entries()].map(([p, m]) => [p.replace(/sha256:[0-9a-f]{64}/, 'sha256:…'), Object.fromEntries(m)])),
      rssStartMiB: rssStart / 2 ** 20,
      rssEndMiB: rssEnd / 2 ** 20,
      rssSamplesMiB: rssSamples.map((x) => Math.round(x)),
      decisions,
      auditLines,
      serverDecisions: (await serverDecisions()) - decisionsBefore,
    };
    console.log(`mixed ${MIXED_SECONDS}s: ${fmt(r.requests.average)} req/s, errors ${r.errors + r.timeouts}, unexpected statuses ${unexpected}, RSS ${fmt(rssStart / 2 ** 20)} → ${fmt(rssEnd / 2 ** 20)} MiB, decisions ${decisions} (server: ${results.mixed && (results.mixed as { serverDecisions: number }).serverDecisions}), audit lines ${auditLines}`);
  }

  results.rounds = ROUNDS;
  const file = writeResults('proxy', { seconds: SECONDS, connections: CONNECTIONS, manifestBytes: img.manifest.length, ...results });
  console.log(file);
  updateBenchDocs(results as never, SECONDS, CONNECTIONS, img.manifest.length);
}

runBench(main, stops, dir);
