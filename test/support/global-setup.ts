// Integration tests run the built CLI (dist/main.js), as operators do. Rebuild it when any source
// file is newer, so `npx vitest` alone never tests stale code.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A directory for this whole `vitest` run (test/support/images.ts builds the container images into it once). */
    runDir: string;
  }
}

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(project: TestProject): () => void {
  const root = new URL('../../', import.meta.url).pathname;
  let built = 0;
  try {
    built = statSync(join(root, 'dist/main.js')).mtimeMs;
  } catch {
    /* not built */
  }
  if (built < newest(join(root, 'src'))) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  const runDir = mkdtempSync(join(tmpdir(), 'trustgate-run-'));
  project.provide('runDir', runDir);
  // The tests that ran containers in it removed them; what is left is podman's temporary storage.
  return () => rmSync(runDir, { recursive: true, force: true });
}
