// The metrics issue 24's alerts and dashboard panels read (names fixed, deploy/prometheus and
// deploy/grafana use them): answer time by path, decisions by signature kind, DCT trust data age and
// expiry, and the notAfter of Notation and cosign certificates. Scraped from a Metrics registry.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { audit, auditPrepared, PreparedAudit, signatureKindOf, type AuditRecord, type AuditSinks } from '../../../src/observe/logger.js';
import { certificateLabel, Metrics } from '../../../src/observe/metrics.js';
import { trustedRootCertificates } from '../../../src/signatures/cosign/load-trust.js';
import { TrustClient, type MetadataFetcher } from '../../../src/signatures/dct/client.js';
import { MemoryTrustState } from '../../../src/signatures/dct/state/memory-state.js';
import { TrustService } from '../../../src/signatures/dct/trust-service.js';
import { CachedProver } from '../../../src/signatures/verdicts.js';
import { fail } from '../../../src/errors.js';
import type { DigestProver } from '../../../src/signatures/port.js';
import { makeCa, makeIntermediate } from '../../support/notation-sign.js';

/** Every sample of `name` as [labels, value]. */
function samples(text: string, name: string): Array<[Record<string, string>, number]> {
  const out: Array<[Record<string, string>, number]> = [];
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m?.[1] !== name) continue;
    out.push([Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!])), Number(m[3])]);
  }
  return out;
}
const one = (text: string, name: string, labels: Record<string, string>) => samples(text, name).filter(([l]) => Object.entries(labels).every(([k, v]) => l[k] === v)).map(([, v]) => v);

const sinks = (m: Metrics): AuditSinks => ({ log: pino({ level: 'silent' }), metrics: m, audit: { write: () => undefined, writePrepared: () => undefined } });
const rec = (r: Partial<AuditRecord>): AuditRecord => ({ upstream: 'lab', gun: 'h/r', repo: 'r', ref: 'v1', decision: 'allow', policy: 'enforce', require: 'dct', durationMs: 1, ...r });

let dir: string | undefined;
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('signatureKindOf', () => {
  it.each([
    [{ satisfiedBy: 'dct targets/releases', require: 'any-of' }, 'dct'],
    [{ satisfiedBy: 'dct targets frozen 2026-12-08T00:00:00.000Z', require: 'dct' }, 'dct'],
    [{ satisfiedBy: 'notation sha256:ab policy wabbit from h/sigs', require: 'any-of' }, 'notation'],
    [{ satisfiedBy: 'cosign key release sha256:ab', require: '{ any-of: [dct, cosign] }' }, 'cosign'],
    [{ satisfiedBy: 'dct targets/releases + notation sha256:ab policy p', require: 'all-of' }, 'dct+notation'],
    [{ require: 'dct' }, 'dct'],
    [{ require: 'cosign' }, 'cosign'],
    [{ require: 'any-of' }, 'dct+notation'],
    [{ require: 'all-of' }, 'dct+notation'],
    [{ require: '{ all-of: [cosign, notation] }' }, 'cosign+notation'],
    [{ require: undefined }, 'none'],
    [{ require: 'something else' }, 'none'],
  ] as const)('%j → %s', (r, kind) => {
    expect(signatureKindOf(r)).toBe(kind);
  });
});

describe('decisions by kind and answer time by path', () => {
  it('counts each decision once by kind, and observes cold (audit) and warm (auditPrepared) answers apart', async () => {
    const m = new Metrics(false);
    const to = sinks(m);
    audit(to, rec({ satisfiedBy: 'dct targets/releases', durationMs: 40 }));
    audit(to, rec({ decision: 'deny', code: 'COSIGN_UNSIGNED', require: 'cosign', durationMs: 3 }));
    const p = new PreparedAudit({ upstream: 'lab', gun: 'h/r', repo: 'r', ref: 'v1', decision: 'allow', policy: 'enforce', require: 'any-of', satisfiedBy: 'notation sha256:ab policy p' });
    for (let i = 0; i < 4; i++) auditPrepared(to, p, 0.2);
    // Neither a tags/list refusal nor a refused redirect is a manifest answer; both are decisions.
    audit(to, rec({ ref: 'tags/list', decision: 'deny', code: 'TAG_NOT_SIGNED', durationMs: 0 }));
    audit(to, rec({ ref: 'sha256:ab', decision: 'deny', code: 'UPSTREAM_INVALID', durationMs: 0 }), false);
    const text = await m.registry.metrics();
    expect(one(text, 'trustgate_trust_decisions_by_kind_total', { upstream: 'lab', decision: 'allow', kind: 'dct' })).toEqual([1]);
    expect(one(text, 'trustgate_trust_decisions_by_kind_total', { upstream: 'lab', decision: 'allow', kind: 'notation' })).toEqual([4]);
    expect(one(text, 'trustgate_trust_decisions_by_kind_total', { upstream: 'lab', decision: 'deny', kind: 'cosign' })).toEqual([1]);
    expect(one(text, 'trustgate_trust_decisions_by_kind_total', { upstream: 'lab', decision: 'deny', kind: 'dct' })).toEqual([2]);
    // The counter by code is unchanged: the same decisions, as many.
    expect(samples(text, 'trustgate_trust_decisions_total').reduce((n, [, v]) => n + v, 0)).toBe(8);
    expect(samples(text, 'trustgate_trust_decisions_by_kind_total').reduce((n, [, v]) => n + v, 0)).toBe(8);
    expect(one(text, 'trustgate_manifest_answer_duration_seconds_count', { path: 'cold' })).toEqual([2]);
    expect(one(text, 'trustgate_manifest_answer_duration_seconds_count', { path: 'warm' })).toEqual([4]);
    expect(one(text, 'trustgate_manifest_answer_duration_seconds_sum', { path: 'cold' })[0]).toBeCloseTo(0.043, 6);
    expect(one(text, 'trustgate_manifest_answer_duration_seconds_bucket', { path: 'warm', le: '0.00025' })).toEqual([4]);
    expect(one(text, 'trustgate_manifest_answer_duration_seconds_bucket', { path: 'warm', le: '0.0001' })).toEqual([0]);
    expect(one(text, 'trustgate_manifest_answer_duration_seconds_bucket', { path: 'cold', le: '0.025' })).toEqual([1]);
    // A second scrape neither loses nor doubles the kind counts.
    expect(await m.registry.metrics()).toBe(text);
    // Past the last bound (10 s): in +Inf, the sum and the count only.
    m.answered('cold', 20_000);
    const later = await m.registry.metrics();
    expect(one(later, 'trustgate_manifest_answer_duration_seconds_bucket', { path: 'cold', le: '10' })).toEqual([2]);
    expect(one(later, 'trustgate_manifest_answer_duration_seconds_bucket', { path: 'cold', le: '+Inf' })).toEqual([3]);
    expect(one(later, 'trustgate_manifest_answer_duration_seconds_count', { path: 'cold' })).toEqual([3]);
    expect(one(later, 'trustgate_manifest_answer_duration_seconds_sum', { path: 'cold' })[0]).toBeCloseTo(20.043, 6);
  });

  it('exports text promtool accepts, histograms included', async () => {
    const m = new Metrics(false);
    m.answered('warm', 0.2);
    m.decision('lab', 'allow', 'OK', 'dct+notation');
    m.trustMaterial.push({ upstream: 'acr', kind: 'notation', name: 'ca:wabbit/wabbit Root 01', notAfter: new Date(Date.now() + 86400_000) });
    const check = spawnSync('promtool', ['check', 'metrics'], { input: await m.registry.metrics(), encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
  });

  it('auditPrepared without a prepared writer still counts warm, with the prepared kind', async () => {
    const m = new Metrics(false);
    const to: AuditSinks = { log: pino({ level: 'silent' }), metrics: m };
    auditPrepared(to, new PreparedAudit({ upstream: 'u', gun: 'h/r', repo: 'r', ref: 'v1', decision: 'allow', policy: 'enforce', require: 'cosign', satisfiedBy: 'cosign key k sha256:ab' }), 0.5);
    const text = await m.registry.metrics();
    expect(one(text, 'trustgate_trust_decisions_by_kind_total', { upstream: 'u', kind: 'cosign' })).toEqual([1]);
    expect(one(text, 'trustgate_manifest_answer_duration_seconds_count', { path: 'warm' })).toEqual([1]);
    expect(one(text, 'trustgate_manifest_answer_duration_seconds_count', { path: 'cold' })).toEqual([0]);
  });
});

describe('trust material expiry', () => {
  it('is the time left to each certificate notAfter at scrape, negative once past', async () => {
    const m = new Metrics(false);
    let now = Date.parse('2026-01-01T00:00:00Z');
    m.freezeClock = () => now;
    m.trustMaterial.push({ upstream: 'acr', kind: 'notation', name: 'ca:wabbit/wabbit Root 01', notAfter: new Date('2026-01-11T00:00:00Z') });
    m.trustMaterial.push({ upstream: 'ghcr', kind: 'cosign', name: 'fulcio/sigstore 02', notAfter: new Date('2031-01-01T00:00:00Z') });
    let text = await m.registry.metrics();
    expect(one(text, 'trustgate_trust_material_expiry_seconds', { upstream: 'acr', kind: 'notation', name: 'ca:wabbit/wabbit Root 01' })).toEqual([864_000]);
    expect(one(text, 'trustgate_trust_material_expiry_seconds', { kind: 'cosign' })[0]).toBeGreaterThan(5 * 365 * 86400 - 1);
    now += 11 * 86400_000;
    text = await m.registry.metrics();
    expect(one(text, 'trustgate_trust_material_expiry_seconds', { upstream: 'acr' })).toEqual([-86_400]);
  });

  it('a trusted root lists its Fulcio and TSA certificates; certificateLabel names one by CN and serial', () => {
    dir = mkdtempSync(join(tmpdir(), 'tg-trust-metrics-'));
    const ca = makeCa(dir, 'fulcio', { days: 30 });
    const inter = makeIntermediate(dir, 'fulcio-int', ca, { days: 20 });
    const tsa = makeCa(dir, 'tsa', { days: 400 });
    const raw = (f: string) => Buffer.from(new X509Certificate(readFileSync(f)).raw).toString('base64');
    const root = TrustedRoot.fromJSON({
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [],
      ctlogs: [],
      certificateAuthorities: [{ subject: { organization: 'x', commonName: 'fulcio' }, uri: 'https://fulcio.example', certChain: { certificates: [{ rawBytes: raw(inter.cert) }, { rawBytes: raw(ca.cert) }] }, validFor: { start: '2020-01-01T00:00:00Z' } }],
      timestampAuthorities: [{ subject: { organization: 'x', commonName: 'tsa' }, uri: 'https://tsa.example', certChain: { certificates: [{ rawBytes: raw(tsa.cert) }] }, validFor: { start: '2020-01-01T00:00:00Z' } }],
    });
    const certs = trustedRootCertificates(root);
    expect(certs.map((c) => `${c.role} ${c.cert.subject.split('\n').pop()}`)).toEqual(['fulcio CN=fulcio-int Intermediate', 'fulcio CN=fulcio Root', 'tsa CN=tsa Root']);
    const days = (c: X509Certificate) => Math.round((Date.parse(c.validTo) - Date.now()) / 86400_000);
    expect(certs.map((c) => days(c.cert))).toEqual([20, 30, 400]);
    const label = certificateLabel(certs[0]!.cert);
    expect(label).toBe(`fulcio-int Intermediate ${certs[0]!.cert.serialNumber}`);
    expect(label).not.toContain('/'); // no file path
  });
});

describe('DCT trust data age and expiry', () => {
  const GUN = 'docker.com/notary0.3/tst';
  const DIR = new URL('../../fixtures/notary0.3-tst/', import.meta.url);
  const files = Object.fromEntries(['root', 'timestamp', 'snapshot', 'targets', 'targets/releases'].map((r) => [r, readFileSync(new URL(`${r}.json`, DIR))]));
  const fetcher: MetadataFetcher = { source: 'test', fetch: async (req) => files[req.role] ?? null };

  function service(stale: boolean, verifiedAt?: Date) {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const clock = { now: () => new Date(now) };
    const s = new TrustService({
      client: new TrustClient({ fetcher, state: new MemoryTrustState(), clock }),
      clock,
      cacheSeconds: 300,
      fetcher: { takeStale: () => stale, commit: async () => undefined, discard: () => undefined },
      verifiedAt: async () => verifiedAt,
    });
    return { s, at: () => now, advance: (ms: number) => (now += ms) };
  }

  it('a fresh set is as old as its update; none in use, no series', async () => {
    const { s, at, advance } = service(false);
    expect(s.trustDataSummary(at())).toBeUndefined();
    await s.resolve(GUN, 'hello');
    const t0 = at();
    advance(120_000);
    const sum = s.trustDataSummary(at())!;
    expect(sum.oldestFetchedAt).toBe(t0);
    // The fixture's earliest signer-held expiry: its root certificate's NotAfter (2026-07-25), not the timestamp.
    expect(new Date(sum.earliestExpiry).toISOString().slice(0, 10)).toBe('2026-07-25');

    const m = new Metrics(false);
    m.freezeClock = at;
    m.trustData.set('lab', (n) => s.trustDataSummary(n));
    m.trustData.set('idle', () => undefined);
    let text = await m.registry.metrics();
    expect(one(text, 'trustgate_trust_data_age_seconds', { upstream: 'lab' })).toEqual([120]);
    expect(one(text, 'trustgate_trust_data_expiry_seconds', { upstream: 'lab' })[0]).toBe((sum.earliestExpiry - at()) / 1000);
    expect(one(text, 'trustgate_trust_data_age_seconds', { upstream: 'idle' })).toEqual([]);
    // Past the cache period nobody uses the set: the series goes rather than keep an age growing.
    advance(200_000);
    text = await m.registry.metrics();
    expect(one(text, 'trustgate_trust_data_age_seconds', { upstream: 'lab' })).toEqual([]);
    expect(one(text, 'trustgate_trust_data_expiry_seconds', { upstream: 'lab' })).toEqual([]);
  });

  it('a stale-if-error set is as old as the last live verification recorded', async () => {
    const recorded = new Date('2025-12-31T00:00:00Z');
    const { s, at } = service(true, recorded);
    await s.resolve(GUN, 'hello');
    expect(s.trustDataSummary(at())!.oldestFetchedAt).toBe(recorded.getTime());
  });
});

describe('signature expiry', () => {
  it('is the earliest end of the Notation/cosign proofs in use; refusals, endless and expired verdicts do not count', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const ends: Record<string, Date | undefined> = { 'sha256:a': new Date(now + 10 * 86400_000), 'sha256:b': new Date(now + 3 * 86400_000), 'sha256:c': undefined };
    const inner: DigestProver = {
      kind: 'notation',
      verify: async (_r, _u, _repo, d) => {
        if (d.digest === 'sha256:x') throw fail('NOTATION_UNSIGNED', 'unsigned');
        return { kind: 'notation', by: `notation ${d.digest}`, validUntil: ends[d.digest] };
      },
    } as DigestProver;
    const prover = new CachedProver(inner, { nowMs: () => now, maxAgeMs: 300_000 });
    const m = new Metrics(false);
    m.freezeClock = () => now;
    m.signatureProofs.push({ upstream: 'acr', kind: 'notation', earliestEnd: (n) => prover.earliestProofEnd(n) });
    expect(one(await m.registry.metrics(), 'trustgate_signature_expiry_seconds', { upstream: 'acr' })).toEqual([]);
    const d = (digest: string) => ({ digest, size: 1, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    await prover.verify(undefined as never, 'h/r', 'r', d('sha256:a'));
    await prover.verify(undefined as never, 'h/r', 'r', d('sha256:c'));
    await prover.verify(undefined as never, 'h/r', 'r', d('sha256:x')).catch(() => undefined);
    expect(one(await m.registry.metrics(), 'trustgate_signature_expiry_seconds', { upstream: 'acr', kind: 'notation' })).toEqual([10 * 86400]);
    now += 60_000;
    await prover.verify(undefined as never, 'h/r', 'r', d('sha256:b'));
    expect(one(await m.registry.metrics(), 'trustgate_signature_expiry_seconds', { upstream: 'acr', kind: 'notation' })).toEqual([3 * 86400 - 60]);
    // Past the cache period (limits.trustCacheSeconds) the verdicts are not in use: no series.
    now += 300_000;
    expect(one(await m.registry.metrics(), 'trustgate_signature_expiry_seconds', { upstream: 'acr' })).toEqual([]);
  });
});
