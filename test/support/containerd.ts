// A private containerd (root, state and socket under a temp dir) and its `ctr` client, for pulling
// through trustgate as a mirror configured in hosts.toml — the setup containerd/CRI/k3s users have.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawnServer, type RunningServer } from './spawn-server.js';

const run = promisify(execFile);

export interface Containerd extends RunningServer {
  socket: string;
  /** `ctr images pull` through hosts.toml; resolves with ok and the output. */
  pull(ref: string, hostsDir: string): Promise<{ ok: boolean; out: string }>;
}

export async function startContainerd(dir: string): Promise<Containerd> {
  const base = join(dir, 'containerd');
  mkdirSync(base, { recursive: true });
  const socket = join(base, 'containerd.sock');
  const cfg = join(base, 'config.toml');
  writeFileSync(
    cfg,
    [
      'version = 2',
      `root = "${join(base, 'root')}"`,
      `state = "${join(base, 'state')}"`,
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      '[debug]',
      `  address = "${socket}.debug"`,
      '[metrics]',
      '  address = ""',
      // Only what a pull needs: no CRI plugin, no network plugins.
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
      '',
    ].join('\n'),
  );
  const srv = await spawnServer({
    cmd: 'containerd',
    args: ['--config', cfg],
    logFile: join(base, 'containerd.log'),
    ready: async () => existsSync(socket) && (await run('ctr', ['-a', socket, 'version']).then(() => true, () => false)),
    timeoutMs: 30_000,
  });
  return {
    ...srv,
    socket,
    pull: async (ref, hostsDir) => {
      try {
        const r = await run('ctr', ['-a', socket, 'images', 'pull', '--snapshotter', 'native', '--hosts-dir', hostsDir, ref], { timeout: 120_000 });
        return { ok: true, out: r.stdout + r.stderr };
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string };
        return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
      }
    },
  };
}

/** hosts.toml that sends every pull for `registryHost` to the mirror and nowhere else. */
export function writeHostsToml(hostsDir: string, registryHost: string, mirrorUrl: string): void {
  const d = join(hostsDir, registryHost);
  mkdirSync(d, { recursive: true });
  writeFileSync(
    join(d, 'hosts.toml'),
    // `server` is the mirror too, so containerd has no upstream to fall back to when the mirror refuses.
    `server = "${mirrorUrl}"\n\n[host."${mirrorUrl}"]\n  capabilities = ["pull", "resolve"]\n`,
  );
}
