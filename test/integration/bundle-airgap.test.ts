// Air-gapped sites: trust bundles exported from a real notary-server, the server stopped, imported into
// a fresh store (images pushed into a second, internal registry from the same file), and pulled with
// skopeo through trustgate from that registry; unsigned, tampered, expired and rolled-back bundles refused.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const run = promisify(execFile);
const REPO = 'air/app';
let dir: string;
let origin: Registry;
let internal: Registry;
let notary: NotaryLab;
let gun: string;
let v1: PushedImage;
let v2: PushedImage;
let onlineConfig: string;
const bundle1 = () => join(dir, 'bundle-1.json');
const bundle2 = () => join(dir, 'bundle-2.json');

/** The site's configuration: the internal registry, no notary server, trust only from bundles. */
function siteConfig(name: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      upstreams: [{ name: 'internal', registry: internal.url, gun: origin.host, bundle: true, policy: 'enforce' }],
      default: 'internal',
      store: { kind: 'file', path: join(dir, `${name}-store`) },
    }),
  );
  return file;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-airgap-'));
  const pki = await makePki(dir);
  [origin, internal, notary] = await Promise.all([startRegistry(dir), startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  gun = `${origin.host}/${REPO}`;
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(gun);
  v1 = await pushImage(dir, origin.host, REPO, 'v1');
  writeFileSync(join(dir, 'v1'), v1.manifest);
  await cli.sign(gun, 'v1', join(dir, 'v1'));
  onlineConfig = join(dir, 'online.yaml');
  writeFileSync(onlineConfig, stringify({ upstreams: [{ name: 'origin', registry: origin.url, gun: origin.host, notary: { url: notary.url, ca: notary.caFile } }], default: 'origin' }));
  const e1 = await runCli(['bundle', 'export', '--out', bundle1(), '--with-images', '--config', onlineConfig, `${gun}:v1`]);
  expect(e1, e1.stdout).toMatchObject({ code: 0, out: { ok: true, images: 1 } });
  // A later publish, exported too: importing the first after it is a rollback.
  v2 = await pushImage(dir, origin.host, REPO, 'v2');
  writeFileSync(join(dir, 'v2'), v2.manifest);
  await cli.sign(gun, 'v2', join(dir, 'v2'));
  const e2 = await runCli(['bundle', 'export', '--out', bundle2(), '--config', onlineConfig, `${gun}:v2`]);
  expect(e2.code, e2.stdout).toBe(0);
  await notary.stop(); // from here on the site is air-gapped
});

afterAll(async () => {
  await internal?.stop();
  await origin?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('air-gapped trust bundles', () => {
  let proxy: Trustgate;
  afterAll(async () => proxy?.stop());

  it('imports into a fresh store, fills the internal registry, and serves the signed tag', async () => {
    const config = siteConfig('site');
    const imp = await runCli(['bundle', 'import', bundle1(), '--config', config, '--push-to', internal.url]);
    expect(imp, imp.stdout).toMatchObject({ code: 0, out: { ok: true, imagesPushed: 1, repositories: [{ gun, ok: true }] } });
    await pushImage(dir, internal.host, REPO, 'unsigned');
    proxy = await startTrustgate(dir, parseYaml(readFileSync(config, 'utf8')), 'site-proxy');
    const dest = join(dir, 'pulled');
    const r = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${proxy.host}/${REPO}:v1`, `oci:${dest}:x`]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8')).manifests[0].digest).toBe(v1.digest);
  });

  it('refuses an unsigned tag in the internal registry', async () => {
    const res = await fetch(`${proxy.url}/v2/${REPO}/manifests/unsigned`);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ errors: [{ code: 'DENIED', detail: { code: 'TAG_NOT_SIGNED' } }] });
  });

  it('reports versions held and the time left before the earliest expiry', async () => {
    const s = await runCli(['bundle', 'status', '--json', '--config', siteConfig('site')]);
    expect(s.code).toBe(0);
    const [row] = s.out.repositories as Array<{ gun: string; versions: Record<string, number>; secondsLeft: number }>;
    expect(row!.gun).toBe(gun);
    expect(row!.versions.timestamp).toBeGreaterThan(0);
    // notary-server's timestamps live 14 days: that is the earliest expiry.
    expect(row!.secondsLeft).toBeGreaterThan(13 * 86400);
    expect(row!.secondsLeft).toBeLessThanOrEqual(14 * 86400);
    const m = await (await fetch(`${proxy.url}/metrics`)).text();
    expect(m).toMatch(new RegExp(`trustgate_bundle_expiry_seconds\\{gun="${gun.replace(/[.]/g, '\\.')}"\\} \\d+`));
  });

  it('warns in the log when the bundle is about to expire', async () => {
    const config = siteConfig('site');
    const warnCfg = parseYaml(readFileSync(config, 'utf8'));
    warnCfg.limits = { bundleWarnDays: 30 };
    const p = await startTrustgate(dir, warnCfg, 'site-warn');
    await new Promise((r) => setTimeout(r, 500));
    await p.stop();
    expect(readFileSync(p.logFile, 'utf8')).toContain('imported trust bundle expires soon');
  });

  it('refuses a bundle with one altered byte, naming the repository', async () => {
    const doc = JSON.parse(readFileSync(bundle1(), 'utf8'));
    const targets = Buffer.from(doc.repositories[0].files.targets, 'base64');
    const i = Math.floor(targets.length / 2);
    targets[i] = targets[i]! ^ 0x01;
    doc.repositories[0].files.targets = targets.toString('base64');
    writeFileSync(join(dir, 'tampered.json'), JSON.stringify(doc));
    const r = await runCli(['bundle', 'import', join(dir, 'tampered.json'), '--config', siteConfig('tampered')]);
    expect(r.code).toBe(1);
    expect(r.out.error).toBe('HASH_MISMATCH');
    expect(r.out.message).toContain(gun);
  });

  it('after a refused tampered bundle the store is unchanged and the genuine bundle imports (store poisoning)', async () => {
    const config = siteConfig('poison');
    const storeDir = join(dir, 'poison-store', 'kv');
    const r = await runCli(['bundle', 'import', join(dir, 'tampered.json'), '--config', config]);
    expect(r.out.error).toBe('HASH_MISMATCH');
    const files = () => (existsSync(storeDir) ? readdirSync(storeDir).filter((f) => !f.endsWith('.lock')) : []);
    expect(files()).toEqual([]);
    const ok = await runCli(['bundle', 'import', bundle1(), '--config', config]);
    expect(ok, ok.stdout).toMatchObject({ code: 0, out: { ok: true, repositories: [{ gun, ok: true }] } });
    expect(files().length).toBeGreaterThan(0);
  });

  it('refuses an expired bundle', async () => {
    const r = await runCli(['bundle', 'import', bundle1(), '--config', siteConfig('expired'), '--now', '2200-01-01T00:00:00Z']);
    expect(r).toMatchObject({ code: 1, out: { error: 'EXPIRED' } });
  });

  it('refuses a bundle older than what the store holds (rollback)', async () => {
    const config = siteConfig('rollback');
    expect((await runCli(['bundle', 'import', bundle2(), '--config', config])).code).toBe(0);
    const r = await runCli(['bundle', 'import', bundle1(), '--config', config]);
    expect(r).toMatchObject({ code: 1, out: { error: 'ROLLBACK' } });
    expect(r.out.message).toContain(gun);
  });
});
