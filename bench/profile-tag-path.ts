// Where the warm tag path spends its time with the default configuration (audit on, file store, log to
// a file): trustgate runs under `node --cpu-prof` while autocannon GETs (or HEADs) one signed tag, then
// the profile's self time is summed per function and printed, top first. `npm run bench:profile`
// (PROFILE_SECONDS, PROFILE_METHOD=HEAD; PROFILE_BEFORE=<other checkout>/dist/main.js also runs an older
// build in the same run, for before/after figures; PROFILE_AUDIT=on|off runs only that variant;
// PROFILE_KEEP=<dir> keeps the .cpuprofile files; PROFILE_BARE=1 adds the bare node:http floor;
// PROFILE_ROUNDS=n interleaves the variants' load in n rounds). Traffic only to 127.0.0.1.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startRegistry } from '../test/support/docker-registry.js';
import { NotaryCli } from '../test/support/notary-cli.js';
import { startNotary } from '../test/support/notary-server.js';
import { pushImage } from '../test/support/oci-image.js';
import { makePki } from '../test/support/pki.js';
import { freePort, spawnServer } from '../test/support/spawn-server.js';
import { stringify } from 'yaml';
import { getLoad, headLoad } from './lib/load.js';
import { printEnv, runBench } from './lib/report.js';

const SECONDS = Number(process.env.PROFILE_SECONDS ?? 10);
/** PROFILE_ROUNDS: the load of each variant is cut into this many interleaved rounds (default 1). */
const ROUNDS = Math.max(1, Number(process.env.PROFILE_ROUNDS ?? 1));
const METHOD = process.env.PROFILE_METHOD === 'HEAD' ? 'HEAD' : 'GET';
const BEFORE = process.env.PROFILE_BEFORE;
const AUDIT = process.env.PROFILE_AUDIT; // 'on' | 'off' | unset (both)
const KEEP = process.env.PROFILE_KEEP;
/** PROFILE_BARE=1: also profile the bare node:http floor (bench/lib/bare-server.ts) under the same load. */
const BARE = process.env.PROFILE_BARE === '1';
const BARE_MAIN = new URL('./lib/bare-process.ts', import.meta.url).pathname;
const MAIN = new URL('../dist/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'trustgate-profile-'));
const stops: Array<() => Promise<unknown>> = [];

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: Node[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

type Window = { from: number; to: number };

/**
 * Samples (node id, µs) for the time the load ran: each sample stands for the interval since the one
 * before it, and only the part of that interval inside a window counts (the first sample after an
 * idle gap between rounds would otherwise carry the whole gap). Monotonic clock, µs.
 */
function inWindows(p: Profile, windows: readonly Window[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let t = p.startTime;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    const start = t;
    t += dt;
    let inside = 0;
    for (const w of windows) inside += Math.max(0, Math.min(t, w.to) - Math.max(start, w.from));
    if (inside > 0) out.push([id, inside]);
  });
  return out;
}

/**
 * CPU time the server spent per request while the load ran: busy (non-idle) sample time within the
 * load's windows, over the requests answered. Unlike req/s it does not depend on how much of the
 * shared CPU the load generator and other processes took. Profile timestamps and hrtime are both
 * the monotonic clock (µs).
 */
function busyMicrosPerRequest(p: Profile, windows: readonly Window[], requests: number): number {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  let busy = 0;
  for (const [id, dt] of inWindows(p, windows)) if (byId.get(id)!.callFrame.functionName !== '(idle)') busy += dt;
  return busy / requests;
}

/** Self time per function (name + file:line), as a share of the samples taken while the load ran. */
function selfTimes(p: Profile, windows: readonly Window[]): Array<{ fn: string; share: number }> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  let all = 0;
  for (const [id, dt] of inWindows(p, windows)) {
    const n = byId.get(id)!;
    const url = n.callFrame.url.replace(/^.*\/(node_modules\/|dist\/)/, '$1');
    const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
    totals.set(key, (totals.get(key) ?? 0) + dt);
    all += dt;
  }
  return [...totals.entries()].map(([fn, t]) => ({ fn, share: t / all })).sort((a, b) => b.share - a.share);
}

/**
 * Busy time by where it is spent: trustgate's own code (dist/), its npm dependencies, Node's JS
 * internals (http, streams, events), native code (socket and fs writes, regexps), and the collector.
 * Inlined callees count for their caller, so "trustgate" is what our code costs with what V8 folded into it.
 */
function byCategory(all: Array<{ fn: string; share: number }>): Record<string, number> {
  const out: Record<string, number> = { trustgate: 0, dependencies: 0, 'node internals': 0, 'native and program': 0, 'garbage collector': 0 };
  let busy = 0;
  for (const t of all) {
    if (t.fn.startsWith('(idle)')) continue;
    busy += t.share;
    const cat = / dist\//.test(t.fn)
      ? 'trustgate'
      : / node_modules\//.test(t.fn)
        ? 'dependencies'
        : / node:/.test(t.fn)
          ? 'node internals'
          : t.fn.startsWith('(garbage collector)')
            ? 'garbage collector'
            : 'native and program';
    out[cat]! += t.share;
  }
  for (const k of Object.keys(out)) out[k] = out[k]! / busy;
  return out;
}

async function main(): Promise<void> {
  printEnv();
  const pki = await makePki(dir);
  const [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  stops.push(() => registry.stop(), () => notary.stop());
  const REPO = 'profile/app';
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(`${registry.host}/${REPO}`);
  const img = await pushImage(dir, registry.host, REPO, 'v1');
  writeFileSync(join(dir, 'm'), img.manifest);
  await cli.sign(`${registry.host}/${REPO}`, 'v1', join(dir, 'm'));
  const upstreams = [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }];
  // Default configuration, stdout to a file (as under a service manager); audit off = `log.level: warn`
  // on a build where that still drops audit lines, or audit.path /dev/null on this one.
  const variants: Array<{ name: string; main: string; config: Record<string, unknown> }> = [
    { name: 'this build, audit on', main: MAIN, config: {} },
    { name: 'this build, audit to /dev/null, log warn', main: MAIN, config: { log: { level: 'warn' }, audit: { path: '/dev/null' } } },
    ...(BEFORE ? [{ name: 'before, audit on', main: BEFORE, config: {} }, { name: 'before, log warn (audit dropped)', main: BEFORE, config: { log: { level: 'warn' } } }] : []),
    ...(BARE ? [{ name: 'bare node:http (the floor; audit on = always run)', main: BARE_MAIN, config: {} }] : []),
  ];
  // Every server is started first, then loaded in turn for ROUNDS rounds of SECONDS/ROUNDS each (the
  // order rotating): on a shared machine a slow minute then falls on every variant alike.
  type Running = { i: number; v: (typeof variants)[number]; url: string; profDir: string; logFile: string; stop: () => Promise<void>; windows: Window[]; requests: number; rps: number[]; p99: number[]; errors: number; non2xx: number };
  const running: Running[] = [];
  for (const [i, v] of variants.entries()) {
    const bare = v.main === BARE_MAIN;
    if (AUDIT === 'on' && !v.name.includes('audit on')) continue;
    if (AUDIT === 'off' && v.name.includes('audit on')) continue;
    const port = await freePort();
    const file = join(dir, `tg-${i}.yaml`);
    writeFileSync(file, stringify({ listen: `127.0.0.1:${port}`, store: { kind: 'file', path: join(dir, `data-${i}`) }, upstreams, default: 'lab', ...v.config }));
    const profDir = join(dir, `prof-${i}`);
    const base = `http://127.0.0.1:${port}`;
    const logFile = join(dir, `tg-${i}.log`);
    const tg = await spawnServer({
      cmd: process.execPath,
      args: bare
        ? ['--cpu-prof', '--cpu-prof-dir', profDir, '--import', 'tsx', v.main, join(dir, 'm'), img.mediaType, img.digest, String(port)]
        : ['--cpu-prof', '--cpu-prof-dir', profDir, v.main, 'start', '--config', file],
      logFile,
      ready: async () => (await fetch(`${base}/healthz`)).status === 200,
    });
    stops.push(() => tg.stop());
    const url = `${base}/v2/${REPO}/manifests/v1`;
    const warm = await request(url, { headers: { accept: img.mediaType } });
    await warm.body.dump();
    if (warm.statusCode !== 200) throw new Error(`warm-up: ${warm.statusCode}`);
    running.push({ i, v, url, profDir, logFile, stop: () => tg.stop(), windows: [], requests: 0, rps: [], p99: [], errors: 0, non2xx: 0 });
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < running.length; k++) {
      const x = running[(k + round) % running.length]!;
      const from = Number(process.hrtime.bigint() / 1000n);
      const r = METHOD === 'HEAD' ? await headLoad(x.url, 64, SECONDS / ROUNDS, { accept: img.mediaType }) : await getLoad(x.url, 64, SECONDS / ROUNDS, { accept: img.mediaType });
      x.windows.push({ from, to: Number(process.hrtime.bigint() / 1000n) });
      x.requests += r.requests;
      x.rps.push(Math.round(r.rps));
      x.p99.push(Math.round(r.p99 * 10) / 10);
      x.errors += r.errors;
      x.non2xx += r.non2xx;
    }
  }
  for (const x of running) {
    await x.stop(); // the profile is written at exit
    const auditLines = readFileSync(x.logFile, 'utf8').split('\n').filter((l) => l.includes('"audit":true')).length;
    console.log(`\n## ${METHOD} by tag, ${x.v.name}: req/s ${x.rps.join(', ')}, p99 ms ${x.p99.join(', ')}, errors ${x.errors}, non2xx ${x.non2xx}, audit lines on stdout ${auditLines}`);
    const prof = readdirSync(x.profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!prof) throw new Error('no .cpuprofile written');
    const profile = JSON.parse(readFileSync(join(x.profDir, prof), 'utf8')) as Profile;
    console.log(`server CPU per request during the load: ${busyMicrosPerRequest(profile, x.windows, x.requests).toFixed(1)} µs`);
    const all = selfTimes(profile, x.windows);
    for (const t of all.slice(0, Number(process.env.PROFILE_TOP ?? 25))) console.log(`${(t.share * 100).toFixed(1).padStart(5)}%  ${t.fn}`);
    // Self time spent producing log lines: pino and its redaction, our audit serialiser and writer, and
    // the fs write bindings (writeString/writeBuffer; the sockets use writev).
    const logging = all.filter((t) => /pino|observe\/log|line-writer|^writeString |^writeBuffer /.test(t.fn)).reduce((a, t) => a + t.share, 0);
    const busy = 1 - all.filter((t) => t.fn.startsWith('(idle)')).reduce((a, t) => a + t.share, 0);
    console.log(`logging: ${(logging * 100).toFixed(1)}% of samples, ${((logging / busy) * 100).toFixed(1)}% of busy time`);
    console.log(`busy time by category: ${Object.entries(byCategory(all)).map(([k, y]) => `${k} ${(y * 100).toFixed(1)}%`).join(', ')}`);
    if (KEEP) {
      mkdirSync(KEEP, { recursive: true });
      copyFileSync(join(x.profDir, prof), join(KEEP, `${METHOD}-${x.i}.cpuprofile`));
      writeFileSync(join(KEEP, `${METHOD}-${x.i}.windows.json`), JSON.stringify({ name: x.v.name, windows: x.windows, requests: x.requests }));
    }
  }
}

runBench(main, stops, dir);
