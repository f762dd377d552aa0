// Rewrites the generated benchmark sections (between their markers) from one run's results, so a
// table always shows figures measured together, as ratios first: every proxy table in
// docs/benchmarks.md ("Proxy benchmarks (measured)"), and README's headline table, a few key rows of
// the same run.
import { readFileSync, writeFileSync } from 'node:fs';
import { benchEnv, type BenchEnv } from './report.js';
import type { LoadResult } from './load.js';

interface Results {
  /** Interleaved passes per target; the table shows medians. */
  rounds?: number;
  manifests: Array<{ scenario: string; target: string } & LoadResult>;
  cold: Record<string, { medianMs: number; samplesMs?: number[] }>;
  stampede: { requests: number; ok: number; notaryRequests: number; registryManifestRequests: number };
  blobs: Array<{ sizeMiB: number; target: string; MBps: number; rssGrowthMiB?: number }>;
  mixed: { seconds: number; rps: number; p99: number; errors: number; unexpectedStatuses: number; rssStartMiB: number; rssEndMiB: number; rssSamplesMiB?: number[]; decisions?: number; auditLines?: number; serverDecisions?: number };
}

const f = (n: number, d = 0) => n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });

export function renderTables(r: Results, seconds: number, connections: number, manifestBytes: number, env: BenchEnv = benchEnv()): string {
  const out: string[] = [];
  out.push(`Run ${env.date.slice(0, 10)}, commit ${env.commit}, Node ${env.node}, ${env.cpu} × ${env.cores} (load generator, registries and proxies share these cores); \`npm run bench\`; raw figures in bench/results/proxy.json.`, '');
  out.push(`Warm manifests (${manifestBytes}-byte manifest, ${connections} connections, ${seconds} s each${r.rounds ? `, median of ${r.rounds} interleaved rounds` : ''}; HEAD with a raw-socket loop (autocannon 9 reports 0 req/s for HEAD), GET with autocannon):`, '');
  out.push(
    'trustgate rows run the default configuration (an audit line per decision, info log, stdout to a file) unless the row says otherwise; "audit off" = `log.level: warn` and `audit.path: /dev/null` (audit lines cannot be switched off).',
    '',
  );
  out.push('| scenario | target | req/s | p50 ms | p99 ms | × direct | × bare node | p99 × bare |', '|---|---|---:|---:|---:|---:|---:|---:|');
  for (const row of r.manifests) {
    const direct = r.manifests.find((x) => x.scenario === row.scenario && x.target === 'direct registry')!;
    const bare = r.manifests.find((x) => x.scenario === row.scenario && x.target === 'bare node:http')!;
    out.push(`| ${row.scenario} | ${row.target} | ${f(row.rps)} | ${f(row.p50, 1)} | ${f(row.p99, 1)} | ${f(row.rps / direct.rps, 2)} | ${f(row.rps / bare.rps, 2)} | ${f(row.p99 / bare.p99, 2)} |`);
  }
  const quiet = (scenario: string) => r.manifests.find((x) => x.scenario === scenario && x.target.includes('audit off'));
  const costs = r.manifests
    .filter((x) => x.target === 'trustgate (file store)' && quiet(x.scenario))
    .map((x) => `${x.scenario} ${f((1 - x.rps / quiet(x.scenario)!.rps) * 100)}%`);
  if (costs.length) out.push('', `Cost of the audit line (file store, audit on vs off, same run): ${costs.join(', ')}.`);
  out.push('', `Cold tag (never-seen GUN), median time to first byte of ${Object.values(r.cold)[0]?.samplesMs?.length ?? 5}:`, '', '| path | ms | × notary lookup (CLI) | × registry proxy mode |', '|---|---:|---:|---:|');
  const notaryMs = r.cold['notary lookup (CLI)']?.medianMs ?? NaN;
  const mirrorMs = r.cold['registry proxy mode']?.medianMs ?? NaN;
  for (const [k, v] of Object.entries(r.cold)) out.push(`| ${k} | ${f(v.medianMs, 1)} | ${f(v.medianMs / notaryMs, 2)} | ${f(v.medianMs / mirrorMs, 2)} |`);
  out.push('', `Stampede: ${r.stampede.requests} concurrent cold requests for one tag → ${r.stampede.ok} answered 200; the notary server logged ${r.stampede.notaryRequests} requests (one per role) and the registry ${r.stampede.registryManifestRequests} manifest request.`);
  out.push('', 'Blob streaming (one client, median of 3):', '', '| size | target | MB/s | × direct | × proxy mode | trustgate RSS growth |', '|---|---|---:|---:|---:|---:|');
  for (const row of r.blobs) {
    const direct = r.blobs.find((x) => x.sizeMiB === row.sizeMiB && x.target === 'direct registry')!;
    const mirror = r.blobs.find((x) => x.sizeMiB === row.sizeMiB && x.target.startsWith('registry proxy mode'))!;
    out.push(`| ${row.sizeMiB} MiB | ${row.target} | ${f(row.MBps)} | ${f(row.MBps / direct.MBps, 2)} | ${f(row.MBps / mirror.MBps, 2)} | ${row.rssGrowthMiB !== undefined ? `${f(row.rssGrowthMiB, 1)} MiB` : ''} |`);
  }
  const m = r.mixed;
  out.push('', `Mixed load for ${m.seconds} s (by tag, by digest, blobs, unsigned tags; 32 connections): ${f(m.rps)} req/s, p99 ${f(m.p99, 1)} ms, ${m.errors} errors, ${m.unexpectedStatuses} unexpected statuses (unsigned tags must be 403, the rest 200), RSS ${f(m.rssStartMiB)} → ${f(m.rssEndMiB)} MiB${m.rssSamplesMiB?.length ? ` (every 5 s: ${m.rssSamplesMiB.join(', ')})` : ''}${m.decisions !== undefined ? `; ${m.decisions} tag responses counted by the client, ${m.serverDecisions !== undefined ? `${m.serverDecisions} decisions counted by trustgate, ` : ''}${m.auditLines} audit lines` : ''}.`);
  return out.join('\n');
}

/** README's headline: warm tags through trustgate against the registry, its proxy mode and the floor. */
const HEADLINE_SCENARIOS = ['HEAD manifest by tag', 'GET manifest by tag'];
const HEADLINE_TARGETS = ['direct registry', 'registry proxy mode', 'bare node:http', 'trustgate (file store)', 'trustgate (redis store)'];

export function renderHeadline(r: Results, connections: number, env: BenchEnv = benchEnv()): string {
  const out: string[] = [];
  out.push(
    `Warm manifests by tag, ${connections} connections, run ${env.date.slice(0, 10)} (commit ${env.commit}, ${env.cpu} × ${env.cores}, shared with the load generator and the registries); trustgate in its default configuration, an audit line per decision:`,
    '',
    '| scenario | target | req/s | p99 ms | × direct | × bare node |',
    '|---|---|---:|---:|---:|---:|',
  );
  for (const scenario of HEADLINE_SCENARIOS) {
    const direct = r.manifests.find((x) => x.scenario === scenario && x.target === 'direct registry')!;
    const bare = r.manifests.find((x) => x.scenario === scenario && x.target === 'bare node:http')!;
    for (const target of HEADLINE_TARGETS) {
      const row = r.manifests.find((x) => x.scenario === scenario && x.target === target);
      if (row) out.push(`| ${scenario} | ${target} | ${f(row.rps)} | ${f(row.p99, 1)} | ${f(row.rps / direct.rps, 2)} | ${f(row.rps / bare.rps, 2)} |`);
    }
  }
  // The one headline table also carries the signature kinds (issue 25), from the last bench:kinds run:
  // its ratios are to the bare floor of that run; there was no direct registry in it.
  const kinds = savedKinds();
  if (kinds) {
    for (const method of ['HEAD', 'GET']) {
      const bare = kinds.rows.find((x) => x.method === method && x.target === 'bare node:http');
      for (const row of kinds.rows.filter((x) => x.method === method && x.target !== 'bare node:http' && x.target !== 'require: dct')) {
        if (bare) out.push(`| ${method} manifest by tag | trustgate, ${row.target} † | ${f(row.rps)} | ${f(row.p99, 1)} | | ${f(row.rps / bare.rps, 2)} |`);
      }
    }
    out.push('', `† \`npm run bench:kinds\`, run ${kinds.env?.date.slice(0, 10) ?? '?'} (commit ${kinds.env?.commit ?? '?'}): one image signed with DCT, cosign and Notation, one repository per \`require\` form, against a bare floor of the same run; the whole table, with × the DCT warm path and upstream requests per warm answer, is in [docs/benchmarks.md](docs/benchmarks.md#signature-kinds-warm-measured).`);
  }
  return out.join('\n');
}

/** The last bench:kinds results, if there are any. */
function savedKinds(): { rows: Array<{ method: string; target: string; rps: number; p99: number }>; env?: BenchEnv } | undefined {
  try {
    return JSON.parse(readFileSync(new URL('../results/signature-kinds.json', import.meta.url), 'utf8'));
  } catch {
    return undefined;
  }
}

/** README.md and docs/benchmarks.md, by default; tests pass copies. */
export const BENCH_DOCS = {
  readme: new URL('../../README.md', import.meta.url).pathname,
  benchmarks: new URL('../../docs/benchmarks.md', import.meta.url).pathname,
};

/** What stands between `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->` in `text`. */
export function docSection(text: string, name: string): string | undefined {
  const start = `<!-- bench:${name}:start -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(`<!-- bench:${name}:end -->`);
  return a < 0 || b < a ? undefined : text.slice(a + start.length + 1, b - 1);
}

/** Replace what stands between `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->` in `file`. */
export function replaceDocSection(file: string, name: string, body: string): void {
  const text = readFileSync(file, 'utf8');
  const start = `<!-- bench:${name}:start -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(`<!-- bench:${name}:end -->`);
  if (a < 0 || b < a) throw new Error(`${file} has no ${name} benchmark markers`);
  writeFileSync(file, text.slice(0, a + start.length) + '\n' + body + '\n' + text.slice(b));
}

export function updateBenchDocs(r: Results, seconds: number, connections: number, manifestBytes: number, env?: BenchEnv, files = BENCH_DOCS): void {
  replaceDocSection(files.benchmarks, 'proxy', renderTables(r, seconds, connections, manifestBytes, env));
  replaceDocSection(files.readme, 'proxy-headline', renderHeadline(r, connections, env));
}

// `tsx bench/lib/docs-tables.ts`: re-render both sections from the last bench/results/proxy.json.
if (import.meta.url === `file://${process.argv[1]}`) {
  const saved = JSON.parse(readFileSync(new URL('../results/proxy.json', import.meta.url), 'utf8'));
  updateBenchDocs(saved, saved.seconds, saved.connections, saved.manifestBytes, saved.env);
}
