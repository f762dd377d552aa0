// Container images the deployment tests build with the real podman (test/support/podman.ts storage):
// trustgate's own (`npm run image`, scripts/build-image.sh) and a Redis image for deploy/compose.yaml.
// The trustgate image is built ONCE per `vitest` run, into a podman storage under the run's directory
// (global-setup.ts provides it and removes it at the end): the first test file to ask builds it, the
// others wait for that build and use the same storage.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { makePodman, type Podman } from './podman.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TRUSTGATE_IMAGE = 'localhost/trustgate:dev';
export const REDIS_IMAGE = 'localhost/trustgate-test-redis:7';

/** `npm run image` into the podman's storage; resolves with its exit code and output (never throws). */
export function buildTrustgateImage(podman: Podman): Promise<{ code: number; out: string; seconds: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const env = { ...process.env, PODMAN_GLOBAL_ARGS: podman.globalArgs.join(' ') };
    execFile('npm', ['run', '--silent', 'image'], { cwd: REPO_ROOT, env, timeout: 1_500_000, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, out: `${stdout}\n${stderr}`, seconds: Math.round((Date.now() - t0) / 1000) }),
    );
  });
}

export interface ImageBuild {
  code: number;
  out: string;
  seconds: number;
  /** true when another test file of this run built it and this one waited for it. */
  shared: boolean;
}

/** The run's podman (its storage under the run directory) with localhost/trustgate:dev built in it, once. */
export async function sharedTrustgateImage(): Promise<{ podman: Podman; build: ImageBuild }> {
  const runDir = inject('runDir');
  if (!runDir) throw new Error('test/support/global-setup.ts did not provide runDir');
  const podman = makePodman(join(runDir, 'images'));
  const lock = join(runDir, 'trustgate-image.lock');
  const done = join(runDir, 'trustgate-image.json');
  try {
    mkdirSync(lock); // atomic: exactly one test file of the run gets to build
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const deadline = Date.now() + 1_500_000;
    while (!existsSync(done)) {
      if (Date.now() > deadline) throw new Error(`waited 25 min for another test file's npm run image (${done})`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    return { podman, build: { ...(JSON.parse(readFileSync(done, 'utf8')) as ImageBuild), shared: true } };
  }
  const b = await buildTrustgateImage(podman);
  const build = { ...b, shared: false };
  writeFileSync(done, JSON.stringify(build));
  return { podman, build };
}

/** The base image build-image.sh used (the stand-in or node:20-bookworm-slim), from its output. */
export function baseOf(buildOut: string): string {
  const m = /build-image: built \S+ from (\S+)/.exec(buildOut);
  if (!m) throw new Error(`cannot tell which base npm run image used:\n${buildOut.slice(-2000)}`);
  return m[1]!;
}

/**
 * docker.io/library/redis cannot be pulled on these machines: a Redis image with the same contract
 * (`redis-server ARGS` as the command, data in /data, port 6379, reachable from other containers —
 * protected mode off, as in the official image) from Debian's redis-server package, installed with apt
 * inside the build on top of the base trustgate's image was built from. About a minute here.
 */
export async function buildRedisImage(podman: Podman, dir: string, base: string): Promise<void> {
  const ctx = join(dir, 'redis-image');
  mkdirSync(ctx, { recursive: true });
  const entrypoint = '#!/bin/sh\nif [ "$1" = redis-server ]; then shift; exec redis-server --protected-mode no "$@"; fi\nexec "$@"\n';
  writeFileSync(join(ctx, 'entrypoint.sh'), entrypoint, { mode: 0o755 });
  writeFileSync(
    join(ctx, 'Containerfile'),
    [
      'ARG BASE_IMAGE',
      'FROM ${BASE_IMAGE}',
      'USER root',
      'RUN apt-get update -q && apt-get install -y -q --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data',
      'COPY entrypoint.sh /usr/local/bin/entrypoint.sh',
      'WORKDIR /data',
      'VOLUME /data',
      'USER redis',
      'EXPOSE 6379',
      'ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]',
      'CMD ["redis-server"]',
      '',
    ].join('\n'),
  );
  const r = await podman.run(['build', '--pull=never', '--network', 'host', '--format', 'docker', '--layers=false', '--build-arg', `BASE_IMAGE=${base}`, '--tag', REDIS_IMAGE, ctx], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`building ${REDIS_IMAGE} failed:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
}
