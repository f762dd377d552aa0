// trustgate itself as operators run it: `node dist/main.js start --config FILE`, on a free port.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, spawnServer, type RunningServer } from './spawn-server.js';

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;

export interface Trustgate extends RunningServer {
  url: string;
  host: string;
}

export async function startTrustgate(
  dir: string,
  config: Record<string, unknown>,
  name = 'trustgate',
  env: NodeJS.ProcessEnv = {},
  nodeArgs: string[] = [],
): Promise<Trustgate> {
  const port = await freePort();
  const file = join(dir, `${name}-${port}.yaml`);
  // A Redis-backed replica keeps its own trust record (store.localPath) under the test's directory, one
  // per name: never the default ./data/replica of the working directory, shared by every test run.
  const store = config.store as { kind?: string; localPath?: string } | undefined;
  const cfg = store?.kind === 'redis' && store.localPath === undefined ? { ...config, store: { ...store, localPath: join(dir, `${name}-local`) } } : config;
  writeFileSync(file, stringify({ listen: `127.0.0.1:${port}`, store: { kind: 'file', path: join(dir, `${name}-data`) }, ...cfg }));
  const url = `http://127.0.0.1:${port}`;
  const srv = await spawnServer({
    cmd: process.execPath,
    args: [...nodeArgs, MAIN, 'start', '--config', file],
    env: { ...process.env, ...env },
    logFile: join(dir, `${name}-${port}.log`),
    ready: async () => (await fetch(`${url}/healthz`)).status === 200,
  });
  return { ...srv, url, host: `127.0.0.1:${port}` };
}

/** Resident set size of a process, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export interface CliResult {
  /** Exit code: 0 ok, 1 refused, 2 usage. */
  code: number;
  /** The one JSON line the command printed (empty object when it printed none). */
  out: Record<string, unknown> & { error?: string; message?: string };
  stdout: string;
  /** Progress lines and warnings. */
  stderr: string;
}

/** Run the built CLI as an operator would, and parse its one JSON line whatever the exit code. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      if (typeof code !== 'number') return reject(err);
      let out = {};
      try {
        out = JSON.parse(stdout.trim().split('\n').pop() || '{}');
      } catch {
        /* not JSON (inspect --pretty): callers read stdout */
      }
      resolve({ code, out, stdout, stderr });
    });
  });
}
