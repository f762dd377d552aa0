// Rollback state on disk (the embedded default store): one JSON file per GUN under <path>/trust/,
// written to a temp file and renamed so a crash never leaves a torn file, and merged so versions only
// rise. Survives restarts: an older timestamp or snapshot is refused after one too.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { TrustState, TrustStateStore } from '../trust/client.js';
import { mergeStates } from '../trust/state/memory-state.js';

interface OnDisk {
  gun: string;
  root: string; // base64
  versions: Record<string, number>;
}

export class FileTrustState implements TrustStateStore {
  private readonly dir: string;
  private chain = Promise.resolve();

  constructor(storePath: string) {
    this.dir = join(storePath, 'trust');
  }

  // GUNs contain '/' and ':'; hashing gives a safe, fixed-length file name.
  private file(gun: string): string {
    return join(this.dir, `${createHash('sha256').update(gun).digest('hex')}.json`);
  }

  async load(gun: string): Promise<TrustState | undefined> {
    let text: string;
    try {
      text = await readFile(this.file(gun), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const d = JSON.parse(text) as OnDisk;
    if (d.gun !== gun) return undefined;
    return { root: Buffer.from(d.root, 'base64'), versions: d.versions };
  }

  async save(gun: string, state: TrustState): Promise<void> {
    // Serialize writers in this process; rename keeps each write atomic for other processes.
    const run = async () => {
      const merged = mergeStates(await this.load(gun), state);
      await mkdir(this.dir, { recursive: true });
      const tmp = `${this.file(gun)}.${randomBytes(6).toString('hex')}.tmp`;
      const d: OnDisk = { gun, root: Buffer.from(merged.root).toString('base64'), versions: merged.versions };
      await writeFile(tmp, JSON.stringify(d));
      await rename(tmp, this.file(gun));
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }
}
