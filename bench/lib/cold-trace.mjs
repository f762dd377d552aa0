// Preloaded into a trustgate process by bench/cold-tag.bench.ts (COLD_TRACE=1, `node --import`): a
// timeline of each manifest request, with nothing changed in trustgate itself. Upstream requests come
// from undici's diagnostics channels (create → response headers → body done), store I/O from wrapping
// node:fs/promises (and FileHandle) before trustgate's modules bind to it. One request at a time is
// assumed (the bench sends them one after another): every event between a request's start and its
// response's end is that request's. A JSON line per request goes to COLD_TRACE_FILE.
import { appendFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import diagnostics from 'node:diagnostics_channel';

const require = createRequire(import.meta.url);
const fsp = require('node:fs/promises');
const out = process.env.COLD_TRACE_FILE;
let current; // { t0, url, events: [] }
const now = () => performance.now();
const ev = (kind, what, start, end = now()) => current?.events.push({ kind, what, at: +(start - current.t0).toFixed(3), ms: +(end - start).toFixed(3) });

function wrap(obj, name, label = name) {
  const orig = obj[name];
  obj[name] = async function (...args) {
    const t = now();
    try {
      return await orig.apply(this, args);
    } finally {
      ev('fs', label, t);
    }
  };
}
for (const n of ['open', 'readFile', 'writeFile', 'rename', 'link', 'unlink', 'readdir', 'stat', 'utimes', 'mkdir']) wrap(fsp, n);
syncBuiltinESMExports();
// FileHandle methods: the class of any handle.
const fh = await fsp.open(new URL(import.meta.url), 'r');
const FileHandle = Object.getPrototypeOf(fh);
await fh.close();
for (const n of ['datasync', 'writeFile', 'close', 'read', 'stat']) wrap(FileHandle, n, `fh.${n}`);

const pending = new Map();
diagnostics.subscribe('undici:request:create', ({ request }) => {
  if (current) pending.set(request, { t: now(), what: `${request.method} ${request.origin}${request.path}` });
});
diagnostics.subscribe('undici:request:headers', ({ request, response }) => {
  const p = pending.get(request);
  if (p) {
    ev('net-headers', `${p.what} → ${response.statusCode}`, p.t);
    p.headersAt = now();
  }
});
diagnostics.subscribe('undici:request:trailers', ({ request }) => {
  const p = pending.get(request);
  if (p) ev('net-done', p.what, p.t);
  pending.delete(request);
});
diagnostics.subscribe('undici:client:connected', ({ connectParams }) => {
  if (current) current.events.push({ kind: 'connect', what: `${connectParams.protocol}//${connectParams.hostname}:${connectParams.port}`, at: +(now() - current.t0).toFixed(3), ms: 0 });
});
diagnostics.subscribe('http.server.request.start', ({ request }) => {
  if (!request.url.includes('/manifests/')) return;
  current = { t0: now(), hr0: process.hrtime.bigint(), cpu: process.cpuUsage(), url: request.url, events: [] };
});
diagnostics.subscribe('http.server.response.finish', ({ request }) => {
  if (!current || request.url !== current.url) return;
  const c = current;
  current = undefined;
  const cpu = process.cpuUsage(c.cpu);
  const totalMs = +(now() - c.t0).toFixed(3);
  // The request's window on the monotonic clock in µs, as --cpu-prof timestamps are.
  const window = { from: Number(c.hr0 / 1000n), to: Number(process.hrtime.bigint() / 1000n) };
  if (out) appendFileSync(out, JSON.stringify({ url: c.url, totalMs, window, cpuMs: +((cpu.user + cpu.system) / 1000).toFixed(3), events: c.events }) + '\n');
});
