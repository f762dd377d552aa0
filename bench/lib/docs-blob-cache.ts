// Renders the blob cache figures of docs/benchmarks.md ("Blob cache (measured)", between
// `<!-- bench:blob-cache:start/end -->`) from one run
// of bench/blob-cache.bench.ts, with issue 15's goals checked against that same run.
import { readFileSync } from 'node:fs';
import type { BenchEnv } from './report.js';
import { BENCH_DOCS, replaceDocSection } from './docs-tables.js';

export interface BlobCacheResults {
  env: BenchEnv;
  sizeMiB: number;
  runs: number;
  load?: number[];
  fileToSocket: Array<{ method: string; MBps: number }>;
  rows: Array<{ path: string; MBps: number; xDirect: number; xProxyMode: number; serverCpuSecondsPerGiB: number }>;
  stampede: { clients: number; seconds: number; aggregateMBps: number; rssBeforeMiB: number; rssPeakMiB: number; rssGrowthMiB: number; upstreamGets: number };
  coldCost: Array<{ stage: string; MBps: number; cpuSecondsPerGiB: number }>;
}

const f = (n: number, d = 0) => n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });
const met = (ok: boolean) => (ok ? 'met' : '**not met**');

export function renderBlobCache(r: BlobCacheResults): string {
  const row = (prefix: string) => r.rows.find((x) => x.path.startsWith(prefix))!;
  const [warm, cold] = [row('trustgate warm'), row('trustgate cold')];
  const out: string[] = [];
  out.push(
    `Run ${r.env.date.slice(0, 10)}, commit ${r.env.commit}, Node ${r.env.node}, ${r.env.cpu} × ${r.env.cores}${r.load ? `, load average ${r.load.map((l) => f(l, 1)).join(' / ')} at the start` : ''}; \`npm run build && npm run bench:blob-cache\`, raw figures in bench/results/blob-cache.json. A ${r.sizeMiB} MiB layer, median of ${r.runs} rounds (every path once per round), curl as the client; "server CPU" is what the serving process (registry or trustgate, every thread) spent per GiB sent.`,
    '',
    '| layer via | MB/s | × direct | × proxy mode warm | server CPU s/GiB |',
    '|---|---:|---:|---:|---:|',
  );
  for (const x of r.rows) out.push(`| ${x.path} | ${f(x.MBps)} | ${f(x.xDirect, 2)} | ${f(x.xProxyMode, 2)} | ${f(x.serverCpuSecondsPerGiB, 2)} |`);
  const s = r.stampede;
  out.push(
    '',
    `${s.clients} concurrent cold pulls of one ${r.sizeMiB} MiB layer through a fresh trustgate: **${s.upstreamGets} upstream GET**, ${f(s.seconds, 1)} s, ${f(s.aggregateMBps)} MB/s in all, RSS ${f(s.rssBeforeMiB)} → peak ${f(s.rssPeakMiB)} MiB (+${f(s.rssGrowthMiB, 1)} MiB).`,
    '',
    'File → socket (servers in the bench process, curl as the client):',
    '',
    '| method | MB/s |',
    '|---|---:|',
  );
  for (const x of r.fileToSocket) out.push(`| ${x.method} | ${f(x.MBps)} |`);
  out.push('', 'Where a cold pull\'s CPU goes: the same upstream GET received in the bench process, one stage of the fill added per row:', '', '| stage | MB/s | CPU s/GiB |', '|---|---:|---:|');
  for (const x of r.coldCost) out.push(`| ${x.stage} | ${f(x.MBps)} | ${f(x.cpuSecondsPerGiB, 2)} |`);
  out.push(
    '',
    'Issue 15\'s goals in this run:',
    '',
    `- warm ≥ 1.2× distribution's proxy mode warm: ${f(warm.xProxyMode, 2)}× — ${met(warm.xProxyMode >= 1.2)}`,
    `- warm ≥ 0.7× direct: ${f(warm.xDirect, 2)}× — ${met(warm.xDirect >= 0.7)}`,
    `- cold ≥ 0.5× direct: ${f(cold.xDirect, 2)}× — ${met(cold.xDirect >= 0.5)}`,
    `- ${s.clients} concurrent cold pulls, one upstream GET, RSS growth < 64 MiB: ${s.upstreamGets} GET, +${f(s.rssGrowthMiB, 1)} MiB — ${met(s.upstreamGets === 1 && s.rssGrowthMiB < 64)}`,
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
