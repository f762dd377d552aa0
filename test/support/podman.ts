// The real podman binary (Debian's), rootful, as this machine can run it: vfs storage under a temporary
// --root/--runroot (so nothing touches the host's image store), cgroupfs and no events journal (no
// systemd here). registries.conf and the signature policy are the test's own files, passed by env/flag.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PodmanResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Podman {
  root: string;
  /** Pass as `--signature-policy` to pull/run (a hidden podman flag): the host's policy.json is not ours. */
  policy: string;
  /** The global flags every podman invocation here needs (also what docs/deployment.md shows). */
  globalArgs: string[];
  run(args: string[], opts?: { registriesConf?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<PodmanResult>;
}

export function makePodman(dir: string): Podman {
  const root = join(dir, 'podman');
  mkdirSync(join(root, 'runroot'), { recursive: true });
  const policy = join(root, 'policy.json');
  // Signature policy of containers/image: accept any image; trust is what trustgate enforces, in the path.
  writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const globalArgs = ['--root', join(root, 'storage'), '--runroot', join(root, 'runroot'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
  return {
    root,
    policy,
    globalArgs,
    run: (args, opts = {}) =>
      new Promise((resolve) => {
        const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
        if (opts.registriesConf) env.CONTAINERS_REGISTRIES_CONF = opts.registriesConf;
        execFile('podman', [...globalArgs, ...args], { env, timeout: opts.timeoutMs ?? 180_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
          const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
          resolve({ code, stdout, stderr: stderr || (err && code === -1 ? String(err) : '') });
        });
      }),
  };
}
