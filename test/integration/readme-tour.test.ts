// README's five-minute tour, run as it stands: every ```sh block of its section, in order, in one bash
// — the real docker-registry, notary-server, notary CLI, skopeo and the built trustgate. Only the
// three ports are swapped for free ones (the tour names 5000, 4443 and 5050, which a shared machine
// may have taken). A tour that no longer works, or whose output README shows no longer matches,
// fails here.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/spawn-server.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const PORTS = ['127.0.0.1:5000', '127.0.0.1:4443', '127.0.0.1:5050'] as const;

/** The ```sh blocks of README's "## A five-minute tour", in order. */
function tourBlocks(readme: string): string[] {
  const start = readme.indexOf('\n## A five-minute tour\n');
  if (start < 0) throw new Error('README.md has no "## A five-minute tour" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The tour's own `mktemp -d` directory ($T). */
  dir: string;
}

let work: string;
let run: Run;
let script: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'readme-tour-'));
  const blocks = tourBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  script = blocks.join('\n');
  for (const p of PORTS) if (!script.includes(p)) throw new Error(`the tour no longer uses ${p}: update PORTS in this test`);
  for (const p of PORTS) script = script.replaceAll(p, `127.0.0.1:${await freePort()}`);
  // Everything the tour starts is in this bash's process group: on any failure the group is stopped
  // by its id below, so a tour that dies half way leaves no server behind.
  const child = spawn('bash', ['-e', '-c', script], { cwd: ROOT, env: { ...process.env, TMPDIR: work }, detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b));
  child.stderr.on('data', (b: Buffer) => (stderr += b));
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGTERM'), 150_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  try {
    process.kill(-child.pid!, 'SIGTERM');
  } catch {
    /* the group is gone: the tour's own `kill $(jobs -p)` stopped everything */
  }
  const dirs = readdirSync(work).filter((d) => d.startsWith('tmp.'));
  run = { code, stdout, stderr, dir: dirs.length === 1 ? join(work, dirs[0]!) : '' };
}, 180_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("README's five-minute tour", () => {
  it('runs to the end: the signed tag is served, the unsigned one refused', () => {
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout.split('\n')).toEqual(expect.arrayContaining(['served', 'refused']));
    expect(existsSync(join(run.dir, 'pulled', 'index.json'))).toBe(true);
    expect(run.stderr).toMatch(/denied: no valid trust data for demo\/app:unsigned \(require dct\)/);
  });

  it('prints the two audit lines README shows: allow by dct targets, deny with TAG_NOT_SIGNED', () => {
    const lines = run.stdout
      .split('\n')
      .filter((l) => l.includes('"audit":true'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      expect.objectContaining({ repo: 'demo/app', ref: 'signed', policy: 'enforce', require: 'dct', role: 'targets', decision: 'allow', satisfiedBy: 'dct targets', msg: 'trust decision' }),
      expect.objectContaining({ repo: 'demo/app', ref: 'unsigned', decision: 'deny', code: 'TAG_NOT_SIGNED', msg: 'trust decision' }),
    ]);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('"ref":"signed","policy":"enforce","require":"dct","digest":"sha256:…","role":"targets","decision":"allow","satisfiedBy":"dct targets"');
    expect(readme).toContain('"ref":"unsigned","policy":"enforce","require":"dct","decision":"deny","code":"TAG_NOT_SIGNED"');
  });

  it('stops what it started: no server of the tour is left listening', async () => {
    const answers = (port: string) =>
      fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) }).then(
        () => true,
        () => false,
      );
    for (const port of new Set([...script.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => m[1]!))) {
      // A SIGTERMed server may take a moment to close its socket.
      let up = true;
      for (let i = 0; i < 50 && (up = await answers(port)); i++) await new Promise((r) => setTimeout(r, 100));
      expect(up, `something still answers on ${port}`).toBe(false);
    }
  });
});
