// Prometheus metrics (prom-client), on a registry of our own rather than the global default, so tests
// and several servers in one process never share counters. Components get this object injected.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'trustgate_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'] as const, registers: [this.registry] });
  readonly decisions = new Counter({ name: 'trustgate_trust_decisions_total', help: 'Trust decisions by outcome and reason code', labelNames: ['upstream', 'decision', 'code'] as const, registers: [this.registry] });
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
  readonly storeUp = new Gauge({ name: 'trustgate_store_up', help: '1 when the shared store answers, 0 when degraded to memory', registers: [this.registry] });

  // Labelled children cached by their label values: resolving labels on every request was a visible
  // share of the hot path in a profile (node --cpu-prof, bench/).
  private readonly decisionChildren = new Map<string, { inc(): void }>();

  /** `status` as the response has it: its label string is made once per child, not per request. */
  request(route: string, method: string, status: number | string): void {
    // Map lookups on interned strings and a number: no key string concatenated per request.
    let byRoute = this.requestTree.get(method);
    if (!byRoute) this.requestTree.set(method, (byRoute = new Map()));
    let byStatus = byRoute.get(route);
    if (!byStatus) byRoute.set(route, (byStatus = new Map()));
    let c = byStatus.get(status);
    if (!c) byStatus.set(status, (c = this.requests.labels({ route, method, status: String(status) })));
    c.inc();
  }

  private readonly requestTree = new Map<string, Map<string, Map<number | string, { inc(): void }>>>();

  decision(upstream: string, decision: string, code: string): void {
    const k = `${upstream} ${decision} ${code}`;
    let c = this.decisionChildren.get(k);
    if (!c) this.decisionChildren.set(k, (c = this.decisions.labels({ upstream, decision, code })));
    c.inc();
  }

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'trustgate_' });
  }
}
