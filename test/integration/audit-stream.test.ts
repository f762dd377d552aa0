// The audit stream with real parts: one line per decision whatever `log.level` says, nothing lost
// when SIGTERM lands in the middle of a burst, and `audit.path` reopened on SIGHUP (logrotate).
import { existsSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { logLines } from '../support/through-proxy.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const REPO = 'audit/app';
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let signed: PushedImage;
const started: Trustgate[] = [];

function config(extra: Record<string, unknown> = {}) {
  return {
    upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }],
    default: 'lab',
    ...extra,
  };
}

async function start(name: string, extra: Record<string, unknown> = {}): Promise<Trustgate> {
  const tg = await startTrustgate(dir, config(extra), name);
  started.push(tg);
  return tg;
}

const auditLines = (file: string) => logLines(file).filter((l) => l.audit === true);

/** Lines are written asynchronously: wait (bounded) until `file` holds `n` audit lines. */
async function waitForAudit(file: string, n: number): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const got = auditLines(file);
    if (got.length >= n || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function pull(base: string, tag: string, method: 'GET' | 'HEAD' = 'GET'): Promise<number> {
  const r = await request(`${base}/v2/${REPO}/manifests/${tag}`, { method, headers: { accept: signed.mediaType } });
  await r.body.dump();
  return r.statusCode;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-audit-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  const gun = `${registry.host}/${REPO}`;
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(gun);
  signed = await pushImage(dir, registry.host, REPO, 'v1');
  await pushImage(dir, registry.host, REPO, 'unsigned');
  writeFileSync(join(dir, 'v1'), signed.manifest);
  await cli.sign(gun, 'v1', join(dir, 'v1'));
}, 120_000);

afterAll(() => stopAndRemove(dir, ...started, notary, registry));

describe('audit stream', () => {
  it.each(['warn', 'silent'] as const)('writes every decision with log.level %s, while info lines are dropped', async (level) => {
    const tg = await start(`level-${level}`, { log: { level } });
    expect(await pull(tg.url, 'v1')).toBe(200);
    expect(await pull(tg.url, 'unsigned')).toBe(403);
    expect(await pull(tg.url, 'v1', 'HEAD')).toBe(200);
    const audit = await waitForAudit(tg.logFile, 3);
    expect(audit.map((l) => [l.ref, l.decision])).toEqual([
      ['v1', 'allow'],
      ['unsigned', 'deny'],
      ['v1', 'allow'],
    ]);
    expect(audit[1]).toMatchObject({ code: 'TAG_NOT_SIGNED', gun: `${registry.host}/${REPO}` });
    expect(audit[1]).not.toHaveProperty('digest');
    expect(audit[0]).toMatchObject({ digest: signed.digest, role: 'targets', level: 30, msg: 'trust decision' });
    // The operational log really is at `level`: its info line at start is not there.
    expect(logLines(tg.logFile).filter((l) => l.msg === 'trustgate listening')).toHaveLength(0);
  });

  it('one request at a time, the line is in the file before the client has its response', async () => {
    // What log-reading tests and operators tailing the file rely on: when the writer is idle, a line is
    // written synchronously before its response leaves; only the lines behind it in a busy turn wait.
    const tg = await start('sequential');
    for (let i = 1; i <= 20; i++) {
      expect(await pull(tg.url, i % 4 === 0 ? 'unsigned' : 'v1', i % 2 ? 'HEAD' : 'GET')).toBe(i % 4 === 0 ? 403 : 200);
      expect(auditLines(tg.logFile)).toHaveLength(i);
    }
  });

  it('loses no audit line when SIGTERM arrives in the middle of a burst: lines = responses received', async () => {
    const tg = await start('burst', { limits: { shutdownGraceSeconds: 20 } });
    const pool = new Pool(tg.url, { connections: 32, pipelining: 1 });
    let received = 0;
    let failed = 0;
    let signalled: Promise<void> | undefined;
    const one = async (i: number) => {
      try {
        const r = await pool.request({ path: `/v2/${REPO}/manifests/${i % 5 === 0 ? 'unsigned' : 'v1'}`, method: i % 2 ? 'HEAD' : 'GET', headers: { accept: signed.mediaType } });
        await r.body.dump();
        if (r.statusCode === 200 || r.statusCode === 403) received++;
        // SIGTERM "at once": while the burst is in full flight, a few hundred responses in.
        if (received === 300) signalled = tg.stop();
      } catch {
        failed++; // refused after the listener closed: no response, so no line is owed
      }
    };
    await Promise.all(Array.from({ length: 4000 }, (_, i) => one(i)));
    await signalled;
    await pool.close().catch(() => undefined);
    expect(signalled).toBeDefined();
    // The burst was really cut short by the shutdown, and still went on after the signal.
    expect(failed).toBeGreaterThan(0);
    expect(received).toBeGreaterThan(300);
    const audit = auditLines(tg.logFile);
    expect(audit.length).toBe(received);
    expect(logLines(tg.logFile).some((l) => l.msg === 'stopped')).toBe(true);
  }, 60_000);

  it('appends to audit.path instead of stdout and reopens it on SIGHUP (logrotate)', async () => {
    const file = join(dir, 'audit', 'audit.log');
    const tg = await start('file', { audit: { path: file } });
    for (let i = 0; i < 5; i++) expect(await pull(tg.url, i === 4 ? 'unsigned' : 'v1')).toBe(i === 4 ? 403 : 200);
    expect(await waitForAudit(file, 5)).toHaveLength(5);
    renameSync(file, `${file}.1`);
    process.kill(tg.pid, 'SIGHUP');
    // The new file appears once trustgate has reopened the path.
    const deadline = Date.now() + 5000;
    while (!existsSync(file) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(file)).toBe(true);
    for (let i = 0; i < 3; i++) expect(await pull(tg.url, 'v1')).toBe(200);
    expect(await waitForAudit(file, 3)).toHaveLength(3);
    expect(auditLines(`${file}.1`)).toHaveLength(5);
    // Still alive after SIGHUP (its default action would have killed it), and stdout has no audit line.
    expect(await pull(tg.url, 'v1', 'HEAD')).toBe(200);
    expect(await waitForAudit(file, 4)).toHaveLength(4);
    expect(auditLines(tg.logFile)).toHaveLength(0);
    expect(logLines(tg.logFile).some((l) => l.msg === 'trustgate listening')).toBe(true);
  });
});
