// A real dockerd for one test file, using a trustgate as its registry mirror (`registry-mirrors`, the
// Docker setup of docs/clients.md): its own data and exec roots and socket under the test's dir, no iptables or
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

const HOLDER_MARK = '# trustgate-test pin holder';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Docker Hub's names to 127.0.0.1 in /etc/hosts (the mapping once; lines carry a mark). Test files run
 * in parallel processes, so each holder adds its own line and the mapping stays until the last live
 * holder lets go.
 */
export function pinHub(): void {
  const hosts = readFileSync('/etc/hosts', 'utf8');
  const mapping = hosts.includes(`${PIN_MARK}\n`) ? '' : HUB_NAMES.map((h) => `127.0.0.1 ${h} ${PIN_MARK}\n`).join('');
  writeFileSync('/etc/hosts', (hosts.endsWith('\n') || hosts === '' ? hosts : `${hosts}\n`) + mapping + `${HOLDER_MARK} ${process.pid}\n`);
}

/** Drop this process's holder line; the mapping goes with the last live holder. */
export function unpinHub(): void {
  const lines = readFileSync('/etc/hosts', 'utf8').split('\n');
  const holder = (l: string) => (l.startsWith(HOLDER_MARK) ? Number(l.slice(HOLDER_MARK.length).trim()) : undefined);
  const others = lines.filter((l) => {
    const pid = holder(l);
    return pid !== undefined && pid !== process.pid && alive(pid);
  });
  const kept = lines.filter((l) => holder(l) === undefined && (others.length > 0 || !l.includes(PIN_MARK)));
  writeFileSync('/etc/hosts', [...kept.filter((l, i) => l !== '' || i < kept.length - 1), ...others].join('\n') + '\n');
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
