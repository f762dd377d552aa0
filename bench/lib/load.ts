// Load generators: autocannon for GET; raw keep-alive sockets for HEAD (autocannon 9 waits for a body
// that never comes when a HEAD response carries Content-Length, and reports 0 req/s). Both bounded
// in time and only ever pointed at 127.0.0.1.
import autocannon from 'autocannon';
import { connect } from 'node:net';

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

/**
 * HEAD load over raw keep-alive sockets: `connections` loops of write request → read headers. A HEAD
 * response has no body whatever its Content-Length, so the end of headers ends the response. (An
 * undici Pool loop measured the same here but spent more of the shared CPU in the client itself.)
 */
export async function headLoad(url: string, connections: number, seconds: number, headers: Record<string, string> = {}): Promise<LoadResult> {
  assertLocal(url);
  const u = new URL(url);
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  const req = Buffer.from(`HEAD ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n${extra}\r\n`);
  const latencies: number[] = [];
  let errors = 0;
  let non2xx = 0;
  const end = performance.now() + seconds * 1000;
  const worker = () =>
    new Promise<void>((resolve) => {
      const sock = connect(Number(u.port), u.hostname);
      sock.setNoDelay(true);
      let buf = '';
      let t0 = 0;
      const send = () => {
        if (performance.now() >= end) {
          sock.end();
          return resolve();
        }
        t0 = performance.now();
        sock.write(req);
      };
      sock.on('connect', send);
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        let i: number;
        while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
          const status = Number(buf.slice(9, 12));
          buf = buf.slice(i + 4);
          latencies.push(performance.now() - t0);
          if (status < 200 || status >= 300) non2xx++;
          send();
        }
      });
      sock.on('error', () => {
        errors++;
        resolve();
      });
      sock.on('close', () => resolve());
    });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), requests: latencies.length, errors, non2xx };
}
