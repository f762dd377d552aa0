// deploy/prometheus/trustgate-rules.yaml (issue 24): the rules load in promtool, every alert carries severity,
// summary, description and a runbook, and each one fires (and only then) on synthetic series, checked
// by `promtool test rules`. The live-scrape side is test/integration/observability.test.ts.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const MAIN = join(ROOT, 'deploy/prometheus/trustgate-rules.yaml');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rulesOf = (file: string): Rule[] => (parse(readFileSync(file, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);

const I = 'job="trustgate",instance="a:5050"';
const J = { job: 'trustgate', instance: 'a:5050' };
interface Case {
  alert: string;
  series: Array<[string, string]>;
  at: string;
  /** Labels of the alerts expected at `at` (besides alertname and severity); [] = must not fire. */
  fires: Array<Record<string, string>>;
}
const CASES: Case[] = [
  { alert: 'TrustgateDown', series: [[`up{${I}}`, '1 1 0x8']], at: '6m', fires: [J] },
  { alert: 'TrustgateDown', series: [[`up{${I}}`, '1 1 0x8']], at: '3m', fires: [] }, // not for 2m yet
  {
    alert: 'TrustgateNotReady',
    series: [
      [`trustgate_http_requests_total{${I},route="ready",method="GET",status="200"}`, '0+6x30'],
      [`trustgate_http_requests_total{${I},route="ready",method="GET",status="503"}`, '0x10 0+12x20'],
      ['trustgate_http_requests_total{job="trustgate",instance="b:5050",route="ready",method="GET",status="200"}', '0+6x30'],
    ],
    at: '25m',
    fires: [J],
  },
  {
    alert: 'TrustgateRefusalSpike',
    series: [
      [`trustgate_trust_decisions_total{${I},upstream="hub",decision="allow",code="OK"}`, '0+60x30'],
      [`trustgate_trust_decisions_total{${I},upstream="hub",decision="deny",code="TAG_NOT_SIGNED"}`, '0+30x30'],
      [`trustgate_trust_decisions_total{${I},upstream="hub",decision="deny",code="EXPIRED"}`, '0+1x30'],
    ],
    at: '25m',
    fires: [{ ...J, upstream: 'hub', code: 'TAG_NOT_SIGNED' }],
  },
  {
    alert: 'TrustgateUpstreamErrors',
    series: [
      [`trustgate_http_requests_total{${I},route="manifest",method="GET",status="200"}`, '0+100x30'],
      [`trustgate_http_requests_total{${I},route="manifest",method="GET",status="502"}`, '0+10x30'],
      ['trustgate_http_requests_total{job="trustgate",instance="b:5050",route="blob",method="GET",status="200"}', '0+100x30'],
    ],
    at: '20m',
    fires: [J],
  },
  {
    alert: 'TrustgateNotaryErrors',
    series: [
      [`trustgate_notary_fetches_total{${I},role="timestamp",result="ok"}`, '0+50x30'],
      [`trustgate_notary_fetches_total{${I},role="timestamp",result="NOTARY_UNAVAILABLE"}`, '0+10x30'],
      ['trustgate_notary_fetches_total{job="trustgate",instance="b:5050",role="timestamp",result="ok"}', '0+50x30'],
      ['trustgate_notary_fetches_total{job="trustgate",instance="b:5050",role="targets",result="not_found"}', '0+50x30'],
    ],
    at: '20m',
    fires: [J],
  },
  {
    alert: 'TrustgateUpstreamSlow',
    series: [
      [`trustgate_upstream_request_duration_seconds_bucket{${I},upstream="hub",kind="manifest",le="1"}`, '0x40'],
      [`trustgate_upstream_request_duration_seconds_bucket{${I},upstream="hub",kind="manifest",le="5"}`, '0x40'],
      [`trustgate_upstream_request_duration_seconds_bucket{${I},upstream="hub",kind="manifest",le="10"}`, '0+10x40'],
      [`trustgate_upstream_request_duration_seconds_bucket{${I},upstream="hub",kind="manifest",le="+Inf"}`, '0+10x40'],
      [`trustgate_upstream_request_duration_seconds_bucket{${I},upstream="lab",kind="manifest",le="1"}`, '0+10x40'],
      [`trustgate_upstream_request_duration_seconds_bucket{${I},upstream="lab",kind="manifest",le="+Inf"}`, '0+10x40'],
    ],
    at: '30m',
    fires: [{ ...J, upstream: 'hub' }],
  },
  {
    alert: 'TrustgateBundleExpiringSoon',
    series: [
      [`trustgate_bundle_expiry_seconds{${I},gun="h/near"}`, '259200-60x30'],
      [`trustgate_bundle_expiry_seconds{${I},gun="h/far"}`, '2592000-60x30'],
    ],
    at: '20m',
    fires: [{ ...J, gun: 'h/near' }],
  },
  { alert: 'TrustgateBundleExpired', series: [[`trustgate_bundle_expiry_seconds{${I},gun="h/old"}`, '-10-60x5'], [`trustgate_bundle_expiry_seconds{${I},gun="h/new"}`, '86400x5']], at: '1m', fires: [{ ...J, gun: 'h/old' }] },
  { alert: 'TrustgateStoreDegraded', series: [[`trustgate_store_up{${I}}`, '1 1 0x10']], at: '6m', fires: [J] },
  { alert: 'TrustgateStoreDegraded', series: [[`trustgate_store_up{${I}}`, '1x10']], at: '6m', fires: [] },
  {
    alert: 'TrustgateStoreErrors',
    series: [
      [`trustgate_store_operations_total{${I},layer="redis",result="error"}`, '0+120x20'],
      [`trustgate_store_operations_total{${I},layer="redis",result="hit"}`, '0+600x20'],
      [`trustgate_store_operations_total{${I},layer="memory",result="hit"}`, '0+600x20'],
    ],
    at: '15m',
    fires: [{ ...J, layer: 'redis' }],
  },
  {
    alert: 'TrustgateBlobCacheThrashing',
    series: [
      [`trustgate_blobcache_evictions_total{${I}}`, '0+60x80'],
      [`trustgate_blobcache_hits_total{${I}}`, '0+30x80'],
      [`trustgate_blobcache_misses_total{${I}}`, '0+30x80'],
      ['trustgate_blobcache_evictions_total{job="trustgate",instance="b:5050"}', '0x80'],
      ['trustgate_blobcache_hits_total{job="trustgate",instance="b:5050"}', '0+30x80'],
      ['trustgate_blobcache_misses_total{job="trustgate",instance="b:5050"}', '0+30x80'],
    ],
    at: '70m',
    fires: [J],
  },
  // Audit, blob cache free space, frozen trust, trust data and trust material.
  { alert: 'TrustgateAuditBacklog', series: [[`trustgate_audit_backlog_bytes{${I}}`, '10000000x10'], ['trustgate_audit_backlog_bytes{job="trustgate",instance="b:5050"}', '1000x10']], at: '6m', fires: [J] },
  { alert: 'TrustgateAuditDroppingLines', series: [[`trustgate_audit_dropped_lines_total{${I}}`, '0+5x10'], ['trustgate_audit_dropped_lines_total{job="trustgate",instance="b:5050"}', '0x10']], at: '5m', fires: [J] },
  {
    alert: 'TrustgateAuditUnavailable',
    series: [
      [`trustgate_http_requests_total{${I},route="manifest",method="GET",status="503"}`, '0+5x10'],
      [`trustgate_audit_backlog_bytes{${I}}`, '4194304x10'],
      // b: 503s from a notary outage, nothing backed up; c: backlog draining, no refusals.
      ['trustgate_http_requests_total{job="trustgate",instance="b:5050",route="manifest",method="GET",status="503"}', '0+5x10'],
      ['trustgate_audit_backlog_bytes{job="trustgate",instance="b:5050"}', '0x10'],
      ['trustgate_http_requests_total{job="trustgate",instance="c:5050",route="manifest",method="GET",status="200"}', '0+5x10'],
      ['trustgate_audit_backlog_bytes{job="trustgate",instance="c:5050"}', '4096x10'],
    ],
    at: '5m',
    fires: [J],
  },
  { alert: 'TrustgateBlobCacheLowFreeSpace', series: [[`trustgate_blobcache_free_bytes{${I}}`, '1000000000x15'], ['trustgate_blobcache_free_bytes{job="trustgate",instance="b:5050"}', '50000000000x15']], at: '12m', fires: [J] },
  { alert: 'TrustgateBlobCacheFillingStopped', series: [[`trustgate_blobcache_filling{${I}}`, '0x15'], ['trustgate_blobcache_filling{job="trustgate",instance="b:5050"}', '1x15']], at: '12m', fires: [J] },
  { alert: 'TrustgateTrustFrozen', series: [[`trustgate_trust_frozen{${I},upstream="hub"}`, '1x5'], [`trustgate_trust_frozen{${I},upstream="lab"}`, '0x5']], at: '2m', fires: [{ ...J, upstream: 'hub' }] },
  {
    alert: 'TrustgateTrustMaterialExpiringSoon',
    series: [
      [`trustgate_trust_material_expiry_seconds{${I},upstream="acr",kind="notation",name="ca:wabbit-networks.io"}`, '864000x70'],
      [`trustgate_trust_material_expiry_seconds{${I},upstream="ghcr",kind="cosign",name="cosign.pub"}`, '31536000x70'],
    ],
    at: '65m',
    fires: [{ ...J, upstream: 'acr', kind: 'notation', name: 'ca:wabbit-networks.io' }],
  },
  {
    alert: 'TrustgateTrustMaterialExpired',
    series: [
      [`trustgate_trust_material_expiry_seconds{${I},upstream="acr",kind="notation",name="ca:wabbit/old 01"}`, '120-60x5'],
      [`trustgate_trust_material_expiry_seconds{${I},upstream="ghcr",kind="cosign",name="fulcio/sigstore 02"}`, '864000x5'],
    ],
    at: '3m',
    fires: [{ ...J, upstream: 'acr', kind: 'notation', name: 'ca:wabbit/old 01' }],
  },
  { alert: 'TrustgateTrustMaterialExpired', series: [[`trustgate_trust_material_expiry_seconds{${I},upstream="acr",kind="notation",name="ca:wabbit/old 01"}`, '120-60x5']], at: '1m', fires: [] }, // 60 s left
  {
    alert: 'TrustgateTrustDataExpiringSoon',
    series: [
      // Frozen data near its targets expiry, in use only now and then: gaps (_) do not reset the alert.
      [`trustgate_trust_data_expiry_seconds{${I},upstream="hub"}`, '259200 _ _ 259020 _ _ 258840 _ _ 258660 _ _ 258480 _ _ 258300 _ _ 258120 _ _ 257940 _ _'],
      [`trustgate_trust_data_expiry_seconds{${I},upstream="lab"}`, '31536000x24'],
    ],
    at: '20m',
    fires: [{ ...J, upstream: 'hub' }],
  },
  {
    alert: 'TrustgateSignatureExpiringSoon',
    series: [
      [`trustgate_signature_expiry_seconds{${I},upstream="acr",kind="notation"}`, '432000-60x30'],
      [`trustgate_signature_expiry_seconds{${I},upstream="ghcr",kind="cosign"}`, '2592000-60x30'],
    ],
    at: '20m',
    fires: [{ ...J, upstream: 'acr', kind: 'notation' }],
  },
  {
    alert: 'TrustgateTrustDataStale',
    series: [
      // lab: notary gone at 5m, stale-if-error data ages; hub: fresh, within the 300 s cache period.
      [`trustgate_trust_data_age_seconds{${I},upstream="lab"}`, '100 200 300 0 60 3300+60x30'],
      [`trustgate_trust_data_age_seconds{${I},upstream="hub"}`, '0+10x30 0+10x5'],
    ],
    at: '30m',
    fires: [{ ...J, upstream: 'lab' }],
  },
  { alert: 'TrustgateTrustDataStale', series: [[`trustgate_trust_data_age_seconds{${I},upstream="lab"}`, '3300+60x30']], at: '12m', fires: [] }, // over an hour for 8 minutes only
];

/** The annotations promtool will render: {{ $labels.x }} replaced (the rules use nothing else). */
function rendered(rule: Rule, labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(rule.annotations ?? {}).map(([k, v]) => [k, v.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, l: string) => labels[l] ?? '')]));
}

let dir: string | undefined;
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('deploy/prometheus rules', () => {
  const all = rulesOf(MAIN);

  it('promtool check rules accepts the file', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', MAIN]);
    expect(stdout).toContain(`SUCCESS: ${all.length} rules found`);
  });

  it('covers what issue 24 asks for, and every alert has a severity, summary, description and runbook', () => {
    expect(all.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'TrustgateBundleExpiringSoon', 'TrustgateTrustDataExpiringSoon', 'TrustgateTrustFrozen', 'TrustgateRefusalSpike', 'TrustgateUpstreamErrors', 'TrustgateNotaryErrors',
        'TrustgateAuditBacklog', 'TrustgateAuditUnavailable', 'TrustgateBlobCacheLowFreeSpace', 'TrustgateBlobCacheFillingStopped', 'TrustgateStoreDegraded', 'TrustgateNotReady',
        'TrustgateTrustMaterialExpiringSoon', 'TrustgateTrustMaterialExpired', 'TrustgateSignatureExpiringSoon',
      ]),
    );
    for (const r of all) {
      expect(r.alert, JSON.stringify(r)).toMatch(/^Trustgate[A-Za-z]+$/);
      expect(['critical', 'warning', 'info'], r.alert).toContain(r.labels?.severity);
      for (const a of ['summary', 'description', 'runbook']) expect(r.annotations?.[a]?.length ?? 0, `${r.alert} ${a}`).toBeGreaterThan(20);
      expect(JSON.stringify(r.annotations), `${r.alert}: annotations use $labels only`).not.toContain('$value');
    }
    expect(new Set(all.map((r) => r.alert)).size).toBe(all.length);
  });

  it('uses only metric names the source registers', () => {
    const names = new Set<string>();
    const walk = (d: string): void => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) for (const m of readFileSync(p, 'utf8').matchAll(/name: '(trustgate_[a-z_]+)'/g)) names.add(m[1]!);
      }
    };
    walk(join(ROOT, 'src'));
    expect(names.size).toBeGreaterThan(10);
    const used = (rules: Rule[]) => new Set(rules.flatMap((r) => [...r.expr.matchAll(/\btrustgate_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, ''))));
    for (const n of used(all)) expect(names, n).toContain(n);
  });

  it('every alert fires on the series it is about and stays quiet on the others (promtool test rules)', async () => {
    for (const r of all) expect(CASES.some((c) => c.alert === r.alert && c.fires.length > 0), `a firing case for ${r.alert}`).toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'tg-promtool-'));
    const byName = new Map(all.map((r) => [r.alert!, r]));
    const tests = CASES.map((c) => ({
      interval: '1m',
      input_series: c.series.map(([series, values]) => ({ series, values })),
      alert_rule_test: [
        {
          eval_time: c.at,
          alertname: c.alert,
          exp_alerts: c.fires.map((l) => {
            const labels = { ...l, severity: byName.get(c.alert)!.labels!.severity! };
            return { exp_labels: labels, exp_annotations: rendered(byName.get(c.alert)!, labels) };
          }),
        },
      ],
    }));
    const file = join(dir, 'rules.test.yaml');
    writeFileSync(file, stringify({ rule_files: [MAIN], evaluation_interval: '1m', tests }));
    const r = await run('promtool', ['test', 'rules', file]).then(
      (x) => ({ code: 0, out: x.stdout + x.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout}${e.stderr}` }),
    );
    expect(r.out).toContain('SUCCESS');
    expect(r.code, r.out).toBe(0);
  });
});
