// Upstream authentication against a real docker-registry configured with token auth (distribution's
// auth.token): trustgate answers the registry's Bearer challenge with a token from the allowlisted
// realm — Basic credentials there and only there — caches it until it expires, and pulls work.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { startTokenServer, type TokenServer } from '../support/token-server.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const run = promisify(execFile);
const REPO = 'private/app';
let dir: string;
let registry: Registry;
let tokens: TokenServer;
let proxy: Trustgate;
let img: PushedImage;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-upauth-'));
  const pki = await makePki(dir);
  tokens = await startTokenServer({ dir, pki, username: 'puller', password: 'pull-secret' });
  // Fill the storage while it is open, then serve the same storage behind token auth.
  const open = await startRegistry(dir);
  img = await pushImage(dir, open.host, REPO, 'v1');
  await open.stop();
  registry = await startRegistry(dir, {
    storage: open.storage,
    tokenAuth: { realm: tokens.realm, service: 'registry.test', issuer: tokens.issuer, rootCertBundle: tokens.certFile },
  });
  proxy = await startTrustgate(
    dir,
    {
      upstreams: [
        // policy off: this test is about upstream authentication; trust has its own tests.
        { name: 'secure', registry: registry.url, gun: registry.host, policy: 'off', username: 'puller', passwordEnv: 'PULL_SECRET', realms: [new URL(tokens.realm).origin], ca: pki.caFile, insecure: true }, // the lab registry is plain http (its realm is https)
      ],
      default: 'secure',
    },
    'upauth',
    { PULL_SECRET: 'pull-secret' },
  );
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  await tokens?.close();
  if (dir && !process.env.KEEP) rmSync(dir, { recursive: true, force: true });
});

describe('upstream registry behind token authentication', () => {
  it('refuses anonymous access itself (the setup is real)', async () => {
    const res = await fetch(`${registry.url}/v2/${REPO}/manifests/v1`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain(tokens.realm);
  });

  it('pulls through trustgate with a token from the allowlisted realm, credentials sent only there', async () => {
    tokens.requests.length = 0;
    const dest = join(dir, 'pulled');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${proxy.host}/${REPO}:v1`, `oci:${dest}:x`], { timeout: 120_000 });
    expect(JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8')).manifests[0].digest).toBe(img.digest);
    expect(tokens.requests.length).toBeGreaterThanOrEqual(1);
    for (const q of tokens.requests) {
      expect(q.scope).toBe(`repository:${REPO}:pull`);
      expect(q.service).toBe('registry.test');
      expect(q.authorization).toBe(`Basic ${Buffer.from('puller:pull-secret').toString('base64')}`);
    }
  });

  it('reuses the token until it expires', async () => {
    tokens.requests.length = 0;
    const res = await fetch(`${proxy.url}/v2/${REPO}/manifests/${img.digest}`);
    expect(res.status).toBe(200);
    const blob = await fetch(`${proxy.url}/v2/${REPO}/blobs/${img.blobs[0]!.digest}`);
    expect(blob.status).toBe(200);
    await blob.arrayBuffer();
    expect(tokens.requests).toHaveLength(0);
  });
});
