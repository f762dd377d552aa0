// A real dockerd for one test file, using a trustgate as its registry mirror (`registry-mirrors`, the
// README's Docker setup): its own data and exec roots and socket under the test's dir, no iptables or
// bridge, vfs storage, stopped by pid. dockerd falls back to registry-1.docker.io when the mirror fails
// or refuses, so Docker Hub's names are pinned to 127.0.0.1 in /etc/hosts while it runs: nothing leaves
// the machine.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawnServer, type RunningServer } from './spawn-server.js';

const run = promisify(execFile);
const HUB_NAMES = ['registry-1.docker.io', 'index.docker.io', 'auth.docker.io', 'registry.docker.io', 'production.cloudflare.docker.com'];
const PIN_MARK = '# trustgate-test pin';

/** Docker Hub's names to 127.0.0.1 in /etc/hosts (once: lines carry a mark). */
export function pinHub(): void {
  const hosts = readFileSync('/etc/hosts', 'utf8');
  if (!hosts.includes(PIN_MARK)) writeFileSync('/etc/hosts', hosts + HUB_NAMES.map((h) => `127.0.0.1 ${h} ${PIN_MARK}\n`).join(''));
}

/** Remove the marked lines pinHub wrote. */
export function unpinHub(): void {
  const hosts = readFileSync('/etc/hosts', 'utf8');
  writeFileSync('/etc/hosts', hosts.split('\n').filter((l) => !l.includes(PIN_MARK)).join('\n'));
}

export interface Dockerd extends RunningServer {
  /** unix socket path (docker -H unix://…). */
  sock: string;
  /** Run the docker CLI against this daemon; never throws: ok and the CLI's output. */
  docker(args: string[]): Promise<{ ok: boolean; out: string }>;
}

/**
 * Start dockerd under `dir`/dockerd with `mirror` as its registry mirror (plain http, so also an
 * insecure registry); `extra` daemon.json keys are added. Call pinHub first.
 */
export async function startDockerd(dir: string, mirror: { url: string; host: string }, extra: Record<string, unknown> = {}): Promise<Dockerd> {
  const root = join(dir, 'dockerd');
  mkdirSync(root, { recursive: true });
  const sock = join(root, 'docker.sock');
  writeFileSync(
    join(root, 'daemon.json'),
    JSON.stringify({
      iptables: false,
      bridge: 'none',
      'storage-driver': 'vfs',
      'data-root': join(root, 'data'),
      'exec-root': join(root, 'exec'),
      pidfile: join(root, 'docker.pid'),
      hosts: [`unix://${sock}`],
      'registry-mirrors': [mirror.url],
      'insecure-registries': [mirror.host],
      ...extra,
    }),
  );
  const server = await spawnServer({
    cmd: 'dockerd',
    args: ['--config-file', join(root, 'daemon.json')],
    logFile: join(root, 'dockerd.log'),
    ready: async () => (await run('docker', ['-H', `unix://${sock}`, 'version']).then(() => true, () => false)),
    timeoutMs: 60_000,
  });
  const docker = (args: string[]) =>
    run('docker', ['-H', `unix://${sock}`, ...args], { timeout: 120_000 }).then(
      (r) => ({ ok: true, out: r.stdout + r.stderr }),
      (e: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
    );
  return { ...server, sock, docker };
}
