// The proxy end to end with real parts: docker-registry upstream (images pushed by skopeo), a real
// notary-server signed with the notary CLI, trustgate started as a process, skopeo pulling through it.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, tufRequestsFor, type NotaryLab } from '../support/notary-server.js';
import { pushImage, pushIndex, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const run = promisify(execFile);
const REPO = 'team/app';
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let proxy: Trustgate;
let cli: NotaryCli;
let gun: string;
const images: Record<string, PushedImage> = {};

async function skopeoCopy(src: string, name: string, all = false): Promise<{ ok: boolean; out: string; dir: string }> {
  const dest = join(dir, `copy-${name}`);
  try {
    const r = await run('skopeo', ['copy', ...(all ? ['--all'] : []), '--src-tls-verify=false', `docker://${src}`, `oci:${dest}:x`], { timeout: 120_000 });
    return { ok: true, out: r.stdout + r.stderr, dir: dest };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}`, dir: dest };
  }
}

/** What an OCI layout holds: the top manifest's digest and every blob's bytes by digest. */
function layoutContent(layout: string): { top: string; blobs: Map<string, string> } {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const blobs = new Map<string, string>();
  for (const f of readdirSync(join(layout, 'blobs', 'sha256'))) {
    blobs.set(f, createHash('sha256').update(readFileSync(join(layout, 'blobs', 'sha256', f))).digest('hex'));
  }
  return { top: index.manifests[0].digest, blobs };
}

async function signImage(tag: string, img: PushedImage): Promise<void> {
  const f = join(dir, `manifest-${tag}`);
  writeFileSync(f, img.manifest);
  await cli.sign(gun, tag, f);
}

/** Where docker-registry keeps a blob's bytes (filesystem driver layout). */
function storagePath(digest: string): string {
  const hex = digest.slice(7);
  return join(registry.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-proxy-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  gun = `${registry.host}/${REPO}`;
  cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(gun);
  for (const tag of ['v1', 'unsigned', 'moved', 'gone', 'tampered']) images[tag] = await pushImage(dir, registry.host, REPO, tag);
  images.idx = await pushIndex(dir, registry.host, REPO, 'idx');
  images.audited = await pushImage(dir, registry.host, 'audit/app', 'unsigned');
  images.open = await pushImage(dir, registry.host, 'open/app', 'unsigned');
  for (const tag of ['v1', 'moved', 'gone', 'tampered', 'idx']) await signImage(tag, images[tag]!);
  proxy = await startTrustgate(dir, {
    upstreams: [
      {
        name: 'local',
        registry: registry.url,
        gun: registry.host,
        notary: { url: notary.url, ca: notary.caFile },
        policy: 'enforce',
        repositories: [
          { match: 'audit/*', policy: 'audit' },
          { match: 'open/**', policy: 'off' },
        ],
      },
    ],
    default: 'local',
    log: { level: 'info' },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await notary?.stop();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('trust-enforcing proxy with skopeo', () => {
  it('a signed tag pulls through the proxy and equals a direct copy', async () => {
    const via = await skopeoCopy(`${proxy.host}/${REPO}:v1`, 'v1-proxy');
    expect(via.ok, via.out).toBe(true);
    const direct = await skopeoCopy(`${registry.host}/${REPO}:v1`, 'v1-direct');
    expect(direct.ok, direct.out).toBe(true);
    const a = layoutContent(via.dir);
    const b = layoutContent(direct.dir);
    expect(a.top).toBe(images.v1!.digest);
    expect(a).toEqual(b);
  });

  it('an unsigned tag is refused with DENIED and a message naming the tag', async () => {
    const r = await skopeoCopy(`${proxy.host}/${REPO}:unsigned`, 'unsigned');
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/denied/i);
    expect(r.out).toContain('no valid trust data for team/app:unsigned');
    const res = await fetch(`${proxy.url}/v2/${REPO}/manifests/unsigned`);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ errors: [{ code: 'DENIED', detail: { code: 'TAG_NOT_SIGNED' } }] });
  });

  it('a tag re-pushed after signing still yields the signed image', async () => {
    const other = await pushImage(dir, registry.host, REPO, 'moved', 'moved-again');
    expect(other.digest).not.toBe(images.moved!.digest);
    const r = await skopeoCopy(`${proxy.host}/${REPO}:moved`, 'moved');
    expect(r.ok, r.out).toBe(true);
    expect(layoutContent(r.dir).top).toBe(images.moved!.digest);
  });

  it('fails with MANIFEST_UNKNOWN once the signed digest is gone upstream', async () => {
    const del = await fetch(`${registry.url}/v2/${REPO}/manifests/${images.gone!.digest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    const res = await fetch(`${proxy.url}/v2/${REPO}/manifests/gone`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ errors: [{ code: 'MANIFEST_UNKNOWN' }] });
    const r = await skopeoCopy(`${proxy.host}/${REPO}:gone`, 'gone');
    expect(r.ok).toBe(false);
  });

  it('refuses a registry that serves other bytes under the signed digest', async () => {
    const p = storagePath(images.tampered!.digest);
    const bytes = readFileSync(p);
    // Same length, still a valid manifest the registry will serve: only the content hash tells.
    const tampered = Buffer.from(bytes.toString('utf8').replace(/"size":(\d)/, (_m, d: string) => `"size":${(Number(d) + 1) % 10}`));
    expect(tampered.equals(bytes)).toBe(false);
    writeFileSync(p, tampered);
    const res = await fetch(`${proxy.url}/v2/${REPO}/manifests/tampered`);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ errors: [{ code: 'DENIED', detail: { code: 'DIGEST_MISMATCH' } }] });
  });

  it('a never-seen GUN whose registry serves other bytes under the signed digest is refused (the fetch that overlaps the floor writes)', async () => {
    // A cold tag: the manifest by digest is asked for the moment the trust update verified, while its
    // floors are still being written (issue 23). It is checked exactly as before.
    const repo = 'cold/tampered';
    const coldGun = `${registry.host}/${repo}`;
    await cli.initRepo(coldGun);
    const img = await pushImage(dir, registry.host, repo, 'v1');
    const f = join(dir, 'manifest-cold-tampered');
    writeFileSync(f, img.manifest);
    await cli.sign(coldGun, 'v1', f);
    const p = storagePath(img.digest);
    writeFileSync(p, Buffer.from(readFileSync(p, 'utf8').replace(/"size":(\d)/, (_m, d: string) => `"size":${(Number(d) + 1) % 10}`)));
    const before = tufRequestsFor(notary, coldGun).length; // the notary CLI's own
    for (const ref of ['v1', 'v1', img.digest]) {
      const res = await fetch(`${proxy.url}/v2/${repo}/manifests/${ref}`);
      expect(res.status, ref).toBe(403);
      expect(await res.json()).toMatchObject({ errors: [{ code: 'DENIED', detail: { code: 'DIGEST_MISMATCH' } }] });
    }
    expect(tufRequestsFor(notary, coldGun).slice(before)).toContain('root.json'); // trustgate's first contact: a cold update
  });

  it('pulls by digest', async () => {
    const r = await skopeoCopy(`${proxy.host}/${REPO}@${images.unsigned!.digest}`, 'by-digest');
    expect(r.ok, r.out).toBe(true);
    expect(layoutContent(r.dir).top).toBe(images.unsigned!.digest);
  });

  it('pulls a signed image index with every platform', async () => {
    const r = await skopeoCopy(`${proxy.host}/${REPO}:idx`, 'idx', true);
    expect(r.ok, r.out).toBe(true);
    const c = layoutContent(r.dir);
    expect(c.top).toBe(images.idx!.digest);
    for (const child of (images.idx as PushedImage & { children: Array<{ digest: string }> }).children) expect(c.blobs.has(child.digest.slice(7))).toBe(true);
  });

  it('HEAD by tag answers with the signed digest, type and length', async () => {
    const res = await fetch(`${proxy.url}/v2/${REPO}/manifests/v1`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(images.v1!.digest);
    expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(Number(res.headers.get('content-length'))).toBe(images.v1!.manifest.length);
  });

  it('selects the upstream by path prefix as well as by default', async () => {
    const res = await fetch(`${proxy.url}/v2/local/${REPO}/manifests/v1`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(images.v1!.digest);
  });

  it('lists only signed tags, with n/last pagination', async () => {
    const all = await (await fetch(`${proxy.url}/v2/${REPO}/tags/list`)).json();
    expect(all).toEqual({ name: REPO, tags: ['gone', 'idx', 'moved', 'tampered', 'v1'] });
    const p1 = await fetch(`${proxy.url}/v2/${REPO}/tags/list?n=2`);
    expect(await p1.json()).toEqual({ name: REPO, tags: ['gone', 'idx'] });
    expect(p1.headers.get('link')).toBe(`</v2/${REPO}/tags/list?n=2&last=idx>; rel="next"`);
    expect(await (await fetch(`${proxy.url}/v2/${REPO}/tags/list?n=2&last=idx`)).json()).toEqual({ name: REPO, tags: ['moved', 'tampered'] });
  });

  it('policy audit serves an unsigned tag and logs what enforce would have refused; policy off passes', async () => {
    const audited = await skopeoCopy(`${proxy.host}/audit/app:unsigned`, 'audited');
    expect(audited.ok, audited.out).toBe(true);
    expect(layoutContent(audited.dir).top).toBe(images.audited!.digest);
    const open = await skopeoCopy(`${proxy.host}/open/app:unsigned`, 'open');
    expect(open.ok, open.out).toBe(true);
    const lines = readFileSync(proxy.logFile, 'utf8').split('\n').filter((l) => l.includes('"audit":true')).map((l) => JSON.parse(l));
    expect(lines.find((l) => l.repo === 'audit/app')).toMatchObject({ decision: 'audit-allow', policy: 'audit', code: 'TRUST_DATA_MISSING' });
    expect(lines.find((l) => l.repo === 'open/app')).toMatchObject({ decision: 'pass', policy: 'off', digest: images.open!.digest });
  });

  it('writes one audit line per decision', () => {
    const lines = readFileSync(proxy.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"audit":true'))
      .map((l) => JSON.parse(l));
    const denied = lines.find((l) => l.ref === 'unsigned');
    expect(denied).toMatchObject({ upstream: 'local', gun, repo: REPO, decision: 'deny', code: 'TAG_NOT_SIGNED', policy: 'enforce' });
    expect(typeof denied.durationMs).toBe('number');
    const allowed = lines.find((l) => l.ref === 'v1' && l.decision === 'allow');
    expect(allowed).toMatchObject({ digest: images.v1!.digest, role: 'targets' });
  });
});
