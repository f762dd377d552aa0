// A real Prometheus (Debian's `prometheus` package) for a test: its own config, storage in the test's
// temp dir, 127.0.0.1 on a free port, stopped by its pid. Plus what the observability test needs to
// ask it: instant queries, the rule list, and the expressions of the dashboard and the rule files.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, spawnServer, type RunningServer } from './spawn-server.js';

export interface PrometheusLab extends RunningServer {
  url: string;
  query(expr: string): Promise<{ status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } }>;
}

export async function startPrometheus(dir: string, opts: { targets: string[]; ruleFiles: string[]; intervalSeconds?: number }): Promise<PrometheusLab> {
  const port = await freePort();
  const every = `${opts.intervalSeconds ?? 1}s`;
  const file = join(dir, `prometheus-${port}.yml`);
  writeFileSync(
    file,
    stringify({
      global: { scrape_interval: every, evaluation_interval: every, scrape_timeout: every },
      rule_files: opts.ruleFiles,
      scrape_configs: [{ job_name: 'trustgate', static_configs: [{ targets: opts.targets }] }],
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const srv = await spawnServer({
    cmd: 'prometheus',
    args: [`--config.file=${file}`, `--storage.tsdb.path=${join(dir, `prometheus-${port}-data`)}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    logFile: join(dir, `prometheus-${port}.log`),
    ready: async () => (await fetch(`${url}/-/ready`)).status === 200,
    timeoutMs: 30_000,
  });
  return {
    ...srv,
    url,
    query: async (expr) => (await (await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as Awaited<ReturnType<PrometheusLab['query']>>,
  };
}

/**
 * An alert expression made to always have a value where its series exist: every comparison outside
 * label matchers gets `bool` (`x > 5` → `x > bool 5`, 0 or 1 instead of filtering). An expression
 * whose metrics or labels do not exist stays empty — that is what the live test looks for.
 */
export function withBool(expr: string): string {
  let out = '';
  let braces = 0;
  let quote: string | undefined;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (quote) {
      out += c;
      if (c === '\\') out += expr[++i] ?? '';
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') quote = c;
    else if (c === '{') braces++;
    else if (c === '}') braces--;
    const op = braces === 0 ? /^(==|!=|>=|<=|>|<)/.exec(expr.slice(i))?.[1] : undefined;
    if (op) {
      out += `${op} bool`;
      i += op.length - 1;
      continue;
    }
    out += c;
  }
  return out;
}

/** Every Prometheus expression in a Grafana dashboard: panel targets (rows' panels too) and query variables. */
export function dashboardExpressions(file: string): Array<{ where: string; expr: string }> {
  const d = JSON.parse(readFileSync(file, 'utf8')) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string; refId: string }>; panels?: unknown[] }>;
    templating: { list: Array<{ name: string; type: string; query?: { query: string } | string }> };
  };
  const out: Array<{ where: string; expr: string }> = [];
  const walk = (panels: typeof d.panels) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
      if (p.panels) walk(p.panels as typeof d.panels);
    }
  };
  walk(d.panels);
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query ?? '';
    // label_values(metric, label): the variable is empty unless the metric has series.
    const m = /^label_values\((.+),\s*\w+\)$/.exec(q);
    out.push({ where: `variable $${v.name}`, expr: m ? m[1]! : q });
  }
  return out;
}

/** Grafana's variables as a Prometheus instant query can take them. */
export function substituteGrafanaVariables(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h').replaceAll('$__interval', '15s').replaceAll('$instance', '.*');
}
