// Prometheus metrics (prom-client), on a registry of our own rather than the global default, so tests
// and several servers in one process never share counters. Components get this object injected.
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
  readonly bytes = new Counter({ name: 'trustgate_bytes_streamed_total', help: 'Blob bytes relayed to clients', registers: [this.registry] });
  readonly bundleExpiry = new Gauge({ name: 'trustgate_bundle_expiry_seconds', help: 'Seconds until the earliest expiry of an imported trust bundle, per repository', labelNames: ['gun'] as const, registers: [this.registry] });
  /** notary.frozenAt per upstream that has one; the gauges below are computed from it when scraped. */
  readonly freezes = new Map<string, Date>();
  /** The clock the freeze gauges compare with (the server's clock; tests move it). */
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

  private readonly requestCells: CountCell[] = [];
  private readonly requestTree = new Map<string, Map<string, Map<number | string, CountCell>>>();
  private readonly decisionCells: CountCell[] = [];
  private readonly decisionTree = new Map<string, Map<string, Map<string, CountCell>>>();

  /** `status` as the response has it: its label string is made once per cell, not per request. */
  request(route: string, method: string, status: number | string): void {
    // Map lookups on interned strings and a number: no key string concatenated per request.
    cell(this.requestTree, this.requestCells, method, route, status, () => ({ route, method, status: String(status) })).n++;
  }

  decision(upstream: string, decision: string, code: string): void {
    cell(this.decisionTree, this.decisionCells, upstream, decision, code, () => ({ upstream, decision, code })).n++;
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
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'trustgate_' });
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
