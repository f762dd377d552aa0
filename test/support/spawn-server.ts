// Start a real server process for a test, wait until it answers, and stop it by its pid — never
// anything the test did not start. Output goes to a log file whose tail is shown on failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, rmSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';

export interface RunningServer {
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * A port for a server a test is about to start. Taken from below the kernel's ephemeral range, in a
 * block of its own per vitest worker: asking the kernel for port 0 and closing it (the old way) handed
 * out ports that an outgoing connection or another test file's server could take before our server
 * bound it — and then `ready()` saw somebody else's server answer (one CI run: the notary CLI got EOF).
 * Outgoing connections never use ports below the ephemeral range, and no other worker uses this block.
 */
const BLOCK = 1500;
const BLOCKS = 8;
const FIRST = 20_000;
let cursor: number | undefined;

function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32_768;
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function freePort(): Promise<number> {
  // A machine whose ephemeral range reaches down here: no safe block, the kernel's choice it is.
  if (ephemeralLow() < FIRST + BLOCK * BLOCKS) return kernelPort();
  // vitest numbers its workers 1..maxWorkers; anything else (bench scripts) has block 0.
  const base = FIRST + (Number(process.env.VITEST_POOL_ID ?? 0) % BLOCKS) * BLOCK;
  // Test files run one after another in a worker, each in a fresh process: a random start keeps a
  // file from reusing the ports the previous file's servers just gave up.
  cursor ??= randomInt(BLOCK);
  for (let i = 0; i < BLOCK; i++) {
    const port = base + (cursor++ % BLOCK);
    if (await canBind(port)) return port;
  }
  throw new Error(`freePort: no free port in ${base}-${base + BLOCK - 1}`);
}

export function logTail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function spawnServer(opts: {
  cmd: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolves true once the server is ready. */
  ready: () => Promise<boolean>;
  timeoutMs?: number;
}): Promise<RunningServer> {
  const fd = openSync(opts.logFile, 'a');
  const child: ChildProcess = spawn(opts.cmd, opts.args, { stdio: ['ignore', fd, fd], env: opts.env ?? process.env, cwd: opts.cwd });
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  const stop = async () => {
    if (exited !== undefined) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  };
  for (;;) {
    const failed = await Promise.race([spawnError, new Promise<null>((r) => setTimeout(() => r(null), 100))]);
    if (failed) throw new Error(`${opts.cmd} could not be started: ${failed.message}`);
    if (exited !== undefined) throw new Error(`${opts.cmd} exited with ${exited}:\n${logTail(opts.logFile)}`);
    if (await opts.ready().catch(() => false)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${opts.cmd} did not become ready:\n${logTail(opts.logFile)}`);
    }
  }
  return { pid: child.pid!, logFile: opts.logFile, stop };
}

/** A test file's afterAll: stop what it started in the order given (skipping what never started), then remove its temp dir. */
export async function stopAndRemove(dir: string | undefined, ...servers: Array<{ stop(): Promise<void> } | undefined>): Promise<void> {
  for (const s of servers) await s?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}
