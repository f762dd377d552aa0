// Cold tag (issue 23): the first GET by tag of a never-seen GUN, time to first byte, through trustgate
// (DCT, default configuration, file store), against distribution in proxy mode (a cold manifest: it
// fetches and stores, verifies nothing) and the notary CLI's `notary lookup` (a fresh trust dir: the
// same TUF update trustgate makes, without serving anything). ROUNDS never-seen GUNs, one per round;
// in each round every path is asked once, the order rotating, and each figure is the median over the
// rounds. Before each round the servers sit idle for COLD_IDLE_MS (default 6 s, past undici's 4 s
// keep-alive default): the pull of a new repository after a quiet moment, not one in a burst.
// `npm run bench:cold-tag` (COLD_ROUNDS, COLD_IDLE_MS; COLD_BEFORE=<checkout>/dist/main.js adds another
// build in the same run; COLD_TRACE=1 adds a traced copy of this build and prints its stage timeline,
// bench/lib/cold-trace.mjs; with COLD_PROF=1 under --cpu-prof too, self time per cold request; COLD_BEFORE_LABEL names
// the other build's row, COLD_BEFORE_ENV=<JSON object> its environment). Traffic only to 127.0.0.1.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { startRegistry } from '../test/support/docker-registry.js';
import { NotaryCli, pushSignedImage } from '../test/support/notary-cli.js';
import { startNotary } from '../test/support/notary-server.js';
import type { PushedImage } from '../test/support/oci-image.js';
import { makePki } from '../test/support/pki.js';
import { freePort, spawnServer } from '../test/support/spawn-server.js';
import { median, printEnv, runBench, writeResults } from './lib/report.js';

const run = promisify(execFile);
const ROUNDS = Number(process.env.COLD_ROUNDS ?? 9);
const IDLE_MS = Number(process.env.COLD_IDLE_MS ?? 6000);
const BEFORE = process.env.COLD_BEFORE;
const TRACE = process.env.COLD_TRACE === '1';
/** COLD_PROF=1 (with COLD_TRACE=1): the traced copy also runs under --cpu-prof; self time within the cold requests is printed. */
const PROF = TRACE && process.env.COLD_PROF === '1';
const BEFORE_LABEL = process.env.COLD_BEFORE_LABEL ?? 'before';
const NET_FLOOR = 'network floor (root, then 4 files in parallel, then the manifest; no verification, no store)';
/** COLD_BEFORE_ENV: a JSON object of environment variables for the COLD_BEFORE build (the same build with one setting changed). */
const BEFORE_ENV = JSON.parse(process.env.COLD_BEFORE_ENV ?? '{}') as Record<string, string>;
const MAIN = new URL('../dist/main.js', import.meta.url).pathname;
const TRACER = new URL('./lib/cold-trace.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'trustgate-cold-tag-'));
const stops: Array<() => Promise<unknown>> = [];

const fmt = (n: number, d = 1) => n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });

/** trustgate as operators run it (test/support/trustgate-process.ts), from any build, with extra node flags. */
async function startTg(name: string, main: string, config: Record<string, unknown>, nodeArgs: string[] = [], env: NodeJS.ProcessEnv = {}, onStop?: (stop: () => Promise<void>) => void) {
  const port = await freePort();
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify({ listen: `127.0.0.1:${port}`, ...config }));
  const url = `http://127.0.0.1:${port}`;
  const srv = await spawnServer({
    cmd: process.execPath,
    args: [...nodeArgs, main, 'start', '--config', file],
    env: { ...process.env, ...env },
    logFile: join(dir, `${name}.log`),
    ready: async () => (await fetch(`${url}/healthz`)).status === 200,
  });
  stops.push(() => srv.stop());
  onStop?.(() => srv.stop());
  return url;
}

interface TraceLine {
  url: string;
  totalMs: number;
  window: { from: number; to: number };
  cpuMs: number;
  events: Array<{ kind: string; what: string; at: number; ms: number }>;
}

async function main(): Promise<void> {
  printEnv();
  const pki = await makePki(dir);
  const [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  stops.push(() => registry.stop(), () => notary.stop());
  const mirror = await startRegistry(dir, { proxyRemote: registry.url });
  stops.push(() => mirror.stop());
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  const signed = (repo: string): Promise<PushedImage> => pushSignedImage(cli, dir, registry.host, repo, 'v1');

  // The default configuration: DCT enforced, file store, audit lines on stdout (to a file, as under a
  // service manager).
  const config = (name: string) => ({
    upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }],
    default: 'lab',
    store: { kind: 'file', path: join(dir, `${name}-data`) },
  });
  const traceFile = join(dir, 'trace.jsonl');
  const tg: Record<string, string> = { 'trustgate (file store)': await startTg('tg', MAIN, config('tg')) };
  if (BEFORE) tg[`trustgate ${BEFORE_LABEL} (file store)`] = await startTg('tg-before', BEFORE, config('tg-before'), [], BEFORE_ENV);
  const profDir = join(dir, 'prof');
  let stopTraced: (() => Promise<void>) | undefined;
  if (TRACE) tg['trustgate traced (file store)'] = await startTg('tg-traced', MAIN, config('tg-traced'), ['--import', TRACER, ...(PROF ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [])], { COLD_TRACE_FILE: traceFile }, (stop) => (stopTraced = stop));

  // Keep-alive as trustgate's pools (src/http/keep-alive.ts: 30 s), trusting the lab's CA.
  const floorAgent = new Agent({ keepAliveTimeout: 30_000, connect: { ca: readFileSync(notary.caFile) } });
  type Path = { name: string; ask: (repo: string, img: PushedImage, round: number) => Promise<number> };
  const ttfb = async (url: string, img: PushedImage, checkDigest: boolean) => {
    const t0 = performance.now();
    const r = await request(url, { headers: { accept: img.mediaType } });
    const t = performance.now() - t0;
    const body = Buffer.from(await r.body.arrayBuffer());
    if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode} ${body.toString('utf8').slice(0, 300)}`);
    if (!body.equals(img.manifest)) throw new Error(`${url}: not the pushed manifest`);
    if (checkDigest && r.headers['docker-content-digest'] !== img.digest) throw new Error(`${url}: digest ${String(r.headers['docker-content-digest'])}`);
    return t;
  };
  const paths: Path[] = [
    ...Object.entries(tg).map(([name, base]) => ({ name, ask: (repo: string, img: PushedImage) => ttfb(`${base}/v2/${repo}/manifests/v1`, img, true) })),
    { name: 'registry proxy mode', ask: (repo, img) => ttfb(`${mirror.url}/v2/${repo}/manifests/v1`, img, false) },
    {
      // The network part of a DCT cold tag alone, from this process over warm connections: root.json, then
      // the four files trustgate asks for on first contact in parallel, then the manifest by the digest
      // targets.json names (time to its headers). Nothing verified, nothing stored: what any DCT proxy
      // must wait for, whatever it does besides.
      name: NET_FLOOR,
      ask: async (repo, img) => {
        const gun = `${registry.host}/${repo}`;
        const tuf = (role: string) => request(`${notary.url}/v2/${gun}/_trust/tuf/${role}.json`, { dispatcher: floorAgent });
        const t0 = performance.now();
        await (await tuf('root')).body.arrayBuffer();
        const [, , targets] = await Promise.all(['timestamp', 'snapshot', 'targets', 'targets/releases'].map(async (r) => Buffer.from(await (await tuf(r)).body.arrayBuffer())));
        const hex = Buffer.from(JSON.parse(targets!.toString('utf8')).signed.targets.v1.hashes.sha256, 'base64').toString('hex');
        const m = await request(`${registry.url}/v2/${repo}/manifests/sha256:${hex}`, { headers: { accept: img.mediaType }, dispatcher: floorAgent });
        const t = performance.now() - t0;
        const body = Buffer.from(await m.body.arrayBuffer());
        if (m.statusCode !== 200 || !body.equals(img.manifest)) throw new Error(`network floor: ${m.statusCode}`);
        return t;
      },
    },
    {
      name: 'notary lookup (CLI)',
      ask: async (repo, img, round) => {
        const t0 = performance.now();
        const { stdout } = await run('notary', ['-s', notary.url, '--tlscacert', notary.caFile, '-d', join(dir, `lookup-trust-${round}`), 'lookup', `${registry.host}/${repo}`, 'v1']);
        const t = performance.now() - t0;
        if (!stdout.includes(img.digest.slice('sha256:'.length))) throw new Error(`notary lookup: ${stdout}`);
        return t;
      },
    },
  ];

  // Round 0 warms every process (JIT, the bench client's connection to it) on a GUN of its own, not counted.
  const samples = new Map<string, number[]>(paths.map((p) => [p.name, []]));
  let idleSince = 0;
  for (let round = 0; round <= ROUNDS; round++) {
    const repo = round === 0 ? 'warmup/app' : `cold${round}/app`;
    const img = await signed(repo);
    if (round > 0) await sleep(Math.max(0, idleSince + IDLE_MS - performance.now()));
    const line: string[] = [];
    for (let k = 0; k < paths.length; k++) {
      const p = paths[(k + round) % paths.length]!;
      const t = await p.ask(repo, img, round);
      if (round > 0) samples.get(p.name)!.push(t);
      line.push(`${p.name} ${fmt(t)}`);
    }
    idleSince = performance.now();
    console.log(`${round === 0 ? 'warm-up' : `round ${round}`}: ${line.join(', ')} ms`);
  }

  await floorAgent.close();
  const rows = paths.map((p) => ({ path: p.name, medianMs: median(samples.get(p.name)!), samplesMs: samples.get(p.name)!.map((x) => Math.round(x * 100) / 100) }));
  const m = (name: string) => rows.find((r) => r.path === name)!.medianMs;
  const tgMs = m('trustgate (file store)');
  const proxyMs = m('registry proxy mode');
  const lookupMs = m('notary lookup (CLI)');
  const goals = [
    { goal: 'trustgate ≤ 1.0× registry proxy mode (cold manifest GET)', ratio: tgMs / proxyMs, limit: 1.0 },
    { goal: 'trustgate ≤ 0.6× notary lookup', ratio: tgMs / lookupMs, limit: 0.6 },
  ].map((g) => ({ ...g, met: g.ratio <= g.limit }));

  console.log(`\n| path | median ms (${ROUNDS} never-seen GUNs) | × proxy mode | × notary lookup |\n|---|---:|---:|---:|`);
  for (const r of rows) console.log(`| ${r.path} | ${fmt(r.medianMs)} | ${fmt(r.medianMs / proxyMs, 2)} | ${fmt(r.medianMs / lookupMs, 2)} |`);
  console.log('');
  for (const g of goals) console.log(`${g.met ? 'MET    ' : 'NOT MET'} ${g.goal}: ${fmt(g.ratio, 2)}×`);

  let trace: TraceLine[] | undefined;
  if (TRACE) {
    trace = readFileSync(traceFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as TraceLine).filter((t) => /cold\d+\/app/.test(t.url));
    // The round whose total is the median: its timeline.
    const mid = [...trace].sort((a, b) => a.totalMs - b.totalMs)[Math.floor(trace.length / 2)]!;
    console.log(`\ntraced copy, median round (${mid.url}): ${fmt(mid.totalMs, 2)} ms, CPU ${fmt(mid.cpuMs, 2)} ms`);
    for (const e of mid.events) console.log(`  ${fmt(e.at, 2).padStart(7)} +${fmt(e.ms, 2).padStart(6)}  ${e.kind.padEnd(11)} ${e.what.replace(/[0-9a-f]{64}/g, '<sha>')}`);
    if (PROF && stopTraced) {
      await stopTraced(); // the profile is written at exit
      const f = readdirSync(profDir).find((n) => n.endsWith('.cpuprofile'))!;
      const p = JSON.parse(readFileSync(join(profDir, f), 'utf8')) as { nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>; startTime: number; samples: number[]; timeDeltas: number[] };
      const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
      const totals = new Map<string, number>();
      let t = p.startTime;
      p.samples.forEach((id, i) => {
        const start = t;
        t += p.timeDeltas[i] ?? 0;
        let inside = 0;
        for (const w of trace!.map((x) => x.window)) inside += Math.max(0, Math.min(t, w.to) - Math.max(start, w.from));
        if (inside <= 0) return;
        const c = byId.get(id)!;
        const key = `${c.functionName || '(anonymous)'} ${c.url.replace(/^.*\/(node_modules\/|dist\/)/, '$1')}:${c.lineNumber + 1}`;
        totals.set(key, (totals.get(key) ?? 0) + inside / 1000 / trace!.length);
      });
      console.log('self time per cold request (ms, mean over rounds, traced copy under --cpu-prof):');
      for (const [fn, ms] of [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${fmt(ms, 2).padStart(6)}  ${fn}`);
    }
    const sum = (pred: (e: TraceLine['events'][number]) => boolean) => median(trace!.map((t) => t.events.filter(pred).reduce((a, e) => a + e.ms, 0)));
    console.log(`medians over rounds: total ${fmt(median(trace.map((t) => t.totalMs)), 2)} ms, CPU ${fmt(median(trace.map((t) => t.cpuMs)), 2)} ms, notary requests ${fmt(sum((e) => e.kind === 'net-headers' && e.what.includes('/_trust/')), 2)} ms (summed), registry ${fmt(sum((e) => e.kind === 'net-headers' && e.what.includes('/manifests/')), 2)} ms, fdatasync ${fmt(sum((e) => e.what === 'fh.datasync'), 2)} ms (summed), connects ${median(trace.map((t) => t.events.filter((e) => e.kind === 'connect').length))}`);
  }

  // Of the trace, the median round's timeline (what the printout shows) and every round's total.
  const traced = trace && { medianRound: [...trace].sort((a, b) => a.totalMs - b.totalMs)[Math.floor(trace.length / 2)], totalsMs: trace.map((t) => t.totalMs) };
  const file = writeResults('cold-tag', { rounds: ROUNDS, idleMs: IDLE_MS, rows, goals, ...(traced ? { trace: traced } : {}) });
  console.log(file);
}

runBench(main, stops, dir);
