// The embedded default store: files under <path>/kv/, one per key (named by the key's sha256), each
// written to a temp file and renamed so a crash never leaves a torn value, and readers in other
// processes see either the old or the new one. Locks are O_EXCL lock files with an expiry, so two
// trustgate processes sharing the directory coalesce too.
// Bounded on disk (`store.maxBytes`): values are charged in whole 4 KiB blocks (what they really
// occupy), the least recently used values with a TTL are evicted to make room, and a sweeper deletes
// expired values, leftover temp files and dead locks. Values without a TTL (trusted roots, bundle
// metadata of air-gapped upstreams) and version floors are never evicted: losing them would weaken
// rollback protection or break offline serving, and only verified data is ever stored that way.
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { mergeMax, type KvStore, type Release, type SetOptions } from './kv.js';

// 8 bytes expiresAt (ms, 0 = never) + 8 bytes value length (0 in files of older versions: unchecked).
// A file whose length disagrees is torn: read as absent and removed by the sweep.
const HEADER = 16;
const BLOCK = 4096;
const VALUE_FILE = /^[0-9a-f]{64}$/;
/** A temp file this old belongs to a writer that died. */
const TMP_MAX_AGE_MS = 3600_000;
const TOUCH_EVERY_MS = 60_000;
/** An empty lock file is one being written by an older version (create, then write): held this long. */
const EMPTY_LOCK_GRACE_MS = 60_000;

export interface FileKvOptions {
  /** Cap on the bytes values occupy (default 1 GiB). */
  maxBytes?: number;
  /** Seconds between sweeps for expired entries (default 600; 0 = only on demand). */
  sweepSeconds?: number;
}

interface IndexEntry {
  /** Bytes charged against the cap (whole blocks). */
  charged: number;
  /** 0 = no TTL (never evicted). */
  expiresAt: number;
  /** Written by this process at (ms): a value written while a sweep was scanning is kept in the index. */
  writtenAt?: number;
  /** Last time a read touched the file's modification time (ms, this process's clock). */
  usedAt?: number;
}

const charge = (fileBytes: number) => Math.ceil(fileBytes / BLOCK) * BLOCK;

export class FileKv implements KvStore {
  readonly kind = 'file';
  private readonly dir: string;
  private ready: Promise<unknown> | undefined;
  // Serializes read-merge-write of version floors within this process; rename keeps it atomic
  // for readers, and floors are re-merged on every write, so a lost race can only lower nothing.
  // One chain per key (keys do not share a lock file): the floors of a GUN and the verified-record
  // pointers an update raises beside them do not wait for one another.
  private readonly chains = new Map<string, Promise<unknown>>();
  // Raises of a key waiting for the one in flight, merged into one read-merge-write (a group commit):
  // every GUN's verification raises the one verified-record index key, and 50 new GUNs at once waited
  // one after another on it (median 52 ms, the last 90 ms) where each key of its own took 18 ms.
  private readonly raiseBatches = new Map<string, { versions: Record<string, number>; result?: Promise<Record<string, number>> }>();
  /** Read-merge-writes of version floors done (one per batch of raises). */
  versionWrites = 0;
  readonly maxBytes: number;
  // Value files in least-recently-used order (Map insertion order), built from a directory scan on
  // first write and rebuilt by every sweep, so processes sharing the directory re-synchronise.
  private index: Map<string, IndexEntry> | undefined;
  private indexing: Promise<void> | undefined;
  private total = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    path: string,
    private readonly now: () => number = Date.now,
    private readonly opts: FileKvOptions = {},
  ) {
    this.dir = join(path, 'kv');
    this.maxBytes = opts.maxBytes ?? 1024 ** 3;
  }

  private name(key: string): string {
    return createHash('sha256').update(key).digest('hex');
  }

  private file(key: string, ext = ''): string {
    return join(this.dir, this.name(key) + ext);
  }

  private async ensureDir(): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true });
    await this.ready;
  }

  /**
   * Temp file, fdatasync, rename. Without the sync a crash (power loss; ext4's delayed allocation) can
   * leave the new name pointing at an empty or short file; a kill -9 alone cannot, the page cache
   * survives the process (docs/failure-modes.md has what was measured).
   */
  private async writeAtomic(file: string, data: Buffer, sync = true): Promise<void> {
    await this.ensureDir();
    const tmp = tmpNameFor(file);
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      if (sync) await fh.datasync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    await rename(tmp, file).catch(async (err) => {
      await unlink(tmp).catch(() => undefined);
      throw err;
    });
  }

  /** Sweep now (temp files of dead writers, expired values and locks) and build the index: call at start. */
  async open(): Promise<void> {
    await this.ensureIndex();
  }

  async get(key: string): Promise<Buffer | undefined> {
    const name = this.name(key);
    let raw: Buffer;
    try {
      raw = await readFile(join(this.dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    if (raw.length < HEADER) return undefined;
    const length = Number(raw.readBigUInt64BE(8));
    if (length !== 0 && length !== raw.length - HEADER) {
      await this.remove(name);
      return undefined;
    }
    const expiresAt = Number(raw.readBigUInt64BE(0));
    if (expiresAt !== 0 && expiresAt <= this.now()) {
      await this.remove(name);
      return undefined;
    }
    const e = this.index?.get(name);
    if (e) {
      this.index!.delete(name); // refresh recency
      this.index!.set(name, e);
      // ...and on disk, for the index the next process builds from modification times (a restart
      // would otherwise evict by write time). At most once a minute per value, not awaited.
      const now = this.now();
      if (e.expiresAt !== 0 && (e.usedAt === undefined || now - e.usedAt >= TOUCH_EVERY_MS)) {
        e.usedAt = now;
        void utimes(join(this.dir, name), now / 1000, now / 1000).catch(() => undefined);
      }
    }
    return raw.subarray(HEADER);
  }

  /**
   * `copy` (KvStore.set): no fdatasync. After a power loss such a value may be gone, empty or short:
   * the length in its header tells, and it reads as absent (fetched again), never as other bytes than
   * were written — a torn file is never served, and metadata and manifests are hash-checked on read.
   */
  async set(key: string, value: Buffer, ttlSeconds = 0, opts?: SetOptions): Promise<void> {
    const expiresAt = ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : 0;
    const size = charge(HEADER + value.length);
    // A TTL'd value that could never fit is not stored at all, like the memory store does.
    if (expiresAt !== 0 && size > this.maxBytes) return;
    await this.ensureIndex();
    const name = this.name(key);
    const was = this.index?.get(name);
    this.account(name, undefined);
    await this.makeRoom(size);
    const head = Buffer.alloc(HEADER);
    head.writeBigUInt64BE(BigInt(expiresAt), 0);
    head.writeBigUInt64BE(BigInt(value.length), 8);
    try {
      await this.writeAtomic(join(this.dir, name), Buffer.concat([head, value]), !opts?.copy);
    } catch (err) {
      if (was) this.account(name, was); // the old value is still on disk
      throw err;
    }
    this.account(name, { charged: size, expiresAt, writtenAt: Date.now() });
  }

  async delete(key: string): Promise<void> {
    await this.remove(this.name(key));
  }

  /** Bytes the values occupy, as this process counts them. */
  async usedBytes(): Promise<number> {
    await this.ensureIndex();
    return this.total;
  }

  private account(name: string, e: IndexEntry | undefined): void {
    if (!this.index) return;
    const old = this.index.get(name);
    if (old) {
      this.total -= old.charged;
      this.index.delete(name);
    }
    if (e) {
      this.index.set(name, e);
      this.total += e.charged;
    }
  }

  private async remove(name: string): Promise<void> {
    this.account(name, undefined);
    await unlink(join(this.dir, name)).catch(() => undefined);
  }

  /** Evict the least recently used values that have a TTL until `incoming` fits. */
  private async makeRoom(incoming: number): Promise<void> {
    if (!this.index) return;
    // Deleting from a Map while iterating it is safe: the walk goes on from the next entry.
    for (const [name, e] of this.index) {
      if (this.total + incoming <= this.maxBytes) return;
      if (e.expiresAt !== 0) await this.remove(name);
    }
  }

  private async ensureIndex(): Promise<void> {
    if (this.index) return;
    this.indexing ??= this.sweep().then(
      () => undefined,
      (err) => {
        this.indexing = undefined;
        throw err;
      },
    );
    await this.indexing;
    if (!this.sweeper && (this.opts.sweepSeconds ?? 600) > 0) {
      this.sweeper = setInterval(() => void this.sweep().catch(() => undefined), (this.opts.sweepSeconds ?? 600) * 1000);
      this.sweeper.unref();
    }
  }

  /**
   * Scan the directory: delete expired values, temp files of dead writers and expired locks; rebuild
   * the index (known values keep their recency, the others are ordered by modification time); evict
   * down to the cap. Run at start, periodically, and on demand (`trustgate cache prune`, tests).
   */
  async sweep(): Promise<{ removed: number; bytes: number }> {
    await this.ensureDir();
    const now = this.now();
    const started = Date.now();
    let removed = 0;
    const found: Array<[string, IndexEntry, number]> = [];
    for (const d of await readdir(this.dir, { withFileTypes: true })) {
      if (!d.isFile()) continue;
      const path = join(this.dir, d.name);
      if (d.name.endsWith('.tmp')) {
        // A writer of this host that is gone (a crash, kill -9) left it: removed now. Others' (another
        // host or container sharing the directory) only once an hour old.
        const st = await stat(path).catch(() => undefined);
        if (st && (deadWriter(d.name) || now - st.mtimeMs > TMP_MAX_AGE_MS) && (await unlink(path).then(() => true, () => false))) removed++;
        continue;
      }
      if (d.name.endsWith('.lock')) {
        const cur = await readFile(path, 'utf8').catch(() => '');
        if (cur && Number(cur.split(' ')[0]) <= now && (await unlink(path).then(() => true, () => false))) removed++;
        continue;
      }
      if (!VALUE_FILE.test(d.name)) continue;
      const head = await readHead(path);
      if (!head) continue;
      if (head.torn) {
        if (await unlink(path).then(() => true, () => false)) removed++;
        continue;
      }
      if (head.expiresAt !== 0 && head.expiresAt <= now) {
        if (await unlink(path).then(() => true, () => false)) removed++;
        continue;
      }
      found.push([d.name, { charged: charge(head.size), expiresAt: head.expiresAt }, head.mtimeMs]);
    }
    // Values this process has not used come first (oldest write first), then the ones it has, in
    // the order it used them.
    const old = this.index ?? new Map<string, IndexEntry>();
    const onDisk = new Map(found.map((f) => [f[0], f[1]]));
    const next = new Map<string, IndexEntry>(found.filter((f) => !old.has(f[0])).sort((a, b) => a[2] - b[2]).map((f) => [f[0], f[1]]));
    for (const [name, was] of old) {
      const e = onDisk.get(name) ?? ((was.writtenAt ?? 0) >= started ? was : undefined);
      if (e) next.set(name, e);
    }
    this.index = next;
    this.total = 0;
    for (const e of next.values()) this.total += e.charged;
    const before = next.size;
    await this.makeRoom(0);
    removed += before - next.size;
    return { removed, bytes: this.total };
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
    // The raise is answered once the new floors are durable; the lock is released after that answer
    // (this process's next raise of the key waits for the release, through its chain; others see the lock go a moment
    // later, as they would have anyway).
    const waiting = this.raiseBatches.get(key);
    if (waiting) {
      // Not started yet: this raise goes into its write, and is answered when that write is durable.
      waiting.versions = mergeMax(waiting.versions, versions);
      return waiting.result!;
    }
    const batch: { versions: Record<string, number>; result?: Promise<Record<string, number>> } = { versions: { ...versions } };
    this.raiseBatches.set(key, batch);
    const run = async (): Promise<{ merged: Record<string, number>; released: Promise<void> }> => {
      // From here on raises of the key form the next batch; this one writes what joined it so far.
      if (this.raiseBatches.get(key) === batch) this.raiseBatches.delete(key);
      const versions = batch.versions;
      this.versionWrites++;
      const lockKey = `${key}\0versions`;
      let release: Release | undefined;
      for (let i = 0; !(release = await this.tryLock(lockKey, 5000)); i++) {
        if (i > 400) throw new Error(`file store: version lock for ${key} not released`);
        await new Promise((r) => setTimeout(r, 5));
      }
      let merged: Record<string, number>;
      try {
        merged = mergeMax(await this.getVersions(key), versions);
        await this.writeAtomic(this.file(key, '.versions'), Buffer.from(JSON.stringify(merged)));
      } catch (err) {
        await release();
        throw err;
      }
      return { merged, released: release().catch(() => undefined) };
    };
    const prev = this.chains.get(key) ?? Promise.resolve();
    const p = prev.then(run, run);
    const done = p.then((r) => r.released).catch(() => undefined);
    this.chains.set(key, done);
    void done.then(() => {
      if (this.chains.get(key) === done) this.chains.delete(key);
    });
    batch.result = p.then((r) => r.merged);
    return batch.result;
  }

  async tryLock(key: string, ttlMs: number): Promise<Release | undefined> {
    await this.ensureDir();
    const file = this.file(key, '.lock');
    const token = `${this.now() + ttlMs} ${randomBytes(8).toString('hex')}`;
    // The lock appears with its token already in it: written to a temp file, then hard-linked into
    // place (link fails if the lock exists). Created with O_EXCL and written after, a lock was seen
    // empty by a contender in between, taken for expired and broken: two holders (a stampede over two
    // workers then fetched every role twice).
    const tmp = tmpNameFor(file);
    try {
      await writeFile(tmp, token); // inside the try: a full disk leaves no empty temp file behind
      for (let attempt = 0; attempt < 3; attempt++) {
        const release = async () => {
          const cur = await readFile(file, 'utf8').catch(() => '');
          if (cur === token) await unlink(file).catch(() => undefined);
        };
        try {
          await link(tmp, file);
          return release;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'EEXIST' && !NO_HARD_LINKS.has(code ?? '')) throw err;
          // A filesystem without hard links: created exclusively and written after (the window above).
          if (code !== 'EEXIST' && (await writeExclusive(file, token))) return release;
        }
        const held = await this.lockHeld(file);
        if (held === true) return undefined;
        if (held === 'gone') continue; // released meanwhile: try again
        // Expired (its holder died): broken once, and only if it is still that expired lock. Moved aside
        // first (rename is atomic): a contender that broke it and took it anew meanwhile gets it back.
        const aside = tmpNameFor(file);
        if (!(await rename(file, aside).then(() => true, () => false))) continue;
        const moved = await readFile(aside, 'utf8').catch(() => '');
        if (moved !== held) {
          await link(aside, file).catch(() => undefined);
          await unlink(aside).catch(() => undefined);
          return undefined;
        }
        await unlink(aside).catch(() => undefined);
      }
      return undefined;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }

  /**
   * true while a lock file holds an unexpired token, 'gone' when there is none, else the expired
   * token. An empty lock file (left by an older version between create and write) counts as held for
   * a minute after it was last modified, then as expired.
   */
  private async lockHeld(file: string): Promise<true | 'gone' | string> {
    const cur = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : ''));
    if (cur === undefined) return 'gone';
    if (cur === '') {
      const st = await stat(file).catch(() => undefined);
      if (!st) return 'gone';
      return Date.now() - st.mtimeMs < EMPTY_LOCK_GRACE_MS ? true : '';
    }
    return Number(cur.split(' ')[0]) > this.now() ? true : cur;
  }

  health(): { ok: boolean } {
    return { ok: true };
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}

const HOST = hostname().replace(/[^A-Za-z0-9-]/g, '_');

/** A unique temp name beside `file`, naming its writer (`<host>~<pid>`) so a sweep knows a dead one's. */
function tmpNameFor(file: string): string {
  return `${file}.${HOST}~${process.pid}~${randomBytes(6).toString('hex')}.tmp`;
}

/** A temp file written by a process of this host that is no longer running. */
function deadWriter(name: string): boolean {
  const m = /\.([A-Za-z0-9_-]+)~(\d+)~[0-9a-f]+\.tmp$/.exec(name);
  if (!m || m[1] !== HOST) return false;
  const pid = Number(m[2]);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'EPERM';
  }
}

const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** Create `file` with `data` unless it exists: false if it did. */
async function writeExclusive(file: string, data: string): Promise<boolean> {
  try {
    const fh = await open(file, 'wx');
    await fh.writeFile(data);
    await fh.close();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Size, expiry and modification time of a value file, reading only its header. */
async function readHead(path: string): Promise<{ size: number; expiresAt: number; mtimeMs: number; torn: boolean } | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    const buf = Buffer.alloc(HEADER);
    const { bytesRead } = await fh.read(buf, 0, HEADER, 0);
    const length = bytesRead === HEADER ? Number(buf.readBigUInt64BE(8)) : 0;
    const torn = bytesRead < HEADER || (length !== 0 && length !== st.size - HEADER);
    return { size: st.size, expiresAt: bytesRead >= 8 ? Number(buf.readBigUInt64BE(0)) : 0, mtimeMs: st.mtimeMs, torn };
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}
