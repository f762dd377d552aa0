// Prometheus metrics (prom-client), on a registry of our own rather than the global default, so tests
// and several servers in one process never share counters. Components get this object injected.
import type { X509Certificate } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  // Counted per request in plain cells and added to these when scraped (collect): prom-client's
  // labelled inc() hashes and validates the label object on every call, a visible share of the warm
  // tag path (docs/benchmarks.md, "The warm HEAD path, second profile pass").
  readonly requests: Counter<'route' | 'method' | 'status'> = new Counter({ name: 'trustgate_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'] as const, registers: [this.registry], collect: (): void => this.flush(this.requests, this.requestCells) });
  readonly decisions: Counter<'upstream' | 'decision' | 'code'> = new Counter({ name: 'trustgate_trust_decisions_total', help: 'Trust decisions by outcome and reason code', labelNames: ['upstream', 'decision', 'code'] as const, registers: [this.registry], collect: (): void => this.flush(this.decisions, this.decisionCells) });
  readonly upstreamSeconds = new Histogram({
    name: 'trustgate_upstream_request_duration_seconds',
    help: 'Time to response headers from upstream registries',
    labelNames: ['upstream', 'kind'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly notaryFetches = new Counter({ name: 'trustgate_notary_fetches_total', help: 'Metadata requests sent to notary servers, by role and result', labelNames: ['role', 'result'] as const, registers: [this.registry] });
  readonly notarySeconds = new Histogram({
    name: 'trustgate_notary_fetch_duration_seconds',
    help: 'Duration of metadata downloads from notary servers',
    labelNames: ['role'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly store = new Counter({ name: 'trustgate_store_operations_total', help: 'Store lookups by layer and result (hit, miss, error)', labelNames: ['layer', 'result'] as const, registers: [this.registry] });
  readonly streams = new Gauge({ name: 'trustgate_streams_in_flight', help: 'Blob streams being relayed', registers: [this.registry] });
  /** The blob send buffer budget (limits.sendBufferBytes), read when scraped. */
  sendBudget: { readonly bytesInUse: number; readonly collections: number } | undefined;
  readonly sendBufferBytes: Gauge = new Gauge({
    name: 'trustgate_send_buffer_bytes',
    help: 'Bytes of blob send buffers leased now (limits.sendBufferBytes; past it, 16 KiB pairs)',
    registers: [this.registry],
    collect: () => this.sendBufferBytes.set(this.sendBudget?.bytesInUse ?? 0),
  });
  readonly sendBufferCollections: Gauge = new Gauge({
    name: 'trustgate_send_buffer_collections',
    help: 'Garbage collections asked for after blob sends gave their buffers back',
    registers: [this.registry],
    collect: () => this.sendBufferCollections.set(this.sendBudget?.collections ?? 0),
  });
  readonly bytes = new Counter({ name: 'trustgate_bytes_streamed_total', help: 'Blob bytes relayed to clients', registers: [this.registry] });
  readonly bundleExpiry = new Gauge({ name: 'trustgate_bundle_expiry_seconds', help: 'Seconds until the earliest expiry of an imported trust bundle, per repository', labelNames: ['gun'] as const, registers: [this.registry] });
  /** notary.frozenAt per upstream that has one; the gauges below are computed from it when scraped. */
  readonly freezes = new Map<string, Date>();
  /** The clock the gauges computed when scraped compare with (the server's clock; tests move it). */
  freezeClock: () => number = Date.now;
  readonly trustFrozen: Gauge<'upstream'> = new Gauge({
    name: 'trustgate_trust_frozen',
    help: '1 when DCT trust of the upstream is frozen (notary.frozenAt has passed), 0 while the freeze is still ahead',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
    collect: (): void => {
      for (const [upstream, at] of this.freezes) this.trustFrozen.set({ upstream }, this.freezeClock() >= at.getTime() ? 1 : 0);
    },
  });
  readonly trustFrozenAt: Gauge<'upstream'> = new Gauge({
    name: 'trustgate_trust_frozen_at_seconds',
    help: 'notary.frozenAt of the upstream, as Unix seconds',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
    collect: (): void => {
      for (const [upstream, at] of this.freezes) this.trustFrozenAt.set({ upstream }, at.getTime() / 1000);
    },
  });
  /** The audit stream these gauges read when scraped (start.ts sets it once the streams are open). */
  audit: { backlogBytes(): number; droppedLines(): number } | undefined;
  private auditDroppedSeen = 0;
  // Names fixed by deploy/prometheus alert rules.
  readonly auditBacklog: Gauge = new Gauge({
    name: 'trustgate_audit_backlog_bytes',
    help: 'Audit bytes waiting for their destination (a failing or slow audit file or stdout); bounded by audit.bufferBytes',
    registers: [this.registry],
    collect: (): void => this.auditBacklog.set(this.audit?.backlogBytes() ?? 0),
  });
  readonly auditDropped: Counter = new Counter({
    name: 'trustgate_audit_dropped_lines_total',
    help: 'Audit lines dropped because the audit buffer was full (audit.onFailure: serve)',
    registers: [this.registry],
    collect: (): void => {
      const n = this.audit?.droppedLines() ?? 0;
      if (n > this.auditDroppedSeen) this.auditDropped.inc(n - this.auditDroppedSeen);
      this.auditDroppedSeen = Math.max(n, this.auditDroppedSeen);
    },
  });
  readonly storeUp = new Gauge({ name: 'trustgate_store_up', help: '1 when the shared store answers, 0 when degraded to memory', registers: [this.registry] });
  // Names fixed by deploy/prometheus alert rules and deploy/grafana (docs/deployment.md "Metrics").
  /** The decisions of trustgate_trust_decisions_total again, by signature kind instead of code (signatureKindOf). */
  readonly decisionsByKind: Counter<'upstream' | 'decision' | 'kind'> = new Counter({ name: 'trustgate_trust_decisions_by_kind_total', help: 'Trust decisions by outcome and signature kind: on allow the kinds that satisfied the policy (dct, notation, cosign, or several joined by +), otherwise the kinds the requirement names; none when no signature was asked for', labelNames: ['upstream', 'decision', 'kind'] as const, registers: [this.registry], collect: (): void => this.flush(this.decisionsByKind, this.kindCells) });
  /**
   * Time from a manifest request to its decision (the audit line's durationMs): `warm` answered by the
   * replay of a verified answer (server/handlers/warm-tag.ts), `cold` by the full path (decide()).
   * Counted in plain cells like the counters above: prom-client's observe() validates its labels on
   * every call (about 450 ns, against 20 ns for a cell), a share of the warm path worth keeping.
   */
  readonly answerSeconds = new CellHistogram(
    'trustgate_manifest_answer_duration_seconds',
    'Time to the trust decision of a manifest request (the audit line durationMs), by path: warm (replayed verified answer) or cold (full decision)',
    'path',
    ['warm', 'cold'],
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  /**
   * Certificates of Notation trust stores and cosign trusted roots, read at start (app/runtime.ts): the
   * gauge below is the time left to each notAfter, computed when scraped.
   */
  readonly trustMaterial: TrustMaterial[] = [];
  readonly trustMaterialExpiry: Gauge<'upstream' | 'kind' | 'name'> = new Gauge({
    name: 'trustgate_trust_material_expiry_seconds',
    help: 'Seconds until the notAfter of a Notation trust store certificate or a cosign trusted root certificate (negative: expired)',
    labelNames: ['upstream', 'kind', 'name'] as const,
    registers: [this.registry],
    collect: (): void => {
      const now = this.freezeClock();
      for (const m of this.trustMaterial) this.trustMaterialExpiry.set({ upstream: m.upstream, kind: m.kind, name: m.name }, (m.notAfter.getTime() - now) / 1000);
    },
  });
  /** Per upstream and digest-signing kind: the earliest end of the proofs in use, ms (CachedProver.earliestProofEnd). */
  readonly signatureProofs: Array<{ upstream: string; kind: 'notation' | 'cosign'; earliestEnd(nowMs: number): number | undefined }> = [];
  readonly signatureExpiry: Gauge<'upstream' | 'kind'> = new Gauge({
    name: 'trustgate_signature_expiry_seconds',
    help: 'Seconds until the earliest end (signature expiry, certificate notAfter) of the Notation or cosign proofs in use for the upstream; no series when none is in use or none has an end',
    labelNames: ['upstream', 'kind'] as const,
    registers: [this.registry],
    collect: (): void => {
      const now = this.freezeClock();
      this.signatureExpiry.reset();
      for (const p of this.signatureProofs) {
        const end = p.earliestEnd(now);
        if (end !== undefined) this.signatureExpiry.set({ upstream: p.upstream, kind: p.kind }, (end - now) / 1000);
      }
    },
  });
  /** Per DCT upstream: what its verified sets in use say when scraped (TrustService.trustDataSummary). */
  readonly trustData = new Map<string, (nowMs: number) => TrustDataSummary | undefined>();
  readonly trustDataAge: Gauge<'upstream'> = new Gauge({
    name: 'trustgate_trust_data_age_seconds',
    help: 'Seconds since the oldest DCT trust data in use for the upstream was read from its source and verified (notary server; store for bundles and frozen trust); grows while notary is unreachable and stale-if-error serves',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
    collect: (): void => this.collectTrustData(),
  });
  readonly trustDataExpiry: Gauge<'upstream'> = new Gauge({
    name: 'trustgate_trust_data_expiry_seconds',
    help: 'Seconds until the earliest expiry of the signer-held DCT metadata in use for the upstream (root and its certificates, targets, delegations)',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
    collect: (): void => this.collectTrustData(),
  });

  private collectTrustData(): void {
    const now = this.freezeClock();
    // Both gauges from one pass; a set no longer in use takes its upstream's series away (reset), so a
    // repository nobody pulls does not keep an old age alive.
    this.trustDataAge.reset();
    this.trustDataExpiry.reset();
    for (const [upstream, summary] of this.trustData) {
      const s = summary(now);
      if (!s) continue;
      this.trustDataAge.set({ upstream }, Math.max(0, (now - s.oldestFetchedAt) / 1000));
      this.trustDataExpiry.set({ upstream }, (s.earliestExpiry - now) / 1000);
    }
  }

  private readonly requestCells: CountCell[] = [];
  private readonly requestTree = new Map<string, Map<string, Map<number | string, CountCell>>>();
  private readonly decisionCells: CountCell[] = [];
  private readonly decisionTree = new Map<string, Map<string, Map<string, CountCell>>>();
  private readonly kindCells: CountCell[] = [];
  private readonly kindTree = new Map<string, Map<string, Map<string, CountCell>>>();

  /** `status` as the response has it: its label string is made once per cell, not per request. */
  request(route: string, method: string, status: number | string): void {
    // Map lookups on interned strings and a number: no key string concatenated per request.
    cell(this.requestTree, this.requestCells, method, route, status, () => ({ route, method, status: String(status) })).n++;
  }

  /** `kind`: signatureKindOf the audit record (observe/logger.ts), made once per prepared record. */
  decision(upstream: string, decision: string, code: string, kind?: string): void {
    cell(this.decisionTree, this.decisionCells, upstream, decision, code, () => ({ upstream, decision, code })).n++;
    if (kind !== undefined) cell(this.kindTree, this.kindCells, upstream, decision, kind, () => ({ upstream, decision, kind })).n++;
  }

  /** A manifest answer's time to decision, in milliseconds as the audit line has it. */
  answered(path: 'warm' | 'cold', durationMs: number): void {
    this.answerSeconds.observe(path === 'warm' ? 0 : 1, durationMs / 1000);
  }

  /** Adds what the cells counted since the last scrape to the counter: counts are neither lost nor doubled. */
  private flush(counter: { inc(labels: Record<string, string>, value: number): void }, cells: readonly CountCell[]): void {
    for (const c of cells) {
      if (c.n === 0) continue;
      counter.inc(c.labels, c.n);
      c.n = 0;
    }
  }

  constructor(defaults = true) {
    // Registered as it is: it has the shape the registry reads (name, help, type, get, reset), not a prom-client class.
    this.registry.registerMetric(this.answerSeconds as unknown as Histogram);
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'trustgate_' });
  }
}

/** A certificate trustgate verifies signatures against, and when it stops being valid. */
export interface TrustMaterial {
  upstream: string;
  kind: 'notation' | 'cosign';
  /** Bounded by configuration: `<store type>:<store name>/<subject CN> <serial>` or `<role>/<subject CN> <serial>`. */
  name: string;
  notAfter: Date;
}

/** What the `name` label calls a certificate: its subject CN (else the whole subject) and serial, never a file path. */
export function certificateLabel(cert: Pick<X509Certificate, 'subject' | 'serialNumber'>): string {
  const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1];
  return `${cn ?? cert.subject.replaceAll('\n', ', ')} ${cert.serialNumber}`;
}

/** The verified DCT sets an upstream has in use: when the oldest was fetched, and the earliest signer-held expiry (ms). */
export interface TrustDataSummary {
  oldestFetchedAt: number;
  earliestExpiry: number;
}

/**
 * A histogram over one label with a fixed set of values, counted in plain arrays: observe() is an index
 * and three additions. Every label value is a series from the start (at 0), so a panel or rule on
 * either has data before traffic. Exported as prom-client exports its own histograms.
 */
export class CellHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: Float64Array[];
  private readonly sums: Float64Array;
  private readonly totals: Float64Array;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly label: string,
    private readonly values: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    this.counts = values.map(() => new Float64Array(bounds.length));
    this.sums = new Float64Array(values.length);
    this.totals = new Float64Array(values.length);
  }

  /** `i`: the index of the label value in `values`. A value above the last bound counts in +Inf only. */
  observe(i: number, seconds: number): void {
    const b = this.bounds;
    let k = 0;
    while (k < b.length && seconds > b[k]!) k++;
    if (k < b.length) this.counts[i]![k]!++;
    this.sums[i]! += seconds;
    this.totals[i]!++;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> } {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    this.values.forEach((v, i) => {
      let acc = 0;
      this.bounds.forEach((le, k) => {
        acc += this.counts[i]![k]!;
        values.push({ labels: { le, [this.label]: v }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', [this.label]: v }, value: this.totals[i]!, metricName: `${this.name}_bucket` });
      values.push({ labels: { [this.label]: v }, value: this.sums[i]!, metricName: `${this.name}_sum` });
      values.push({ labels: { [this.label]: v }, value: this.totals[i]!, metricName: `${this.name}_count` });
    });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const c of this.counts) c.fill(0);
    this.sums.fill(0);
    this.totals.fill(0);
  }
}

/** One label set's count since the last scrape. */
interface CountCell {
  readonly labels: Record<string, string>;
  n: number;
}

function cell<A, B, C>(tree: Map<A, Map<B, Map<C, CountCell>>>, all: CountCell[], a: A, b: B, c: C, labels: () => Record<string, string>): CountCell {
  let byB = tree.get(a);
  if (!byB) tree.set(a, (byB = new Map()));
  let byC = byB.get(b);
  if (!byC) byB.set(b, (byC = new Map()));
  let x = byC.get(c);
  if (!x) {
    byC.set(c, (x = { labels: labels(), n: 0 }));
    all.push(x);
  }
  return x;
}
