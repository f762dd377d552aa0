// Issue 26, crash consistency: trustgate (the built CLI, file store + blob cache, trust from a bundle
// exported from a real notary-server) is killed with SIGKILL, by its pid, at a random point while it
// fills the blob cache (small blobs, a 1 MiB cache: fills and evictions all the time), writes the file
// store (manifests, verified trust) and while a `bundle import` into the same store (a second process:
// the version-floor lock hands off between them) is killed too. After each of at least 50 restarts:
// no temp file left, every committed blob hashes to its name, every value file is whole, the store
// loads (the signed tag still resolves to its digest) and blobs come back with the right bytes.
import { spawn } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob } from '../support/blob-push.js';
import type { Registry } from '../support/docker-registry.js';
import { signedBundleLab } from '../support/bundle-lab.js';
import type { NotaryLab } from '../support/notary-server.js';
import type { PushedImage } from '../support/oci-image.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;
const REPO = 'crash/app';
const KILLS = 50;
let dir: string;
let origin: Registry;
let notary: NotaryLab;
let image: PushedImage;
let bundle: string;
let siteFile: string;
const blobs: string[] = [];
/** How long a whole `bundle import` takes here: its writes come at the end, where the kills aim. */
let importMs = 0;
const store = () => join(dir, 'crash-data');
const site = () => ({
  upstreams: [{ name: 'origin', registry: origin.url, gun: origin.host, bundle: true, policy: 'enforce' }],
  default: 'origin',
  log: { level: 'warn' },
  blobCache: { path: join(store(), 'blobcache'), maxBytes: 1024 * 1024 },
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function killHard(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 10));
}

/** Everything a crash may have left wrong on disk, as a list of findings (empty: consistent). */
function inspectDisk(livePid: number): string[] {
  const bad: string[] = [];
  const kvDir = join(store(), 'kv');
  for (const n of existsSync(kvDir) ? readdirSync(kvDir) : []) {
    const p = join(kvDir, n);
    if (n.endsWith('.tmp')) bad.push(`kv temp file left: ${n}`);
    else if (/^[0-9a-f]{64}$/.test(n)) {
      const raw = readFileSync(p);
      if (raw.length < 16) bad.push(`kv value ${n}: ${raw.length} bytes, shorter than its header`);
      else if (raw.readBigUInt64BE(8) !== 0n && raw.readBigUInt64BE(8) !== BigInt(raw.length - 16)) bad.push(`kv value ${n}: torn`);
    } else if (n.endsWith('.versions')) {
      try {
        JSON.parse(readFileSync(p, 'utf8'));
      } catch {
        bad.push(`version floors ${n}: not whole`);
      }
    }
  }
  const cache = join(store(), 'blobcache');
  const tmp = join(cache, 'tmp');
  for (const d of existsSync(tmp) ? readdirSync(tmp) : []) {
    if (d !== String(livePid)) bad.push(`blob cache temp directory of pid ${d} left`);
    else for (const f of readdirSync(join(tmp, d))) bad.push(`blob cache temp file left: ${f}`);
  }
  const committed = join(cache, 'blobs', 'origin');
  for (const n of existsSync(committed) ? readdirSync(committed) : []) {
    const hex = createHash('sha256').update(readFileSync(join(committed, n))).digest('hex');
    if (hex !== n) bad.push(`committed blob ${n} hashes to ${hex} (${statSync(join(committed, n)).size} bytes)`);
  }
  return bad;
}

/** GET a blob; the digest of what came, or 'cut' when the transfer ended early (the process died). */
async function getBlob(base: string, digest: string): Promise<string> {
  try {
    const r = await request(`${base}/v2/${REPO}/blobs/${digest}`);
    const h = createHash('sha256');
    for await (const c of r.body) h.update(c);
    return r.statusCode === 200 ? `sha256:${h.digest('hex')}` : `status ${r.statusCode}`;
  } catch {
    return 'cut';
  }
}

async function tagDigest(base: string): Promise<string | undefined> {
  const r = await request(`${base}/v2/${REPO}/manifests/v1`, { method: 'HEAD', headers: { accept: image.mediaType } });
  await r.body.dump();
  return r.statusCode === 200 ? String(r.headers['docker-content-digest']) : `status ${r.statusCode}`;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-kill9-'));
  ({ origin, notary, image, bundle } = await signedBundleLab(dir, REPO));
  // Small blobs (48–200 KiB) against a 1 MiB cache: every round fills and evicts.
  for (let i = 0; i < 24; i++) blobs.push(await pushBlob(origin.url, REPO, 48 * 1024 + randomInt(152 * 1024), 100 + i));
  siteFile = join(dir, 'site.yaml');
  writeFileSync(siteFile, stringify({ ...site(), store: { kind: 'file', path: store() } }));
  const t = Date.now();
  const imp = await runCli(['bundle', 'import', bundle, '--config', siteFile]);
  importMs = Date.now() - t;
  expect(imp.code, imp.stdout).toBe(0);
});

afterAll(async () => {
  await origin?.stop();
  await notary?.stop();
  if (dir && !process.env.KEEP) rmSync(dir, { recursive: true, force: true });
});

describe('kill -9 at random points, then restart', () => {
  it(`${KILLS} kills: never a partial or unverified file, no temp files, the store loads`, async () => {
    const started = Date.now();
    let tg: Trustgate | undefined;
    let cutTransfers = 0;
    let completed = 0;
    for (let round = 0; round <= KILLS; round++) {
      tg = await startTrustgate(dir, site(), 'crash');
      // What the previous kill left, seen after the restart's own sweep.
      expect(inspectDisk(tg.pid), `after kill ${round}`).toEqual([]);
      expect(await tagDigest(tg.url), `after kill ${round}: the store loads, the signed tag resolves`).toBe(image.digest);
      if (round === KILLS) break;
      // Load: cold blob pulls (fills, evictions), manifest reads (store writes), and a bundle import.
      const base = tg.url;
      const imp = spawn(process.execPath, [MAIN, 'bundle', 'import', bundle, '--config', siteFile], { stdio: 'ignore' });
      const pulls = Array.from({ length: 6 }, async () => {
        for (;;) {
          const d = blobs[randomInt(blobs.length)]!;
          const got = await getBlob(base, d);
          if (got === 'cut' || got.startsWith('status')) return void cutTransfers++;
          expect(got).toBe(d); // a complete body is always the right bytes
          completed++;
        }
      });
      const tags = (async () => {
        for (;;) if ((await tagDigest(base).catch(() => 'cut')) !== image.digest) return;
      })();
      await Promise.all([
        new Promise((r) => setTimeout(r, randomInt(20, 400))).then(() => killHard(tg!.pid)),
        new Promise((r) => setTimeout(r, randomInt(Math.floor(importMs * 0.5), importMs + 1))).then(() => killHard(imp.pid!)),
      ]);
      await Promise.all([...pulls, tags]);
    }
    await tg?.stop();
    const seconds = (Date.now() - started) / 1000;
    console.log(`kill -9 loop (bundle import ${importMs} ms, killed in its second half): ${KILLS} kills in ${seconds.toFixed(1)} s, ${completed} complete blob transfers (all verified), ${cutTransfers} cut by a kill`);
    expect(completed).toBeGreaterThan(KILLS);
  }, 180_000);
});
