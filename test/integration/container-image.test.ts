// `npm run image` on this machine, then the image run as users run it: `podman run` (network host, the
// ulimits this sandbox needs), a config file mounted at the documented path, the non-root user, the
// HEALTHCHECK, and a signed image pulled through it while an unsigned one is refused.
// The build is the slow part (a stand-in base made with mmdebstrap when node:20-bookworm-slim cannot
// be pulled; every stage on vfs): it runs once per vitest run (test/support/images.ts, shared with
// compose-fleet.test.ts), in beforeAll, and its time is printed.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { sharedTrustgateImage } from '../support/images.js';
import type { Podman } from '../support/podman.js';
import { freePort } from '../support/spawn-server.js';

const IMAGE = 'localhost/trustgate:dev';
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let podman: Podman;
let signed: PushedImage;
let buildLog = '';
let buildSeconds = 0;
let container: string | undefined;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-image-'));
  chmodSync(dir, 0o755); // the container's user (uid 1000) reads the mounted config and CA from here
  const pki = await makePki(dir);
  const t0 = Date.now();
  const [build] = await Promise.all([
    sharedTrustgateImage().then(({ podman: p, build: b }) => {
      podman = p;
      return b;
    }),
    (async () => {
      [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
      const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
      const gun = `${registry.host}/image/app`;
      await cli.initRepo(gun);
      signed = await pushImage(dir, registry.host, 'image/app', 'signed');
      await pushImage(dir, registry.host, 'image/app', 'unsigned');
      writeFileSync(join(dir, 'm'), signed.manifest);
      await cli.sign(gun, 'signed', join(dir, 'm'));
    })(),
  ]);
  buildSeconds = Math.round((Date.now() - t0) / 1000);
  buildLog = build.out;
  console.log(`npm run image: exit ${build.code} in ${build.seconds} s${build.shared ? ' (built by another test file of this run)' : ''}; ready after ${buildSeconds} s\n${build.out.split('\n').filter((l) => l.startsWith('build-image:')).join('\n')}`);
  if (build.code !== 0) throw new Error(`npm run image failed:\n${build.out.slice(-4000)}`);

  // The config as a site writes it, mounted read-only at the path docs/deployment.md ("Container image") documents.
  port = await freePort();
  const etc = join(dir, 'etc');
  mkdirSync(etc, { mode: 0o755 });
  copyFileSync(notary.caFile, join(etc, 'notary-ca.pem'));
  writeFileSync(
    join(etc, 'config.yaml'),
    stringify({
      store: { kind: 'file', path: './data' },
      upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: '/etc/trustgate/notary-ca.pem' }, policy: 'enforce' }],
      default: 'lab',
    }),
  );
  for (const f of ['config.yaml', 'notary-ca.pem']) chmodSync(join(etc, f), 0o644);
  const run = await podman.run([
    'run', '--detach', '--network', 'host',
    '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=4096:4096',
    '--volume', `${etc}:/etc/trustgate:ro`,
    '--env', 'TRUSTGATE_CONFIG=/etc/trustgate/config.yaml',
    '--env', `TRUSTGATE_LISTEN=127.0.0.1:${port}`,
    IMAGE,
  ]);
  expect(run.code, run.stderr).toBe(0);
  container = run.stdout.trim();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`trustgate in the container did not answer:\n${(await podman.run(['logs', container])).stdout}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}, 1_800_000);

afterAll(async () => {
  if (container && podman) await podman.run(['rm', '--force', '--time', '5', container]);
  await notary?.stop();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the container image (npm run image → podman run)', () => {
  it('was built from the Dockerfile, says which base it used, and carries the documented settings', async () => {
    expect(buildLog).toMatch(/build-image: built localhost\/trustgate:dev from (node:20-bookworm-slim|localhost\/trustgate-base:node20\.\d+\.\d+-bookworm)/);
    // When the stand-in was used the script says so (it cannot be mistaken for the real base).
    if (!/from node:20-bookworm-slim/.test(buildLog)) expect(buildLog).toMatch(/NOTE: localhost\/trustgate:dev is built FROM the stand-in/);
    const r = await podman.run(['image', 'inspect', IMAGE]);
    expect(r.code, r.stderr).toBe(0);
    const [img] = JSON.parse(r.stdout) as Array<{ Config: { User: string; Volumes: Record<string, unknown>; Entrypoint: string[]; Env: string[] }; Healthcheck?: { Test: string[] } }>;
    const cfg = img!.Config;
    // podman reports the (docker-format) HEALTHCHECK at the top level of its inspect output.
    expect(img!.Healthcheck?.Test.join(' ')).toMatch(/node -e .*\/healthz/);
    expect(cfg.User).toBe('node');
    expect(Object.keys(cfg.Volumes)).toEqual(['/app/data']);
    expect(cfg.Entrypoint).toEqual(['node', 'dist/main.js']);
    expect(cfg.Env).toContain('TRUSTGATE_CONFIG=/app/config/default.yaml');
  });

  it('runs as the non-root user and its HEALTHCHECK passes', async () => {
    const id = await podman.run(['exec', container!, 'id', '-u']);
    expect(id.stdout.trim()).toBe('1000');
    const health = await podman.run(['healthcheck', 'run', container!]);
    expect(health.code, `${health.stdout}${health.stderr}`).toBe(0);
  });

  it('pulls a signed image through it and refuses the unsigned tag', async () => {
    const ref = `127.0.0.1:${port}/image/app`;
    const pull = await podman.run(['pull', '--tls-verify=false', '--signature-policy', podman.policy, `${ref}:signed`]);
    expect(pull.code, pull.stderr).toBe(0);
    const digest = await podman.run(['image', 'inspect', '--format', '{{.Digest}}', `${ref}:signed`]);
    expect(digest.stdout.trim()).toBe(signed.digest);
    const refused = await podman.run(['pull', '--tls-verify=false', '--signature-policy', podman.policy, `${ref}:unsigned`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/no valid trust data for [\w./-]+:unsigned/);
    // The file store is on the image's /app/data volume.
    const data = await podman.run(['exec', container!, 'sh', '-c', 'ls -A /app/data | wc -l']);
    expect(Number(data.stdout.trim())).toBeGreaterThan(0);
    const logs = await podman.run(['logs', container!]);
    expect(`${logs.stdout}${logs.stderr}`).toMatch(/"ref":"unsigned".*"decision":"deny"/);
  });
});
