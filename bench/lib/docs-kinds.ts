// The signature-kinds table (bench/signature-kinds.bench.ts) in README and docs/benchmarks.md, with the
// goals of issue 25 checked against the same run: every kind's warm answer ≥ 0.6× the bare floor and
// ≥ 0.9× the DCT warm path, and no upstream request per warm request.
import { readFileSync } from 'node:fs';
import { benchEnv, type BenchEnv } from './report.js';
import { BENCH_DOCS, renderHeadline, replaceDocSection } from './docs-tables.js';
import type { LoadResult } from './load.js';

export interface KindsResults {
  seconds: number;
  connections: number;
  rounds: number;
  manifestBytes: number;
  rows: Array<{ method: string; target: string; upstreamPerRequest?: number } & LoadResult>;
  env?: BenchEnv;
}

const f = (n: number, d = 0) => n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });

export function kindsGoals(r: KindsResults): Array<{ what: string; ok: boolean }> {
  const out: Array<{ what: string; ok: boolean }> = [];
  for (const method of ['HEAD', 'GET']) {
    const bare = r.rows.find((x) => x.method === method && x.target === 'bare node:http')!;
    const dct = r.rows.find((x) => x.method === method && x.target === 'require: dct')!;
    for (const row of r.rows.filter((x) => x.method === method && x.target !== 'bare node:http' && x.target !== 'require: dct')) {
      out.push({ what: `${method} ${row.target}: ${f(row.rps / bare.rps, 2)}× bare (goal ≥ 0.6)`, ok: row.rps / bare.rps >= 0.6 });
      out.push({ what: `${method} ${row.target}: ${f(row.rps / dct.rps, 2)}× DCT warm (goal ≥ 0.9)`, ok: row.rps / dct.rps >= 0.9 });
    }
    for (const row of r.rows.filter((x) => x.method === method && x.upstreamPerRequest !== undefined)) {
      out.push({ what: `${method} ${row.target}: ${f(row.upstreamPerRequest! * row.requests)} upstream requests for ${f(row.requests)} warm answers`, ok: row.errors === 0 && row.non2xx === 0 });
    }
  }
  return out;
}

export function renderKinds(r: KindsResults, env: BenchEnv = r.env ?? benchEnv()): string {
  const out: string[] = [
    `Warm manifests by tag under each signature kind: run ${env.date.slice(0, 10)}, commit ${env.commit}, ${env.cpu} × ${env.cores} (shared with the load generator and the registry); \`npm run bench:kinds\`, raw figures in bench/results/signature-kinds.json. One trustgate in the default configuration (an audit line per decision, info log, stdout to a file), one image signed with DCT, cosign and Notation, one repository per \`require\` form; ${r.connections} connections, ${r.seconds} s, median of ${r.rounds} interleaved rounds; upstream requests counted in the registry's log (the tag resolution is reused for \`cache.tagTtlSeconds\`, 10 s).`,
    '',
    '| method | require | req/s | p99 ms | × bare node | × DCT warm | upstream requests |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const method of ['HEAD', 'GET']) {
    const bare = r.rows.find((x) => x.method === method && x.target === 'bare node:http')!;
    const dct = r.rows.find((x) => x.method === method && x.target === 'require: dct')!;
    for (const row of r.rows.filter((x) => x.method === method)) {
      const up = row.upstreamPerRequest !== undefined ? `${f(row.upstreamPerRequest * row.requests)} / ${f(row.requests)}` : '';
      out.push(`| ${method} | ${row.target} | ${f(row.rps)} | ${f(row.p99, 1)} | ${f(row.rps / bare.rps, 2)} | ${row.target === 'bare node:http' ? '' : f(row.rps / dct.rps, 2)} | ${up} |`);
    }
  }
  const goals = kindsGoals(r);
  const missed = goals.filter((g) => !g.ok);
  out.push('', missed.length === 0 ? `Goals (issue 25), checked against this run: all ${goals.length} met.` : `Goals (issue 25), checked against this run: ${missed.length} of ${goals.length} missed: ${missed.map((g) => g.what).join('; ')}.`);
  return out.join('\n');
}

export function updateKindsDocs(r: KindsResults, files = BENCH_DOCS): Array<{ what: string; ok: boolean }> {
  const body = renderKinds(r);
  replaceDocSection(files.benchmarks, 'kinds', body);
  // README keeps one headline table: re-rendered from the last proxy run, which now reads these results too.
  const proxy = JSON.parse(readFileSync(new URL('../results/proxy.json', import.meta.url), 'utf8'));
  replaceDocSection(files.readme, 'proxy-headline', renderHeadline(proxy, proxy.connections, proxy.env));
  return kindsGoals(r);
}

// `tsx bench/lib/docs-kinds.ts`: re-render both sections from the last bench/results/signature-kinds.json.
if (import.meta.url === `file://${process.argv[1]}`) {
  updateKindsDocs(JSON.parse(readFileSync(new URL('../results/signature-kinds.json', import.meta.url), 'utf8')));
}
