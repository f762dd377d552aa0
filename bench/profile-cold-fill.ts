// Where trustgate's cold fill spends its CPU: trustgate run with `--cpu-prof`, N cold pulls of a
// BLOB_MIB layer with curl, then the profile's top self-time functions. `npm run build && tsx
// bench/profile-cold-fill.ts` (PROF_DIR for the .cpuprofile, default a temp dir).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushBlob } from '../test/support/blob-push.js';
import { startRegistry } from '../test/support/docker-registry.js';
import { startTrustgate } from '../test/support/trustgate-process.js';

const MiB = 1 << 20;
const SIZE = Number(process.env.BLOB_MIB ?? 256) * MiB;
const N = Number(process.env.RUNS ?? 3);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'trustgate-coldprof-'));
  const profDir = process.env.PROF_DIR ?? join(dir, 'prof');
  const registry = await startRegistry(dir);
  const repo = 'bench/blob';
  const digests: string[] = [];
  for (let i = 0; i < N; i++) digests.push(await pushBlob(registry.url, repo, SIZE, 500 + i));
  const tg = await startTrustgate(dir, { upstreams: [{ name: 'reg', registry: registry.url, gun: registry.host, policy: 'off' }], default: 'reg', blobCache: { path: join(dir, 'cache'), maxBytes: 64 * 1024 ** 3 } }, 'tg', {}, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  try {
    for (const d of digests) {
      execFileSync('curl', ['-s', '-o', '/dev/null', `${registry.url}/v2/${repo}/blobs/${d}`]); // registry page cache
      const out = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{time_total}', `${tg.url}/v2/${repo}/blobs/${d}`], { encoding: 'utf8' });
      console.log(`cold pull: ${(SIZE / 1e6 / Number(out)).toFixed(0)} MB/s`);
    }
    // CPU per thread (main, libuv's pool, V8's helpers), from /proc: what the main thread's profile cannot show.
    for (const t of readdirSync(`/proc/${tg.pid}/task`)) {
      const st = readFileSync(`/proc/${tg.pid}/task/${t}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const [u, s] = [Number(f[11]) / 100, Number(f[12]) / 100];
      if (u + s > 0.05) console.log(`thread ${t} ${name}: user ${u.toFixed(2)} s, sys ${s.toFixed(2)} s`);
    }
  } finally {
    await tg.stop();
    await registry.stop();
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no profile in ${profDir}`);
  const prof = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as { nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>; samples: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (const s of prof.samples) {
    const cf = byId.get(s)!.callFrame;
    const k = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*node_modules\//, '').replace(/.*\/dist\//, 'dist/')}:${cf.lineNumber}`;
    self.set(k, (self.get(k) ?? 0) + 1);
  }
  const total = prof.samples.length;
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  if (!process.env.PROF_DIR) rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
