// deploy/compose.yaml read by the real podman-compose (Debian's, 1.0.3): its translation into podman
// commands (`--dry-run`, against a throw-away podman storage) is checked, and the config file it mounts
// is validated by `trustgate config check` with the environment the compose file gives the replicas.
// The stack itself is brought up (Redis, two replicas, pulls through both) by compose-fleet.test.ts; the
// image alone is run by container-image.test.ts.
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePodman } from '../support/podman.js';
import { runCli } from '../support/trustgate-process.js';

const run = promisify(execFile);
const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));
let dir: string;
let commands: string[][];
let podmanWrapper: string | undefined;
/** Unique per run: the network name podman-compose derives from it is host-global. */
const PROJECT = `tgcompose${process.pid}`;

/** podman-compose prints each podman command it would run; `podman run` lines as shell words. */
function parseRuns(out: string): string[][] {
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((w) => /podman[^/]*$/.test(w[0] ?? '') && w[1] === 'run');
}

const arg = (cmd: string[], flag: string) => cmd.flatMap((w, i) => (w === flag ? [cmd[i + 1]!] : []));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-compose-'));
  copyFileSync(join(DEPLOY, 'compose.yaml'), join(dir, 'compose.yaml'));
  mkdirSync(join(dir, 'trustgate'));
  copyFileSync(join(DEPLOY, 'trustgate', 'config.example.yaml'), join(dir, 'trustgate', 'config.yaml'));
  // podman-compose runs `podman volume create` even in --dry-run: point it at a podman with its own storage.
  const podman = makePodman(dir);
  const wrapper = join(dir, 'podman-with-temp-storage');
  writeFileSync(wrapper, `#!/bin/sh\nexec podman ${podman.globalArgs.join(' ')} "$@"\n`);
  chmodSync(wrapper, 0o755);
  podmanWrapper = wrapper;
  const { stdout, stderr } = await run('podman-compose', ['--podman-path', wrapper, '--project-name', PROJECT, '--dry-run', '-f', 'compose.yaml', 'up', '-d'], { cwd: dir, timeout: 60_000 });
  commands = parseRuns(`${stdout}\n${stderr}`);
});

afterAll(async () => {
  // --dry-run still creates the project's network, and rootful CNI networks live in /etc/cni/net.d,
  // outside the temporary storage: remove exactly the one this test made.
  if (podmanWrapper) {
    await run(podmanWrapper, ['network', 'rm', `${PROJECT}_default`]).catch(() => undefined);
    const left = await run(podmanWrapper, ['network', 'exists', `${PROJECT}_default`]).then(() => true, () => false);
    expect(left).toBe(false);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('deploy/compose.yaml with podman-compose', () => {
  it('gives one Redis and two trustgate replicas sharing it, the config directory mounted read-only into both', () => {
    const byService = Object.fromEntries(commands.map((c) => [arg(c, '--label').find((l) => l.startsWith('com.docker.compose.service='))!.split('=')[1]!, c]));
    expect(Object.keys(byService).sort()).toEqual(['redis', 'trustgate-a', 'trustgate-b']);
    const net = arg(byService.redis!, '--net')[0];
    expect(arg(byService.redis!, '--network-alias')).toEqual(['redis']);
    expect(byService.redis!.join(' ')).toMatch(/redis-server --appendonly yes/);
    const ports: string[] = [];
    for (const name of ['trustgate-a', 'trustgate-b']) {
      const c = byService[name]!;
      expect(c).toContain('localhost/trustgate:dev');
      expect(arg(c, '--net')).toEqual([net]);
      expect(arg(c, '-e')).toEqual(expect.arrayContaining(['TRUSTGATE_CONFIG=/etc/trustgate/config.yaml', 'TRUSTGATE_REDIS_URL=redis://redis:6379']));
      expect(arg(c, '-v')).toEqual([`${join(dir, 'trustgate')}:/etc/trustgate:ro`]);
      expect(arg(c, '--ulimit')).toEqual(['nofile=20000:20000']);
      ports.push(...arg(c, '-p'));
    }
    expect(ports).toEqual(['127.0.0.1:5051:5050', '127.0.0.1:5052:5050']);
  });

  it('the mounted config is valid with the environment the replicas get: Redis store, listening on all interfaces', async () => {
    const r = await runCli(['config', 'check', join(dir, 'trustgate', 'config.yaml')], { TRUSTGATE_REDIS_URL: 'redis://redis:6379', TRUSTGATE_LISTEN: '0.0.0.0:5050' });
    expect(r.out).toMatchObject({ ok: true, listen: '0.0.0.0:5050', store: 'redis', upstreams: ['hub'] });
    expect(r.code).toBe(0);
  });
});
