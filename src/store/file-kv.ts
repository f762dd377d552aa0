// The embedded default store: files under <path>/kv/, one per key (named by the key's sha256), each
// written to a temp file and renamed so a crash never leaves a torn value, and readers in other
// processes see either the old or the new one. Locks are O_EXCL lock files with an expiry, so two
// trustgate processes sharing the directory coalesce too.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mergeMax, type KvStore, type Release } from './kv.js';

const HEADER = 16; // 8 bytes expiresAt (ms, 0 = never) + 8 reserved

export class FileKv implements KvStore {
  readonly kind = 'file';
  private readonly dir: string;
  private ready: Promise<unknown> | undefined;
  // Serializes read-merge-write of version floors within this process; rename keeps it atomic
  // for readers, and floors are re-merged on every write, so a lost race can only lower nothing.
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    path: string,
    private readonly now: () => number = Date.now,
  ) {
    this.dir = join(path, 'kv');
  }

  private file(key: string, ext = ''): string {
    return join(this.dir, createHash('sha256').update(key).digest('hex') + ext);
  }

  private async ensureDir(): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true });
    await this.ready;
  }

  private async writeAtomic(file: string, data: Buffer): Promise<void> {
    await this.ensureDir();
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, data);
    await rename(tmp, file);
  }

  async get(key: string): Promise<Buffer | undefined> {
    let raw: Buffer;
    try {
      raw = await readFile(this.file(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    if (raw.length < HEADER) return undefined;
    const expiresAt = Number(raw.readBigUInt64BE(0));
    if (expiresAt !== 0 && expiresAt <= this.now()) return undefined;
    return raw.subarray(HEADER);
  }

  async set(key: string, value: Buffer, ttlSeconds = 0): Promise<void> {
    const head = Buffer.alloc(HEADER);
    head.writeBigUInt64BE(BigInt(ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : 0), 0);
    await this.writeAtomic(this.file(key), Buffer.concat([head, value]));
  }

  async getVersions(key: string): Promise<Record<string, number>> {
    try {
      return JSON.parse(await readFile(this.file(key, '.versions'), 'utf8')) as Record<string, number>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
  }

  async raiseVersions(key: string, versions: Readonly<Record<string, number>>): Promise<Record<string, number>> {
    // Read-merge-write under a lock file, so another process sharing the directory cannot
    // interleave and write back a lower floor it read before our raise.
    const run = async () => {
      const lockKey = `${key}\0versions`;
      let release: Release | undefined;
      for (let i = 0; !(release = await this.tryLock(lockKey, 5000)); i++) {
        if (i > 400) throw new Error(`file store: version lock for ${key} not released`);
        await new Promise((r) => setTimeout(r, 5));
      }
      try {
        const merged = mergeMax(await this.getVersions(key), versions);
        await this.writeAtomic(this.file(key, '.versions'), Buffer.from(JSON.stringify(merged)));
        return merged;
      } finally {
        await release();
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  async tryLock(key: string, ttlMs: number): Promise<Release | undefined> {
    await this.ensureDir();
    const file = this.file(key, '.lock');
    const token = `${this.now() + ttlMs} ${randomBytes(8).toString('hex')}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(file, 'wx');
        await fh.writeFile(token);
        await fh.close();
        return async () => {
          const cur = await readFile(file, 'utf8').catch(() => '');
          if (cur === token) await unlink(file).catch(() => undefined);
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // An expired lock (its holder died) is broken once.
        const cur = await readFile(file, 'utf8').catch(() => '');
        if (Number(cur.split(' ')[0]) > this.now()) return undefined;
        await unlink(file).catch(() => undefined);
      }
    }
    return undefined;
  }

  health(): { ok: boolean } {
    return { ok: true };
  }

  async close(): Promise<void> {}
}
