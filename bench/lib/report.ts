// Shared by every bench script: print the environment with the figures (pino's runbench habit) and
// write results as JSON under bench/results/ so the figures in docs/benchmarks.md (and README's headline) can be traced to a run.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

export interface BenchEnv {
  date: string;
  node: string;
  cpu: string;
  cores: number;
  memGiB: number;
  commit: string;
}

export function benchEnv(): BenchEnv {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    /* not a git checkout */
  }
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    commit,
  };
}

/** Run `fn` repeatedly for about `ms` milliseconds (after a warm-up) and return operations per second. */
export function opsPerSecond(fn: () => unknown, ms = 1000): number {
  const warm = performance.now() + Math.min(200, ms / 5);
  while (performance.now() < warm) fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 16; i++) fn();
    n += 16;
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

export async function opsPerSecondAsync(fn: () => Promise<unknown>, ms = 1000): Promise<number> {
  const warm = performance.now() + Math.min(200, ms / 5);
  while (performance.now() < warm) await fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    await fn();
    n++;
  }
  return (n * 1000) / (performance.now() - t0);
}

/** The middle sample (the upper one of an even count): what every bench table reports. */
export function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

export function writeResults(name: string, data: object): string {
  const env = benchEnv();
  const dir = new URL('../results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${name}.json`, dir);
  writeFileSync(file, JSON.stringify({ name, env, ...data }, null, 2) + '\n');
  return file.pathname;
}

export function printEnv(): void {
  const e = benchEnv();
  console.log(`# node ${e.node}, ${e.cpu} × ${e.cores}, ${e.memGiB} GiB, commit ${e.commit}, ${e.date}`);
}

/**
 * A bench script's entry: run `main`, report a failure as a non-zero exit, and in any case stop what
 * it started (last started, first stopped) and remove its temp directory.
 */
export function runBench(main: () => Promise<void>, stops: Array<() => Promise<unknown>>, dir: string): void {
  main()
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    })
    .finally(async () => {
      for (const s of stops.reverse()) await s().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    });
}
