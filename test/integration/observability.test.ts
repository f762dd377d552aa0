// What operators watch (issue 24): a real Prometheus scrapes two running trustgates — one in front of
// a real docker-registry and notary-server, with a Notation-signed repository beside the DCT ones (plus
// an upstream that is down, with a freeze ahead and a cosign trusted root), one air-gapped on an
// imported trust bundle — while skopeo pulls signed and unsigned tags through them, cold and warm. Then every
// expression of deploy/grafana/trustgate.json and deploy/prometheus/trustgate-rules.yaml must return
// data through Prometheus' query API: a metric or label renamed in src/ fails here.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli, pushSignedImage } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage } from '../support/oci-image.js';
import { acmeNotation, makeCa } from '../support/notation-sign.js';
import { makePki } from '../support/pki.js';
import { dashboardExpressions, startPrometheus, substituteGrafanaVariables, withBool, type PrometheusLab } from '../support/prometheus.js';
import { freePort, stopAndRemove } from '../support/spawn-server.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DASHBOARD = join(ROOT, 'deploy/grafana/trustgate.json');
const RULES = join(ROOT, 'deploy/prometheus/trustgate-rules.yaml');
const REPO = 'obs/app';
/** Signed with Notation only (acme's CA, 30 days: its trust material alert is pending from the start). */
const NREPO = 'obs/notation';

let dir: string;
let registry: Registry;
let notary: NotaryLab;
let edge: Trustgate;
let site: Trustgate;
let prom: PrometheusLab;

/** A Sigstore trusted root with one Fulcio CA (the certificate in `certFile`) and no logs. */
function trustedRootWith(certFile: string): string {
  const start = new Date(Date.now() - 3600_000).toISOString();
  const rawBytes = Buffer.from(new X509Certificate(readFileSync(certFile)).raw).toString('base64');
  return JSON.stringify({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [],
    ctlogs: [],
    timestampAuthorities: [],
    certificateAuthorities: [{ subject: { organization: 'obs', commonName: 'fulcio' }, uri: 'https://fulcio.example', certChain: { certificates: [{ rawBytes }] }, validFor: { start } }],
  });
}

const pull = (host: string, ref: string, to: string) => run('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/${ref}`, `oci:${join(dir, to)}:x`]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-obs-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await pushSignedImage(cli, dir, registry.host, REPO, 'v1');
  await pushImage(dir, registry.host, REPO, 'unsigned');
  const acme = acmeNotation(dir);
  await acme.sign(registry.url, NREPO, await pushImage(dir, registry.host, NREPO, 'v1'));
  const gun = `${registry.host}/${REPO}`;
  const lab = { name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' };
  // The same registry as a Notation upstream of its own (path prefix /v2/signed/): its decisions do not
  // dilute the lab's refusal ratio the RefusalSpike check below expects.
  const signed = { name: 'signed', registry: registry.url, gun: registry.host.replace('127.0.0.1', 'localhost'), notation: { trustPolicy: acme.trustPolicy, trustStore: acme.trustStore }, policy: 'enforce', require: 'notation' };
  // An upstream whose registry and notary server are both down: 5xx answers and notary fetch errors.
  // Its freeze is far ahead (trustgate_trust_frozen 0); its cosign trusted root names a Fulcio CA
  // certificate that is valid for a year (trustgate_trust_material_expiry_seconds, kind cosign).
  const [deadRegistry, deadNotary] = [await freePort(), await freePort()];
  const fulcio = makeCa(dir, 'fulcio', { days: 365 });
  writeFileSync(join(dir, 'trusted_root.json'), trustedRootWith(fulcio.cert));
  const down = {
    name: 'down',
    registry: `http://127.0.0.1:${deadRegistry}`,
    gun: `127.0.0.1:${deadRegistry}`,
    notary: { url: `https://127.0.0.1:${deadNotary}`, timeoutMs: 2000, frozenAt: '2099-01-01T00:00:00Z' },
    cosign: { trustedRoot: join(dir, 'trusted_root.json'), identities: [{ issuer: 'https://issuer.example', subject: 'ci@example.com' }] },
    policy: 'enforce',
  };
  edge = await startTrustgate(dir, { upstreams: [lab, signed, down], default: 'lab' }, 'edge');

  // The air-gapped site: a bundle exported from the online side, imported into the site's store.
  const online = join(dir, 'online.yaml');
  writeFileSync(online, stringify({ upstreams: [lab], default: 'lab', store: { kind: 'file', path: join(dir, 'online-store') } }));
  const exp = await runCli(['bundle', 'export', '--out', join(dir, 'bundle.json'), '--progress', '--config', online, `${gun}:v1`]);
  expect(exp.code, exp.stdout).toBe(0);
  // --progress: the lines a long --list export writes on its own (stderr; stdout keeps its JSON line).
  expect(exp.stderr).toMatch(/^trustgate bundle export: 1\/1 references \(100%\), 1 repositories, writing \S+bundle\.json, \d+ s$/m);
  const siteConfig = { upstreams: [{ name: 'internal', registry: registry.url, gun: registry.host, bundle: true, policy: 'enforce' }], default: 'internal', store: { kind: 'file', path: join(dir, 'site-store') } };
  writeFileSync(join(dir, 'site.yaml'), stringify(siteConfig));
  const imp = await runCli(['bundle', 'import', join(dir, 'bundle.json'), '--config', join(dir, 'site.yaml')]);
  expect(imp.code, imp.stdout).toBe(0);
  site = await startTrustgate(dir, siteConfig, 'site');

  prom = await startPrometheus(dir, { targets: [edge.host, site.host], ruleFiles: [RULES] });
}, 180_000);

afterAll(async () => {
  await stopAndRemove(dir, prom, site, edge, notary, registry);
});

describe('observability against a live Prometheus scrape', () => {
  it('every dashboard and alert expression returns data after real pulls', async () => {
    // Traffic: signed pulls (the second from the blob cache), an unsigned one refused, the same
    // through the bundle-backed site, the down upstream, and readiness probes as kubelet sends them.
    // Twice, a few scrapes apart: a counter's rate is above zero only if it grew between two scrapes.
    const traffic = async (round: number) => {
      await pull(edge.host, `${REPO}:v1`, `a${round}`);
      await pull(edge.host, `${REPO}:v1`, `b${round}`);
      // Notation: the first pull decides in full (cold), the second replays the verified answer (warm).
      await pull(edge.host, `signed/${NREPO}:v1`, `n${round}`);
      await pull(edge.host, `signed/${NREPO}:v1`, `m${round}`);
      await expect(pull(edge.host, `${REPO}:unsigned`, `c${round}`)).rejects.toThrow(/denied|403|TAG_NOT_SIGNED/i);
      await pull(site.host, `${REPO}:v1`, `d${round}`);
      await expect(pull(site.host, `${REPO}:unsigned`, `e${round}`)).rejects.toThrow();
      for (let i = 0; i < 3; i++) expect((await fetch(`${edge.url}/v2/down/x/app/manifests/v${round}`)).status).toBeGreaterThanOrEqual(500);
      for (const t of [edge, site]) for (let i = 0; i < 3; i++) expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    };
    // Prometheus sends its first scrapes a few seconds after start (target discovery): wait for them,
    // so the first round of counters is seen before the second adds to it.
    const deadline = Date.now() + 60_000;
    while ((await prom.query('sum(up{job="trustgate"})')).data?.result[0]?.value[1] !== '2') {
      if (Date.now() > deadline) throw new Error('Prometheus has not scraped both trustgates within 60 s');
      await sleep(500);
    }
    await traffic(1);
    await sleep(3000);
    await traffic(2);

    await sleep(4000);

    const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }).groups.flatMap((g) => g.rules);
    const exprs = [
      ...dashboardExpressions(DASHBOARD).map((e) => ({ where: `dashboard ${e.where}`, expr: substituteGrafanaVariables(e.expr) })),
      ...rules.map((r) => ({ where: `alert ${r.alert}`, expr: withBool(r.expr) })),
    ];
    expect(exprs.length).toBeGreaterThan(30);
    const empty: string[] = [];
    for (const { where, expr } of exprs) {
      const r = await prom.query(expr);
      if (r.status !== 'success') empty.push(`${where}: ${r.error} — ${expr}`);
      else if (r.data!.result.length === 0) empty.push(`${where}: no data — ${expr}`);
    }
    expect(empty).toEqual([]);
  }, 240_000);

  it('Prometheus loaded every rule and evaluates each without error', async () => {
    const body = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
    const loaded = body.data.groups.flatMap((g) => g.rules);
    const inFile = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> }).groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(loaded.map((r) => r.name).sort()).toEqual([...inFile].sort());
    expect(loaded.filter((r) => r.health !== 'ok')).toEqual([]);
  });

  it('the alert signals see what happened: the down upstream and the refusals have non-zero values', async () => {
    const value = async (expr: string, match: Record<string, string>) => {
      const r = await prom.query(expr);
      const s = r.data?.result.find((x) => Object.entries(match).every(([k, v]) => x.metric[k] === v));
      return s ? Number(s.value[1]) : undefined;
    };
    const rule = (name: string) => (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }).groups.flatMap((g) => g.rules).find((r) => r.alert === name)!.expr;
    // The signal (the left-hand side) of each ratio alert, over the whole test rather than 5 minutes.
    const lhs = (name: string) => rule(name).replace(/\s*>\s*[\d.e+]+$/, '');
    const fetches = JSON.stringify((await prom.query('trustgate_notary_fetches_total')).data?.result.map((x) => [x.metric, x.value[1]]));
    const r5 = JSON.stringify((await prom.query('trustgate_http_requests_total{route="manifest"}')).data?.result.map((x) => [x.metric, x.value[1]]));
    expect(await value(lhs('TrustgateNotaryErrors'), { instance: edge.host }), fetches + r5).toBeGreaterThan(0);
    expect(await value(lhs('TrustgateNotaryErrors'), { instance: site.host })).toBeUndefined(); // no notary there at all
    expect(await value(lhs('TrustgateUpstreamErrors'), { instance: edge.host })).toBeGreaterThan(0);
    expect(await value(lhs('TrustgateUpstreamErrors'), { instance: site.host })).toBe(0);
    expect(await value(lhs('TrustgateRefusalSpike'), { instance: edge.host, code: 'TAG_NOT_SIGNED', upstream: 'lab' })).toBeGreaterThan(0);
    expect(await value(lhs('TrustgateNotReady'), { instance: edge.host })).toBe(0);
    expect(await value('min by (instance, gun) (trustgate_bundle_expiry_seconds)', { instance: site.host })).toBeGreaterThan(86_400);
    // Decisions by kind: DCT on obs/app, Notation on signed/obs/notation, refusals under the DCT requirement.
    const byKind = 'sum by (instance, upstream, decision, kind) (trustgate_trust_decisions_by_kind_total)';
    expect(await value(byKind, { instance: edge.host, upstream: 'lab', decision: 'allow', kind: 'dct' })).toBeGreaterThanOrEqual(4);
    expect(await value(byKind, { instance: edge.host, upstream: 'signed', decision: 'allow', kind: 'notation' })).toBeGreaterThanOrEqual(4);
    expect(await value(byKind, { instance: edge.host, upstream: 'lab', decision: 'deny', kind: 'dct' })).toBeGreaterThanOrEqual(2);
    expect(await value(byKind, { instance: site.host, upstream: 'internal', decision: 'allow', kind: 'dct' })).toBeGreaterThanOrEqual(2);
    // Warm and cold answers were both timed; the warm ones under 100 ms each (a loaded machine leaves room).
    const answers = 'sum by (instance, path) (trustgate_manifest_answer_duration_seconds_count)';
    expect(await value(answers, { instance: edge.host, path: 'cold' })).toBeGreaterThanOrEqual(2);
    expect(await value(answers, { instance: edge.host, path: 'warm' })).toBeGreaterThanOrEqual(2);
    const warmSlow = await value('sum by (instance) (trustgate_manifest_answer_duration_seconds_count{path="warm"}) - sum by (instance) (trustgate_manifest_answer_duration_seconds_bucket{path="warm",le="0.1"})', { instance: edge.host });
    expect(warmSlow).toBe(0);
    // DCT trust data just fetched: younger than the cache period, far from expiry (the lab's roles last years).
    const age = await value('max by (instance, upstream) (trustgate_trust_data_age_seconds)', { instance: edge.host, upstream: 'lab' });
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(300);
    expect(await value('min by (instance, upstream) (trustgate_trust_data_expiry_seconds)', { instance: edge.host, upstream: 'lab' })).toBeGreaterThan(30 * 86_400);
    expect(await value('min by (instance, upstream) (trustgate_trust_data_expiry_seconds)', { instance: site.host, upstream: 'internal' })).toBeGreaterThan(30 * 86_400);
    // Trust material: acme's CA (30 days) in the Notation trust store, the Fulcio CA (365 days) of the cosign root.
    const material = 'min by (instance, upstream, kind) (trustgate_trust_material_expiry_seconds)';
    const notation = await value(material, { instance: edge.host, upstream: 'signed', kind: 'notation' });
    expect(notation).toBeGreaterThan(29 * 86_400);
    expect(notation).toBeLessThanOrEqual(30 * 86_400);
    expect(await value(material, { instance: edge.host, upstream: 'down', kind: 'cosign' })).toBeGreaterThan(364 * 86_400);
    const names = (await prom.query('trustgate_trust_material_expiry_seconds')).data!.result.map((x) => x.metric.name);
    expect(names).toEqual(expect.arrayContaining([expect.stringMatching(/^ca:acme\/acme Root [0-9A-F]+$/), expect.stringMatching(/^fulcio\/fulcio Root [0-9A-F]+$/)]));
    // The Notation proof in use ends with the builder's leaf certificate (10 days, under acme's 30-day CA).
    const signature = await value('min by (instance, upstream, kind) (trustgate_signature_expiry_seconds)', { instance: edge.host, upstream: 'signed', kind: 'notation' });
    expect(signature).toBeGreaterThan(9 * 86_400);
    expect(signature).toBeLessThanOrEqual(10 * 86_400);
    expect(await value('max by (instance, upstream) (trustgate_trust_frozen)', { instance: edge.host, upstream: 'down' })).toBe(0);
    expect(await value('max by (instance) (trustgate_audit_backlog_bytes)', { instance: edge.host })).toBe(0);
    expect(await value('min by (instance) (trustgate_blobcache_filling)', { instance: edge.host })).toBe(1);
  });

  it('Prometheus itself takes the alerts whose condition the traffic met to pending, for the right target', async () => {
    type Alert = { labels: Record<string, string>; state: string };
    const want = [
      { alertname: 'TrustgateNotaryErrors', instance: edge.host },
      { alertname: 'TrustgateUpstreamErrors', instance: edge.host },
      { alertname: 'TrustgateRefusalSpike', instance: edge.host, upstream: 'lab', code: 'TAG_NOT_SIGNED' },
      { alertname: 'TrustgateRefusalSpike', instance: edge.host, upstream: 'down', code: 'NOTARY_UNAVAILABLE' },
      { alertname: 'TrustgateRefusalSpike', instance: site.host, upstream: 'internal', code: 'TAG_NOT_SIGNED' }, // half its pulls were unsigned
      { alertname: 'TrustgateTrustMaterialExpiringSoon', instance: edge.host, upstream: 'signed', kind: 'notation' }, // acme's CA: 30 days
    ];
    let alerts: Alert[] = [];
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(500)) {
      alerts = ((await (await fetch(`${prom.url}/api/v1/alerts`)).json()) as { data: { alerts: Alert[] } }).data.alerts;
      if (want.every((w) => alerts.some((a) => Object.entries(w).every(([k, v]) => a.labels[k] === v)))) break;
    }
    for (const w of want) expect(alerts.find((a) => Object.entries(w).every(([k, v]) => a.labels[k] === v))?.state, JSON.stringify(w)).toBe('pending');
    // The bundle-backed site has no notary, no upstream errors and a bundle far from expiry: only its
    // refusals. Nothing is firing yet: every alert with a condition met has a `for:` of minutes.
    expect(alerts.filter((a) => a.labels.instance === site.host).map((a) => `${a.labels.alertname} ${a.labels.code}`)).toEqual(['TrustgateRefusalSpike TAG_NOT_SIGNED']);
    expect(alerts.filter((a) => a.state === 'firing').map((a) => a.labels.alertname)).toEqual([]);
  });
});
