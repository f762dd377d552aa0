// containerd's ctr pulls through trustgate configured as the mirror in hosts.toml: a signed tag
// succeeds, an unsigned one fails, and trustgate saw containerd's `?ns=` requests.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, writeHostsToml, type Containerd } from '../support/containerd.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const REPO = 'ctr/app';
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let proxy: Trustgate;
let containerd: Containerd;
let hostsDir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-ctr-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'remote' })]);
  const gun = `${registry.host}/${REPO}`;
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(gun);
  const signed = await pushImage(dir, registry.host, REPO, 'signed');
  await pushImage(dir, registry.host, REPO, 'unsigned');
  writeFileSync(join(dir, 'm'), signed.manifest);
  await cli.sign(gun, 'signed', join(dir, 'm'));
  // No default upstream: containerd names the registry with ?ns=, which must be what selects it.
  proxy = await startTrustgate(dir, {
    upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }],
    log: { level: 'debug' },
  });
  containerd = await startContainerd(dir);
  hostsDir = join(dir, 'hosts');
  writeHostsToml(hostsDir, registry.host, proxy.url);
});

afterAll(async () => {
  await containerd?.stop();
  await proxy?.stop();
  await notary?.stop();
  await registry?.stop();
  if (dir && !process.env.KEEP) rmSync(dir, { recursive: true, force: true });
});

describe('containerd through trustgate (hosts.toml mirror)', () => {
  it('pulls a signed tag', async () => {
    const r = await containerd.pull(`${registry.host}/${REPO}:signed`, hostsDir);
    expect(r.ok, r.out).toBe(true);
    const log = readFileSync(proxy.logFile, 'utf8');
    expect(log).toContain(`"url":"/v2/${REPO}/manifests/signed?ns=${encodeURIComponent(registry.host)}"`);
    expect(log).toMatch(/"decision":"allow"[^\n]*"ref":"signed"|"ref":"signed"[^\n]*"decision":"allow"/);
  });

  it('once a manifest is known, HEAD by tag needs no upstream registry', async () => {
    await registry.stop();
    const res = await fetch(`${proxy.url}/v2/${REPO}/manifests/signed?ns=${encodeURIComponent(registry.host)}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toMatch(/^sha256:/);
  });

  it('fails on an unsigned tag', async () => {
    const r = await containerd.pull(`${registry.host}/${REPO}:unsigned`, hostsDir);
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/403|denied|not found/i);
    const log = readFileSync(proxy.logFile, 'utf8');
    expect(log).toMatch(/"ref":"unsigned"[^\n]*"decision":"deny"|"decision":"deny"[^\n]*"ref":"unsigned"/);
  });
});
