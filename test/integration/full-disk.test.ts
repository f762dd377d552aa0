// Full disks with real parts (issue 26): the audit file and the file store each on a small tmpfs that
// the test mounts (as root; a sandbox that refuses `mount` fails this file, it never skips), filled to
// ENOSPC with a filler file and freed by deleting it, against a real docker-registry and notary-server.
// - audit disk full, audit.onFailure refuse (default): lines wait in the bounded buffer, /readyz is
//   503 while they do, decisions past the buffer are refused 503 AUDIT_UNAVAILABLE, and once space is
//   freed every answered decision has its line, in order;
// - audit.onFailure serve: decisions go on, every dropped line is counted (metric and stderr);
// - SIGTERM with the audit disk full ends within limits.shutdownSeconds and reports the lost lines;
// - file store disk full: a signed tag is served from memory, nothing half-written, the next write
//   succeeds once there is space.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli, pushSignedImage } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { freePort, logTail } from '../support/spawn-server.js';
import { logLines } from '../support/through-proxy.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;
const REPO = 'disk/app';
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let cli: NotaryCli;
let signed: PushedImage;
const mounts: string[] = [];
const started: Array<{ stop(): Promise<void> }> = [];

/** A fresh tmpfs of `size` (mount(8) syntax) at a new directory: fails loudly where mount is refused. */
function mountTmpfs(name: string, size: string): string {
  const at = join(dir, name);
  mkdirSync(at, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', at], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`full-disk tests need a real tmpfs: mount -t tmpfs at ${at} failed (run as root): ${(err as { stderr?: Buffer }).stderr?.toString() ?? err}`);
  }
  mounts.push(at);
  return at;
}

/** Fill the filesystem holding `at` to ENOSPC with one filler file; returns its path (delete it to free the space). */
function fill(at: string): string {
  const file = join(at, 'filler');
  const fd = openSync(file, 'a');
  try {
    for (let chunk = 64 * 1024; chunk >= 1; chunk = Math.floor(chunk / 4)) {
      const buf = Buffer.alloc(chunk, 0x61);
      for (;;) {
        try {
          writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  // Really full: not one more byte goes in.
  expect(() => writeFileSync(join(at, 'probe'), 'x')).toThrow(/ENOSPC/);
  return file;
}

/**
 * Complete audit lines of `file`. A line the disk had room for only in part sits there unterminated
 * while the rest waits: it is not a line yet (log shippers read up to a newline too).
 */
function auditLines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.audit === true);
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function readyz(base: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await request(`${base}/readyz`);
  return { status: r.statusCode, body: (await r.body.json()) as Record<string, unknown> };
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await request(`${base}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (!line) throw new Error(`metric ${name} not exported`);
  return Number(line.split(' ').pop());
}

/** `n` decisions, 16 at a time: signed (200) and unsigned (403) tags, GET and HEAD; status and refusal code of each. */
async function decisions(base: string, n: number): Promise<Array<{ status: number; code?: string }>> {
  const pool = new Pool(base, { connections: 16 });
  const out: Array<{ status: number; code?: string }> = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const method = i % 2 ? 'HEAD' : 'GET';
      const r = await pool.request({ path: `/v2/${REPO}/manifests/${i % 5 === 4 ? 'unsigned' : 'v1'}`, method, headers: { accept: signed.mediaType } });
      const text = await r.body.text();
      // HEAD has no body: its 503 is told apart by a GET right after (same state, same answer).
      let code: string | undefined;
      if (text) code = (JSON.parse(text) as { errors?: Array<{ detail?: { code?: string } }> }).errors?.[0]?.detail?.code;
      out.push({ status: r.statusCode, ...(code ? { code } : {}) });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await pool.close();
  return out;
}

function upstreams() {
  return [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }];
}

async function start(name: string, extra: Record<string, unknown>): Promise<Trustgate> {
  const tg = await startTrustgate(dir, { upstreams: upstreams(), default: 'lab', ...extra }, name);
  started.push(tg);
  return tg;
}

/** trustgate with stdout and stderr apart, and its exit observed (the SIGTERM test measures it). */
async function spawnOwn(name: string, extra: Record<string, unknown>, stdoutFd?: number): Promise<{ url: string; child: ChildProcess; out: string; err: string; exited: Promise<{ code: number | null; signal: string | null; at: number }> }> {
  const port = await freePort();
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify({ listen: `127.0.0.1:${port}`, store: { kind: 'file', path: join(dir, `${name}-data`) }, upstreams: upstreams(), default: 'lab', ...extra }));
  const out = join(dir, `${name}.out`);
  const err = join(dir, `${name}.err`);
  const child = spawn(process.execPath, [MAIN, 'start', '--config', file], { stdio: ['ignore', stdoutFd ?? openSync(out, 'a'), openSync(err, 'a')] });
  const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  started.push({ stop: async () => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')) });
  const url = `http://127.0.0.1:${port}`;
  await until(`${name} to listen:\n${stdoutFd === undefined ? logTail(out) : ''}${logTail(err)}`, async () => (await fetch(`${url}/healthz`).then((r) => r.status, () => 0)) === 200, 20_000);
  return { url, child, out, err, exited };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-disk-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  signed = await pushSignedImage(cli, dir, registry.host, REPO, 'v1');
  await pushImage(dir, registry.host, REPO, 'unsigned');
}, 120_000);

afterAll(async () => {
  for (const s of started.reverse()) await s.stop().catch(() => undefined);
  await notary?.stop();
  await registry?.stop();
  for (const m of mounts) execFileSync('umount', [m]);
  if (dir) execFileSync('rm', ['-rf', dir]);
});

describe('audit disk full', () => {
  it('refuse (default): lines wait, /readyz 503, past the buffer AUDIT_UNAVAILABLE, and after space is freed lines = decisions answered', async () => {
    const disk = mountTmpfs('audit-refuse', '1m');
    const file = join(disk, 'audit.log');
    const tg = await start('refuse', { audit: { path: file, bufferBytes: 65536 } });
    expect((await decisions(tg.url, 1))[0]!.status).toBe(200);
    expect(auditLines(file)).toHaveLength(1);
    const filler = fill(disk);

    const during = await decisions(tg.url, 1000);
    const answered = during.filter((d) => d.status === 200 || d.status === 403);
    const refused = during.filter((d) => d.status === 503);
    // Nothing else: every decision was either answered (and owes a line) or refused for the audit.
    console.info(`audit disk full, refuse: ${answered.length} answered, ${refused.length} refused AUDIT_UNAVAILABLE`);
    expect(answered.length + refused.length).toBe(1000);
    expect(answered.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    // Every refusal with a body (GET) names the audit; HEAD ones have no body (same answer, same state).
    const withBody = refused.filter((d) => d.code !== undefined);
    expect(withBody.length).toBeGreaterThan(0);
    expect(withBody.every((d) => d.code === 'AUDIT_UNAVAILABLE')).toBe(true);
    const r = await readyz(tg.url);
    expect(r.status).toBe(503);
    expect(JSON.stringify(r.body)).toMatch(/audit/);
    expect(await metric(tg.url, 'trustgate_audit_backlog_bytes')).toBeGreaterThan(60_000);
    // What fitted: the slack of the file's last tmpfs page (a few lines), not the answered decisions.
    expect(auditLines(file).length).toBeLessThan(answered.length / 4);

    unlinkSync(filler);
    await until('every waiting line written', () => auditLines(file).length >= 1 + answered.length);
    const lines = auditLines(file);
    expect(lines).toHaveLength(1 + answered.length);
    // In order: each line is stamped when its decision was made, and they came out in that order.
    const times = lines.map((l) => l.time as number);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(lines.filter((l) => l.decision === 'allow').length).toBe(1 + answered.filter((d) => d.status === 200).length);
    await until('/readyz 200 again', async () => (await readyz(tg.url)).status === 200);
    expect(await metric(tg.url, 'trustgate_audit_backlog_bytes')).toBe(0);
    expect((await decisions(tg.url, 1))[0]!.status).toBe(200);
    await until('the next line', () => auditLines(file).length === 2 + answered.length);
  }, 120_000);

  it('serve: decisions go on, and every dropped line is counted in the metric and on stderr', async () => {
    const disk = mountTmpfs('audit-serve', '1m');
    const file = join(disk, 'audit.log');
    const tg = await start('serve', { audit: { path: file, bufferBytes: 65536, onFailure: 'serve' } });
    expect((await decisions(tg.url, 1))[0]!.status).toBe(200);
    const filler = fill(disk);
    const during = await decisions(tg.url, 1000);
    expect(during.every((d) => d.status === 200 || d.status === 403)).toBe(true);
    const dropped = await metric(tg.url, 'trustgate_audit_dropped_lines_total');
    console.info(`audit disk full, serve: 1000 answered, ${dropped} lines dropped`);
    expect(dropped).toBeGreaterThan(0);
    expect((await readyz(tg.url)).status).toBe(503);
    unlinkSync(filler);
    await until('the kept lines written', async () => (await metric(tg.url, 'trustgate_audit_backlog_bytes')) === 0);
    // Lines in the file plus lines counted as dropped = every decision answered.
    expect(auditLines(file).length + dropped).toBe(1 + 1000);
    // stderr (shared with stdout in this log file) counted them too.
    await until('drops reported on stderr', () => {
      const said = logLines(tg.logFile).filter((l) => l.msg === 'audit lines dropped');
      return said.length > 0 && Math.max(...said.map((l) => l.droppedTotal as number)) === dropped;
    });
  }, 120_000);

  it.each([1, 2])('SIGTERM with the audit disk full ends within limits.shutdownSeconds and reports the lost lines (workers: %i)', async (workers) => {
    const disk = mountTmpfs(`audit-sigterm-${workers}`, '1m');
    const file = join(disk, 'audit.log');
    const tg = await spawnOwn(`sigterm-${workers}`, { audit: { path: file }, workers });
    expect((await decisions(tg.url, 1))[0]!.status).toBe(200);
    fill(disk);
    const during = await decisions(tg.url, 50);
    expect(during.every((d) => d.status === 200 || d.status === 403)).toBe(true);
    const t0 = Date.now();
    tg.child.kill('SIGTERM');
    const gone = await Promise.race([tg.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
    expect(gone, `still running 15 s after SIGTERM:\n${logTail(tg.err)}`).toBeDefined();
    console.info(`workers: ${workers}: SIGTERM to exit ${gone!.at - t0} ms`);
    expect(gone!.at - t0).toBeLessThanOrEqual(10_000);
    expect(gone!.signal).toBeNull();
    // Lost lines named by count on stderr (by each worker that lost some), and the exit code says so.
    const said = logLines(tg.err).filter((l) => l.msg === 'audit lines lost at shutdown');
    expect(said.length, logTail(tg.err)).toBeGreaterThan(0);
    const lost = said.reduce((a, l) => a + (l.lostLines as number), 0);
    // Every line is either in the file (the few the last page's slack took) or counted as lost.
    expect(lost).toBeGreaterThan(25);
    expect(lost + auditLines(file).length).toBe(1 + 50);
    expect(gone!.code).toBe(1);
  }, 60_000);
});

describe('audit on a stuck pipe', () => {
  it('stdout a pipe nobody reads: decisions refused once the buffer is full, SIGTERM still ends within limits.shutdownSeconds', async () => {
    const fifo = join(dir, 'stuck.fifo');
    execFileSync('mkfifo', [fifo]);
    const pipe = openSync(fifo, 'r+'); // both ends held here, never read: a log collector that stopped
    const tg = await spawnOwn('stuck-pipe', { audit: { bufferBytes: 65536 }, log: { level: 'warn' } }, pipe);
    const during = await decisions(tg.url, 1000);
    const refused = during.filter((d) => d.status === 503);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.filter((d) => d.code !== undefined).every((d) => d.code === 'AUDIT_UNAVAILABLE')).toBe(true);
    const r = await readyz(tg.url);
    expect(r.status).toBe(503);
    expect(r.body.reason).toMatch(/stdout is not keeping up.*buffer full/);
    const t0 = Date.now();
    tg.child.kill('SIGTERM');
    const gone = await Promise.race([tg.exited, new Promise<undefined>((res) => setTimeout(() => res(undefined), 15_000))]);
    expect(gone, `still running 15 s after SIGTERM:\n${logTail(tg.err)}`).toBeDefined();
    console.info(`stuck pipe: SIGTERM to exit ${gone!.at - t0} ms, ${refused.length} refused, exit ${gone!.code ?? gone!.signal}`);
    expect(gone!.at - t0).toBeLessThanOrEqual(10_000);
    // The pipe is written non-blocking (exit 1); were a write stuck in the thread pool, the process would kill itself (SIGKILL).
    expect(gone!.code === 1 || gone!.signal === 'SIGKILL').toBe(true);
    const said = logLines(tg.err).find((l) => l.msg === 'audit lines lost at shutdown');
    expect(said, logTail(tg.err)).toBeDefined();
    expect(said!.lostLines).toBeGreaterThan(0);
    closeSync(pipe);
  }, 60_000);
});

describe('file store disk full', () => {
  it('serves a signed tag from memory, leaves nothing half-written, and writes again once there is space', async () => {
    const disk = mountTmpfs('store', '1m');
    const other = await pushSignedImage(cli, dir, registry.host, 'disk/other', 'v1');
    const filler = fill(disk);
    const tg = await start('store', { store: { kind: 'file', path: disk } });
    for (let i = 0; i < 20; i++) {
      const r = await request(`${tg.url}/v2/${REPO}/manifests/v1`, { method: i % 2 ? 'HEAD' : 'GET', headers: { accept: signed.mediaType } });
      await r.body.dump();
      expect(r.statusCode).toBe(200);
      expect(r.headers['docker-content-digest']).toBe(signed.digest);
    }
    const r = await readyz(tg.url);
    expect(r.body.status).toBe('degraded');
    const kv = join(disk, 'kv');
    const listing = () => (existsSync(kv) ? readdirSync(kv) : []);
    // Nothing half-written: no temp file left behind, and every value file holds at least its header.
    expect(listing().filter((f) => f.endsWith('.tmp'))).toEqual([]);
    for (const f of listing()) if (/^[0-9a-f]{64}$/.test(f)) expect(statSync(join(kv, f)).size).toBeGreaterThanOrEqual(16);
    unlinkSync(filler);
    // The next write succeeds: a tag of another repository is verified and its metadata stored.
    const before = listing().length;
    const o = await request(`${tg.url}/v2/disk/other/manifests/v1`, { method: 'HEAD', headers: { accept: other.mediaType } });
    await o.body.dump();
    expect(o.statusCode).toBe(200);
    expect(o.headers['docker-content-digest']).toBe(other.digest);
    await until('values written to the store', () => listing().filter((f) => /^[0-9a-f]{64}$/.test(f)).length > 0 && listing().length > before);
    await until('/readyz ok again', async () => (await readyz(tg.url)).body.status === 'ok');
    expect(listing().filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readFileSync(join(kv, listing().find((f) => /^[0-9a-f]{64}$/.test(f))!)).length).toBeGreaterThan(16);
    // The store loads after a restart on the same directory, and serves what was written.
    await tg.stop();
    const again = await start('store-again', { store: { kind: 'file', path: disk } });
    const a = await request(`${again.url}/v2/disk/other/manifests/v1`, { method: 'HEAD', headers: { accept: other.mediaType } });
    await a.body.dump();
    expect(a.statusCode).toBe(200);
    expect(a.headers['docker-content-digest']).toBe(other.digest);
    expect((await readyz(again.url)).body.status).toBe('ok');
  }, 120_000);
});
