// Frozen DCT trust end to end with real parts (issue 22): a real notary-server signed with the notary
// CLI, a real docker-registry, trustgate as a process. Trust is verified before `notary.frozenAt`; then
// the notary server is stopped and trustgate's clock moved 30 days ahead (libfaketime, as `faketime -f
// +30d` does), past the server's 14-day timestamps. Frozen tags are served with their verified digests,
// unsigned tags refused, the control without frozenAt refuses the signed tags too; a notary server
// revived at the same URL with other keys is never asked, and a bundle made after the freeze is refused.
import { cpSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli, pushSignedImage } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki, type Pki } from '../support/pki.js';
import { auditRecords, skopeoPull } from '../support/through-proxy.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';
import { stopAndRemove } from '../support/spawn-server.js';

const REPO = 'frozen/app';
const NEVER = 'frozen/never';
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
/** The environment `faketime -f +30d` gives a process (its LD_PRELOAD and offset). */
const PLUS_30D = { LD_PRELOAD: LIBFAKETIME, FAKETIME: '+30d', FAKETIME_DONT_RESET: '1' };

let dir: string;
let pki: Pki;
let registry: Registry;
let notary: NotaryLab | undefined;
let notaryPort: number;
let gun: string;
let v1: PushedImage;
let frozenAt: Date;
let before: Trustgate | undefined;
let frozen: Trustgate | undefined;
let control: Trustgate | undefined;
let imported: Trustgate | undefined;
const earlyBundle = () => join(dir, 'before-freeze.json');

function upstream(extra: Record<string, unknown> = {}) {
  return { name: 'local', registry: registry.url, gun: registry.host, notary: { url: notary?.url ?? `https://127.0.0.1:${notaryPort}`, ca: pki.caFile, ...extra }, policy: 'enforce' };
}

function configFile(name: string, store: string, notaryExtra: Record<string, unknown>): string {
  const f = join(dir, `${name}.yaml`);
  writeFileSync(f, stringify({ upstreams: [upstream(notaryExtra)], default: 'local', store: { kind: 'file', path: store } }));
  return f;
}

async function get(proxy: Trustgate, repo: string, tag: string) {
  const res = await fetch(`${proxy.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, digest: res.headers.get('docker-content-digest'), by: res.headers.get('x-trustgate-verified-by'), body, json: () => JSON.parse(body.toString('utf8')) };
}

async function metric(proxy: Trustgate, name: string): Promise<string[]> {
  const text = await (await fetch(`${proxy.url}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name));
}

beforeAll(async () => {
  if (!existsSync(LIBFAKETIME)) throw new Error(`${LIBFAKETIME} is missing: apt-get install faketime (scripts/ensure-test-deps.sh installs it)`);
  dir = mkdtempSync(join(tmpdir(), 'trustgate-frozen-'));
  pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  notaryPort = Number(new URL(notary.url).port);
  gun = `${registry.host}/${REPO}`;
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  v1 = await pushSignedImage(cli, dir, registry.host, REPO, 'v1');
  await pushImage(dir, registry.host, REPO, 'unsigned');
  // Signed, but never fetched by trustgate before the freeze.
  await pushSignedImage(cli, dir, registry.host, NEVER, 'v1');
  // The freeze is a few seconds ahead: trustgate verifies before it, and the rest of the test runs after.
  frozenAt = new Date(Math.ceil((Date.now() + 12_000) / 1000) * 1000);
  const e = await runCli(['bundle', 'export', '--out', earlyBundle(), '--config', configFile('export', join(dir, 'export-store'), {}), `${gun}:v1`]);
  expect(e.code, e.stdout).toBe(0);
}, 180_000);

afterAll(async () => stopAndRemove(dir, before, frozen, control, imported, notary, registry));

describe('frozen DCT trust', () => {
  it('before frozenAt nothing changes: the tag is verified live and served', async () => {
    before = await startTrustgate(dir, { upstreams: [upstream({ frozenAt: frozenAt.toISOString() })], default: 'local', store: { kind: 'file', path: join(dir, 'store') } }, 'before');
    const r = await get(before, REPO, 'v1');
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.digest).toBe(v1.digest);
    expect(r.by).toBe('dct targets');
    expect(await metric(before, 'trustgate_trust_frozen{')).toEqual(['trustgate_trust_frozen{upstream="local"} 0']);
    // The control's store is this state, copied before anything frozen happens.
    cpSync(join(dir, 'store'), join(dir, 'control-store'), { recursive: true });
  });

  it('from frozenAt on the running proxy answers from the frozen state and says so', async () => {
    await new Promise((r) => setTimeout(r, Math.max(0, frozenAt.getTime() - Date.now() + 500)));
    const fetchesBefore = await metric(before!, 'trustgate_notary_fetches_total');
    const r = await get(before!, REPO, 'v1');
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.digest).toBe(v1.digest);
    expect(r.by).toBe(`dct targets frozen ${frozenAt.toISOString()}`);
    expect(await metric(before!, 'trustgate_trust_frozen{')).toEqual(['trustgate_trust_frozen{upstream="local"} 1']);
    expect(await metric(before!, 'trustgate_notary_fetches_total')).toEqual(fetchesBefore);
    await before!.stop();
    before = undefined;
  });

  it('with the notary server gone and the clock 30 days ahead, frozen tags are served and unsigned ones refused', async () => {
    await notary!.stop();
    notary = undefined;
    frozen = await startTrustgate(dir, { upstreams: [upstream({ frozenAt: frozenAt.toISOString() })], default: 'local', store: { kind: 'file', path: join(dir, 'store') } }, 'frozen', PLUS_30D);
    const r = await get(frozen, REPO, 'v1');
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.digest).toBe(v1.digest);
    expect(r.body.equals(v1.manifest)).toBe(true);
    expect(r.by).toBe(`dct targets frozen ${frozenAt.toISOString()}`);
    const unsigned = await get(frozen, REPO, 'unsigned');
    expect(unsigned.status).toBe(403);
    expect(unsigned.json()).toMatchObject({ errors: [{ code: 'DENIED', detail: { code: 'TAG_NOT_SIGNED' } }] });
    const never = await get(frozen, NEVER, 'v1');
    expect(never.status).toBe(403);
    expect(never.json()).toMatchObject({ errors: [{ code: 'DENIED', detail: { code: 'FROZEN_NO_STATE' } }] });
    const allow = auditRecords(frozen.logFile).find((a) => a.decision === 'allow' && a.ref === 'v1');
    expect(allow).toMatchObject({ digest: v1.digest, frozen: frozenAt.toISOString(), satisfiedBy: `dct targets frozen ${frozenAt.toISOString()}` });
    // The clock really is 30 days ahead in that process: its audit lines say so.
    expect(Number(allow.time) - Date.now()).toBeGreaterThan(29 * 86400e3);
    // A real client pulls the whole frozen image; the unsigned tag fails for it too.
    const pulled = await skopeoPull(frozen.host, REPO, 'v1', dir);
    expect(pulled.ok, pulled.out).toBe(true);
    expect((await skopeoPull(frozen.host, REPO, 'unsigned', dir)).ok).toBe(false);
    expect(await metric(frozen, 'trustgate_notary_fetches_total')).toEqual([]);
  });

  it('control: the same configuration without frozenAt refuses the signed tag', async () => {
    control = await startTrustgate(dir, { upstreams: [upstream()], default: 'local', store: { kind: 'file', path: join(dir, 'control-store') } }, 'control', PLUS_30D);
    const r = await get(control, REPO, 'v1');
    expect([403, 503]).toContain(r.status);
    expect(r.digest).toBeNull();
    await control.stop();
    control = undefined;
  });

  it('a notary server revived at the same URL with other keys signs v1 to another digest: the frozen digest is still served', async () => {
    notary = await startNotary(dir, pki, { signer: 'local', name: 'revived', port: notaryPort });
    const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust-revived'));
    const other = await pushSignedImage(cli, dir, registry.host, REPO, 'v1'); // the registry's v1 now points at it too
    expect(other.digest).not.toBe(v1.digest);
    await frozen!.stop();
    frozen = await startTrustgate(dir, { upstreams: [upstream({ frozenAt: frozenAt.toISOString() })], default: 'local', store: { kind: 'file', path: join(dir, 'store') } }, 'frozen-again', PLUS_30D);
    const r = await get(frozen, REPO, 'v1');
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.digest).toBe(v1.digest);
    expect(r.body.equals(v1.manifest)).toBe(true);
    expect(await metric(frozen, 'trustgate_notary_fetches_total')).toEqual([]);
    // A bundle of the revived server's data, made now (after the freeze), is not accepted.
    const late = join(dir, 'after-freeze.json');
    const e = await runCli(['bundle', 'export', '--out', late, '--config', configFile('export-late', join(dir, 'export-late-store'), {}), `${gun}:v1`]);
    expect(e.code, e.stdout).toBe(0);
    const imp = await runCli(['bundle', 'import', late, '--config', configFile('frozen-import', join(dir, 'store'), { frozenAt: frozenAt.toISOString() })]);
    expect(imp.code, imp.stdout).toBe(1);
    expect(imp.out).toMatchObject({ error: 'FROZEN_NO_STATE' });
    const still = await get(frozen, REPO, 'v1');
    expect(still.digest).toBe(v1.digest);
  });

  it('a bundle exported before the freeze loads a fresh store of a frozen upstream; inspect and bundle status say frozen', async () => {
    const cfg = configFile('fresh-frozen', join(dir, 'fresh-store'), { frozenAt: frozenAt.toISOString() });
    const check = await runCli(['config', 'check', cfg]);
    expect(check.code, check.stdout).toBe(0);
    expect((check.out.warnings as string[] | undefined)?.[0]).toMatch(/no DCT state verified before/);
    const imp = await runCli(['bundle', 'import', earlyBundle(), '--config', cfg], PLUS_30D);
    expect(imp, imp.stdout).toMatchObject({ code: 0, out: { ok: true, repositories: [{ gun, ok: true, frozen: frozenAt.toISOString() }] } });
    const checked = await runCli(['config', 'check', cfg]);
    expect(checked.out.warnings).toBeUndefined();
    imported = await startTrustgate(dir, { upstreams: [upstream({ frozenAt: frozenAt.toISOString() })], default: 'local', store: { kind: 'file', path: join(dir, 'fresh-store') } }, 'imported', PLUS_30D);
    const r = await get(imported, REPO, 'v1');
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.digest).toBe(v1.digest);
    const inspect = await runCli(['inspect', `${gun}:v1`, '--json', '--config', cfg], PLUS_30D);
    expect(inspect.stdout).toContain(`"Frozen":"${frozenAt.toISOString()}"`);
    expect(inspect.stdout).toContain(v1.digest.slice(7));
    const status = await runCli(['bundle', 'status', '--json', '--config', cfg], PLUS_30D);
    expect(status.out).toMatchObject({ repositories: [{ gun, frozen: frozenAt.toISOString() }], frozen: [{ gun, frozenAt: frozenAt.toISOString(), usable: true }] });
  });

  it('config check refuses a frozenAt that is not an RFC 3339 instant', async () => {
    for (const bad of ['2026-12-08', '2026-02-30T00:00:00Z', '2026-12-08T00:00:00', 'tomorrow']) {
      const r = await runCli(['config', 'check', configFile('bad', join(dir, 'bad-store'), { frozenAt: bad })]);
      expect(r.code, `${bad}: ${r.stdout}`).toBe(1);
      expect(r.out.message).toMatch(/frozenAt/);
    }
  });
});
