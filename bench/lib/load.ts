// Load generators: autocannon for GET; an undici Pool loop for HEAD (autocannon 9 waits for a body
// that never comes when a HEAD response carries Content-Length, and reports 0 req/s). Both bounded
// in time and only ever pointed at 127.0.0.1.
import autocannon from 'autocannon';
import { Pool } from 'undici';

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  non2xx: number;
}

function assertLocal(url: string): void {
  const h = new URL(url).hostname;
  if (h !== '127.0.0.1' && h !== 'localhost') throw new Error(`load generators only target loopback, not ${h}`);
}

export async function getLoad(url: string, connections: number, seconds: number, headers: Record<string, string> = {}): Promise<LoadResult> {
  assertLocal(url);
  const r = await autocannon({ url, connections, duration: seconds, headers, pipelining: 1 });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** `connections` concurrent loops of request → await headers → dump, for `seconds`. */
export async function headLoad(url: string, connections: number, seconds: number, method: 'HEAD' | 'GET' = 'HEAD'): Promise<LoadResult> {
  assertLocal(url);
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  let non2xx = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const res = await pool.request({ path: u.pathname + u.search, method });
        await res.body.dump();
        if (res.statusCode >= 300) non2xx++;
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), requests: latencies.length, errors, non2xx };
}
