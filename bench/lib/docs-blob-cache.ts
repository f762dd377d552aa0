// Renders the blob cache figures of docs/benchmarks.md ("Blob cache (measured)", between
// `<!-- bench:blob-cache:start/end -->`) from one run
// of bench/blob-cache.bench.ts, with issue 15's and issue 23's goals checked against that same run.
import { readFileSync } from 'node:fs';
import type { BenchEnv } from './report.js';
import { BENCH_DOCS, replaceDocSection } from './docs-tables.js';

interface Row {
  path: string;
  MBps: number;
  xDirect: number;
  /** × distribution's proxy mode first pull. */
  xProxyCold: number;
  xProxyMode: number;
  serverCpuSecondsPerGiB: number;
}

export interface BlobCacheResults {
  env: BenchEnv;
  sizeMiB: number;
  runs: number;
  load?: number[];
  fileToSocket: Array<{ method: string; MBps: number }>;
  /** Every layer size of the run (issue 23: 256 MiB and 1 GiB), each with its own interleaved rounds; the first is the stampede's. */
  sizes: Array<{ sizeMiB: number; rows: Row[] }>;
  stampede: { clients: number; seconds: number; aggregateMBps: number; rssBeforeMiB: number; rssPeakMiB: number; rssGrowthMiB: number; upstreamGets: number; copiesRight: number };
  coldCost: Array<{ stage: string; MBps: number; cpuSecondsPerGiB: number }>;
}

const f = (n: number, d = 0) => n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });
const met = (ok: boolean) => (ok ? 'met' : '**not met**');

export function renderBlobCache(r: BlobCacheResults): string {
  const sizes = r.sizes;
  const find = (rows: Row[], prefix: string) => rows.find((x) => x.path.startsWith(prefix));
  const warm = find(sizes[0]!.rows, 'trustgate warm')!;
  const out: string[] = [];
  out.push(
    `Run ${r.env.date.slice(0, 10)}, commit ${r.env.commit}, Node ${r.env.node}, ${r.env.cpu} × ${r.env.cores}${r.load ? `, load average ${r.load.map((l) => f(l, 1)).join(' / ')} at the start` : ''}; \`npm run build && npm run bench:blob-cache\`, raw figures in bench/results/blob-cache.json. ${sizes.map((s) => `${s.sizeMiB} MiB`).join(' and ')} layers, median of ${r.runs} rounds (every path once per round, the two first pulls taking turns going first), curl as the client; "server CPU" is what the serving process (registry or trustgate, every thread) spent per GiB sent. distribution 2.8's proxy mode sends its first client the upstream's bytes directly and stores the blob with a second upstream GET in the background: its CPU is counted until that blob is stored.`,
    '',
  );
  for (const s of sizes) {
    out.push(`| ${s.sizeMiB} MiB layer via | MB/s | × direct | × proxy mode first pull | × proxy mode warm | server CPU s/GiB |`, '|---|---:|---:|---:|---:|---:|');
    for (const x of s.rows) out.push(`| ${x.path} | ${f(x.MBps)} | ${f(x.xDirect, 2)} | ${f(x.xProxyCold, 2)} | ${f(x.xProxyMode, 2)} | ${f(x.serverCpuSecondsPerGiB, 2)} |`);
    out.push('');
  }
  const s = r.stampede;
  out.push(
    `${s.clients} concurrent cold pulls of one ${r.sizeMiB} MiB layer through a fresh trustgate: **${s.upstreamGets} upstream GET**, ${f(s.seconds, 1)} s, ${f(s.aggregateMBps)} MB/s in all, RSS ${f(s.rssBeforeMiB)} → peak ${f(s.rssPeakMiB)} MiB (+${f(s.rssGrowthMiB, 1)} MiB), ${s.copiesRight} of ${s.clients} copies hash to the digest (the client hashed each).`,
    '',
    'File → socket (servers in the bench process, curl as the client):',
    '',
    '| method | MB/s |',
    '|---|---:|',
  );
  for (const x of r.fileToSocket) out.push(`| ${x.method} | ${f(x.MBps)} |`);
  out.push('', 'Where a cold pull\'s CPU goes: the same upstream GET received in the bench process, one stage of the fill added per row:', '', '| stage | MB/s | CPU s/GiB |', '|---|---:|---:|');
  for (const x of r.coldCost) out.push(`| ${x.stage} | ${f(x.MBps)} | ${f(x.cpuSecondsPerGiB, 2)} |`);
  out.push('', 'Goals in this run (issue 15: warm; issue 23: the first pull, against distribution\'s proxy mode, whose first pull is a relay with the blob stored by a second upstream GET: see below):', '');
  for (const z of sizes) {
    const [c, p] = [find(z.rows, 'trustgate cold'), find(z.rows, 'distribution proxy mode, first')];
    if (!c || !p) continue;
    const cpuRatio = c.serverCpuSecondsPerGiB / p.serverCpuSecondsPerGiB;
    out.push(
      `- ${z.sizeMiB} MiB first pull ≥ 1.0× proxy mode's first pull: ${f(c.xProxyCold, 2)}× — ${met(c.xProxyCold >= 1.0)}`,
      `- ${z.sizeMiB} MiB first pull, trustgate's server CPU/GiB ≤ 1.2× proxy mode's: ${f(c.serverCpuSecondsPerGiB, 2)} / ${f(p.serverCpuSecondsPerGiB, 2)} = ${f(cpuRatio, 2)}× — ${met(cpuRatio <= 1.2)}`,
    );
  }
  out.push(
    `- warm ≥ 1.2× distribution's proxy mode warm: ${f(warm.xProxyMode, 2)}× — ${met(warm.xProxyMode >= 1.2)}`,
    `- warm ≥ 0.7× direct: ${f(warm.xDirect, 2)}× — ${met(warm.xDirect >= 0.7)}`,
    `- ${s.clients} concurrent cold pulls, one upstream GET, RSS growth < 64 MiB, every copy right: ${s.upstreamGets} GET, +${f(s.rssGrowthMiB, 1)} MiB, ${s.copiesRight}/${s.clients} right — ${met(s.upstreamGets === 1 && s.rssGrowthMiB < 64 && s.copiesRight === s.clients)}`,
  );
  return out.join('\n');
}

export function updateBenchDocsBlobCache(r: BlobCacheResults, file = BENCH_DOCS.benchmarks): void {
  replaceDocSection(file, 'blob-cache', renderBlobCache(r));
}

// `tsx bench/lib/docs-blob-cache.ts`: re-render the docs/benchmarks.md section from the last bench/results/blob-cache.json.
if (import.meta.url === `file://${process.argv[1]}`) {
  updateBenchDocsBlobCache(JSON.parse(readFileSync(new URL('../results/blob-cache.json', import.meta.url), 'utf8')) as BlobCacheResults);
}
