// The playbook of docs/migration.md, step by step, against the project's own test setup (issue 22,
// point 4): a real notary-server signed with the notary CLI, a real docker-registry, skopeo pulling.
//  1. before the shutdown, trustgate verifies the repository (a pull of each signed tag);
//  2. notary.frozenAt passes and the notary server is stopped;
//  3. `trustgate resign` re-signs every signed tag into the site's signature repository, from the
//     frozen state (nobody to ask any more);
//  4. `require: { any-of: [dct, cosign] }` serves the DCT-signed tags and a tag signed with cosign only;
//  5. `require: cosign` alone, with no notary server configured, serves the re-signed tags.
// Unsigned tags are refused at every step.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCosignKey, pushClassicSignatures, signPayload, simpleSigningPayload } from '../support/cosign-sign.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli, pushSignedImage } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki, type Pki } from '../support/pki.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { skopeoPull } from '../support/through-proxy.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;
const REPO = 'hub/app';
const SIGS = 'sigs/store';
let dir: string;
let pki: Pki;
let registry: Registry;
let notary: NotaryLab | undefined;
let notaryUrl: string;
let proxy: Trustgate | undefined;
let frozenAt: Date;
const img: Record<string, PushedImage> = {};
const key = makeCosignKey();
let keyFile: string;
let pubFile: string;

const store = () => ({ kind: 'file', path: join(dir, 'store') });
const notaryBlock = () => ({ url: notaryUrl, ca: pki.caFile, frozenAt: frozenAt.toISOString() });
const cosignBlock = () => ({ keys: [pubFile], repository: `${registry.host}/${SIGS}` });

async function serve(name: string, upstream: Record<string, unknown>): Promise<Trustgate> {
  await proxy?.stop();
  proxy = await startTrustgate(dir, { upstreams: [{ name: 'site', registry: registry.url, gun: registry.host, policy: 'enforce', ...upstream }], default: 'site', store: store() }, name);
  return proxy;
}

async function get(tag: string): Promise<{ status: number; digest: string | null; by: string | null; code?: string }> {
  const res = await fetch(`${proxy!.url}/v2/${REPO}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const text = await res.text();
  return { status: res.status, digest: res.headers.get('docker-content-digest'), by: res.headers.get('x-trustgate-verified-by'), ...(res.status === 200 ? {} : { code: JSON.parse(text).errors?.[0]?.detail?.code }) };
}

function resign(config: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [MAIN, 'resign', '--config', config, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      if (typeof code !== 'number') return reject(err);
      resolve({ code, stdout, stderr });
    }),
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-playbook-'));
  pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  notaryUrl = notary.url;
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  img.v1 = await pushSignedImage(cli, dir, registry.host, REPO, 'v1');
  img.v2 = await pushSignedImage(cli, dir, registry.host, REPO, 'v2', false);
  img.unsigned = await pushImage(dir, registry.host, REPO, 'unsigned');
  keyFile = join(dir, 'cosign.key');
  pubFile = join(dir, 'cosign.pub');
  writeFileSync(keyFile, key.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(pubFile, key.publicPem);
  frozenAt = new Date(Math.ceil((Date.now() + 8_000) / 1000) * 1000);
}, 180_000);

afterAll(async () => stopAndRemove(dir, proxy, notary, registry));

describe('the migration playbook', () => {
  it('1. before the shutdown: trustgate, with frozenAt set ahead, verifies the signed tags', async () => {
    await serve('before', { notary: notaryBlock() });
    for (const tag of ['v1', 'v2']) { const r = await get(tag); expect(r, JSON.stringify(r)).toMatchObject({ status: 200, digest: img[tag]!.digest, by: 'dct targets' }); }
    expect(await get('unsigned')).toMatchObject({ status: 403, code: 'TAG_NOT_SIGNED' });
  });

  it('2. the freeze passes and the notary server goes away: the tags are still served, frozen', async () => {
    await new Promise((r) => setTimeout(r, Math.max(0, frozenAt.getTime() - Date.now() + 300)));
    await notary!.stop();
    notary = undefined;
    await serve('frozen', { notary: notaryBlock() });
    expect(await get('v1')).toMatchObject({ status: 200, digest: img.v1!.digest, by: `dct targets frozen ${frozenAt.toISOString()}` });
  });

  it('3. resign re-signs every signed tag into the signature repository, from the frozen state', async () => {
    const config = join(dir, 'resign.yaml');
    writeFileSync(config, stringify({ store: store(), upstreams: [{ name: 'site', registry: registry.url, gun: registry.host, notary: notaryBlock(), policy: 'enforce' }], default: 'site' }));
    const report = join(dir, 'report.jsonl');
    const r = await resign(config, ['--to', 'cosign', '--key', keyFile, '--into', `${registry.host}/${SIGS}`, '--report', report, `${registry.host}/${REPO}`]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = (await import('node:fs')).readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { tag: string; digest: string; result: string; dct: { verifiedAt: string } });
    expect(lines.map((l) => [l.tag, l.result, l.digest]).sort()).toEqual([
      ['v1', 'signed', img.v1!.digest],
      ['v2', 'signed', img.v2!.digest],
    ]);
  });

  it('4. any-of [dct, cosign] serves the frozen DCT tags and a tag signed with cosign only', async () => {
    img.v3 = await pushImage(dir, registry.host, REPO, 'v3');
    const payload = simpleSigningPayload(img.v3.digest, { repo: `${registry.host}/${REPO}` });
    await pushClassicSignatures(registry.url, SIGS, img.v3.digest, [{ payload, signature: signPayload(payload, key.privateKey) }]);
    await serve('migrating', { notary: notaryBlock(), cosign: cosignBlock(), require: { 'any-of': ['dct', 'cosign'] } });
    expect(await get('v1')).toMatchObject({ status: 200, digest: img.v1!.digest, by: `dct targets frozen ${frozenAt.toISOString()}` });
    const v3 = await get('v3');
    expect(v3).toMatchObject({ status: 200, digest: img.v3.digest });
    expect(v3.by).toMatch(/^cosign /);
    expect(await get('unsigned')).toMatchObject({ status: 403 });
    const pulled = await skopeoPull(proxy!.host, REPO, 'v3', dir);
    expect(pulled.ok, pulled.out).toBe(true);
  });

  it('5. later, require: cosign alone, with no notary server configured, serves the re-signed tags', async () => {
    await serve('cosign-only', { cosign: cosignBlock(), require: 'cosign' });
    for (const tag of ['v1', 'v2', 'v3']) {
      const r = await get(tag);
      expect(r, tag).toMatchObject({ status: 200, digest: img[tag]!.digest });
      expect(r.by).toMatch(new RegExp(`^cosign .* from ${registry.host}/${SIGS}$`));
    }
    expect(await get('unsigned')).toMatchObject({ status: 403, code: 'COSIGN_UNSIGNED' });
    const pulled = await skopeoPull(proxy!.host, REPO, 'v1', dir);
    expect(pulled.ok, pulled.out).toBe(true);
  });
});
