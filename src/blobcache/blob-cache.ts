// The verified blob cache on local disk: content-addressed by (upstream, digest), filled while
// streaming, committed by rename only once the bytes hash to the digest (distribution's proxy
// ServeBlob: tee, then commit or cancel), least recently used out under `maxBytes`.
//
//   <path>/blobs/<upstream>/<hex>          committed blobs (the index is rebuilt from these at start)
//   <path>/tmp/<pid>/<upstream>-<hex>-<rand>  fills in progress, per process (several processes, e.g.
//                                          workers, may share the directory); a dead process's are debris
//   <path>/links/<upstream>/<repo>/<hex>   "the upstream served this blob to this repository" (distribution's
//                                          repository links): another repository's requester is confirmed first
//
// One fill per blob (single-flight): concurrent requests read the growing file as bytes land, so an
// upstream GET serves any number of clients, and the fill is detached from every client (one that
// goes away does not cancel the others' bytes nor poison the cache).
import { createHash, randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat, statfs, unlink, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FillWriter, isDiskError } from './fill-writer.js';
import { gatedIo } from './io-gate.js';
import { fail } from '../errors.js';
import type { BlobCacheMetrics } from './cache-metrics.js';

export interface BlobCacheOptions {
  path: string;
  maxBytes: number;
  /** Hash every read of a committed blob, not only the first after start. */
  verifyOnRead: boolean;
  metrics?: BlobCacheMetrics | undefined;
  /** Stop filling while the filesystem has less free; default min(1 GiB, 5% of the filesystem). */
  minFreeBytes?: number | undefined;
  log?: { warn(fields: object, msg: string): void } | undefined;
  /** Called when something on disk is found wrong (size or hash); the cache drops it and carries on. */
  onDiscard?: ((key: string, reason: string) => void) | undefined;
}

interface Entry {
  size: number;
  /** Hashed since this process started (it wrote the blob, or a full read matched). */
  verified: boolean;
  readers: number;
  /** When its file's mtime was last set (ms). */
  touchedAt?: number;
}

/** A committed blob opened for reading; `release()` when the response is done. */
export interface CachedBlob {
  key: string;
  size: number;
  file: FileHandle;
  /** True when this read must hash the bytes (first read after start, or verifyOnRead). */
  mustVerify: boolean;
  markVerified(): void;
  /** The bytes did not match: drop the file so it is fetched again. */
  discard(reason: string): Promise<void>;
  release(): void;
}

type Waiter = () => void;

/** One client reading a fill: bytes below `fill.onDisk` from the fill's file, the rest from its memory tail. */
export interface FillReader {
  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  detach(): void;
}

/**
 * A blob being written from the upstream. Registered before the upstream answers, so concurrent requests
 * join it. Readers share the fill's own file handle (opened read-write), so a rename at commit or an
 * unlink when the fill turns into a relay never takes the file from under them.
 *
 * Relay: when the disk refuses a write (ENOSPC, EIO, EDQUOT, EROFS), the bytes not written and all that
 * follow are kept in a memory tail instead, read by the attached clients and dropped once every one of
 * them has passed; the upstream is held while the slowest is MAX_TAIL bytes behind. The digest is
 * checked as before, and the last byte waits for it.
 */
export class Fill {
  size = -1;
  /** Bytes readers may have (on disk plus the relay tail). */
  written = 0;
  /** Bytes in the file; frozen once relaying. */
  onDisk = 0;
  committed = false;
  /** Every byte arrived and hashed to the digest (a relayed fill is complete without being committed). */
  verified = false;
  relaying = false;
  /** Repositories the upstream served this blob to during the fill (links are written at commit). */
  readonly repos = new Set<string>();
  error: Error | undefined;
  /** The temporary file, shared by the writer and every reader; closed once both are done with it. */
  fh: FileHandle | undefined;
  /** Resolves once the upstream answered 200 with a length and the fill started; rejects if it never does. */
  readonly ready: Promise<void>;
  readonly done: Promise<void>;
  /** Resolves once readers may start (the file exists, or the fill relays from memory), rejects if never. */
  readonly fileReady: Promise<void>;
  private onFile!: (err?: Error) => void;
  private waiters: Waiter[] = [];
  private settle!: () => void;
  private onReady!: (err?: Error) => void;
  private readonly readers = new Map<FillReader, number>();
  private tail: Buffer[] = [];
  /** Offset of tail[0]'s first byte. */
  private tailStart = 0;
  private writerDone = false;
  /** Called when readers moved on (room in the tail), or the last one left. */
  onReadersMoved: (() => void) | undefined;

  constructor(
    readonly key: string,
    readonly tmpPath: string,
    readonly finalPath: string,
  ) {
    this.done = new Promise((r) => (this.settle = r));
    this.ready = new Promise((resolve, reject) => (this.onReady = (err) => (err ? reject(err) : resolve())));
    this.ready.catch(() => undefined); // nobody may be waiting
    this.fileReady = new Promise((resolve, reject) => (this.onFile = (err) => (err ? reject(err) : resolve())));
    this.fileReady.catch(() => undefined);
  }

  get complete(): boolean {
    return this.committed || this.verified;
  }

  get readerCount(): number {
    return this.readers.size;
  }

  started(size: number): void {
    this.size = size;
    this.onReady();
  }

  fileCreated(fh?: FileHandle): void {
    this.fh = fh;
    this.onFile();
  }

  /**
   * A reader from byte 0, or undefined when this fill can no longer serve one from the start (it failed,
   * or it relays and the tail has dropped bytes the file does not have): the caller fetches for itself.
   */
  attach(): FillReader | undefined {
    if (this.error && !this.complete) return undefined;
    if (this.writerDone && this.readers.size === 0) return undefined; // the file handle is closed
    if (this.relaying && this.tailStart > this.onDisk) return undefined;
    const reader: FillReader = {
      read: async (buf, offset, length, position) => {
        let n: number;
        if (position < this.onDisk) {
          ({ bytesRead: n } = await this.fh!.read(buf, offset, Math.min(length, this.onDisk - position), position));
        } else n = this.copyTail(buf, offset, length, position);
        if (this.readers.has(reader)) {
          this.readers.set(reader, position + n);
          this.trimTail();
        }
        return { bytesRead: n };
      },
      detach: () => {
        if (!this.readers.delete(reader)) return;
        this.trimTail();
        this.closeIfIdle();
      },
    };
    this.readers.set(reader, 0);
    return reader;
  }

  /** Switch to relaying: bytes from `onDisk` on live in memory; `pending` are those not written. */
  beginRelay(pending: Buffer[]): void {
    this.relaying = true;
    this.onDisk = this.written;
    this.tailStart = this.written;
    for (const b of pending) this.pushTail(b);
    this.onFile(); // readers waiting for a file that never came read the tail
  }

  pushTail(chunk: Buffer): void {
    this.tail.push(chunk);
    this.written += chunk.length;
  }

  /** Bytes the slowest reader is behind the newest byte of the tail. */
  get tailLag(): number {
    let min = this.written;
    for (const p of this.readers.values()) min = Math.min(min, p);
    return this.written - Math.max(min, this.tailStart);
  }

  private copyTail(buf: Buffer, offset: number, length: number, position: number): number {
    let at = this.tailStart;
    let n = 0;
    for (const c of this.tail) {
      const end = at + c.length;
      if (end > position + n && n < length) {
        const from = position + n - at;
        const k = Math.min(c.length - from, length - n);
        c.copy(buf, offset + n, from, from + k);
        n += k;
      }
      at = end;
      if (n >= length) break;
    }
    if (n === 0 && position < this.tailStart) throw new Error(`relayed blob: bytes at ${position} were already dropped`);
    return n;
  }

  private trimTail(): void {
    if (!this.relaying) return;
    let min = this.written;
    for (const p of this.readers.values()) min = Math.min(min, p);
    while (this.tail.length > 0 && this.tailStart + this.tail[0]!.length <= min) this.tailStart += this.tail.shift()!.length;
    this.onReadersMoved?.();
  }

  /** The writer is done with the file: close it once no reader needs it either. */
  writerFinished(): void {
    this.writerDone = true;
    this.closeIfIdle();
  }

  private closeIfIdle(): void {
    if (!this.writerDone || this.readers.size > 0) return;
    this.tail = [];
    const fh = this.fh;
    this.fh = undefined;
    void fh?.close().catch(() => undefined);
  }

  /** Resolves at the next write, commit or failure. */
  next(): Promise<void> {
    if (this.complete || this.error) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  finish(err?: Error): void {
    if (err) this.error = err;
    else this.committed = true;
    this.onReady(err);
    this.onFile(err);
    this.notify();
    this.settle();
  }
}

/** The fill will not happen (too big, no room): joiners fetch for themselves. */
export const NOT_CACHEABLE = 'BLOBCACHE_NOT_CACHEABLE';

export type Lookup = { kind: 'hit'; entry: Entry } | { kind: 'filling'; fill: Fill } | { kind: 'miss' };

const HEX = /^[a-f0-9]{64}$/;

/** The default free-space floor: 1 GiB or 5% of the filesystem, whichever is smaller. */
export function defaultMinFree(fsSize: number): number {
  return Math.min(1024 ** 3, Math.floor(fsSize * 0.05));
}
/** Every repository × blob a process has confirmed would otherwise stay in memory for its lifetime. */
const MAX_LINKS_IN_MEMORY = 100_000;

export class BlobCache {
  private readonly entries = new Map<string, Entry>(); // insertion order = least recently used first
  private readonly fills = new Map<string, Fill>();
  /** Links known to exist, most recently used last; bounded (MAX_LINKS_IN_MEMORY), the disk has them all. */
  private readonly links = new Map<string, true>();
  private held = 0;
  /** Sizes of the fills in progress: a fill starts only if its whole size could be made room for. */
  private reserved = 0;
  /** Bytes the fills in progress have on disk: room is made as they land, not up front, so an
   *  upstream announcing a huge length cannot flush the cache before sending anything. */
  private landed = 0;

  private readonly tmpDir: string;
  /** Size of the cache's filesystem, from the last statfs. */
  private fsSize = 0;
  /** False while free space is below the floor (`minFree`): misses are relayed, not cached. */
  private filling = true;

  private constructor(private readonly opts: BlobCacheOptions) {
    this.tmpDir = join(opts.path, 'tmp', String(process.pid));
  }

  /** Open the cache directory: discard partial files, rebuild the index from disk, trim to maxBytes. */
  static async open(opts: BlobCacheOptions): Promise<BlobCache> {
    const c = new BlobCache(opts);
    await discardPartials(join(opts.path, 'tmp'));
    await mkdir(c.tmpDir, { recursive: true });
    await mkdir(join(opts.path, 'blobs'), { recursive: true });
    const found = await scanBlobs(opts.path);
    // Oldest use first: mtime is touched on every hit, so restart keeps the LRU order.
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) {
      c.entries.set(f.key, { size: f.size, verified: false, readers: 0 });
      c.held += f.size;
    }
    await c.evictFor(0);
    await c.diskRoomFor(0);
    if (c.fsSize > 0 && opts.maxBytes > c.fsSize) opts.log?.warn({ path: opts.path, maxBytes: opts.maxBytes, filesystemBytes: c.fsSize }, 'blobCache.maxBytes exceeds the size of the filesystem: the disk fills before the cache evicts');
    await pruneLinks(opts.path, (key) => c.entries.has(key));
    c.publish();
    opts.metrics?.filling.set(c.filling ? 1 : 0);
    // A scrape re-measures: filling turns back on (or off) without waiting for the next miss.
    if (opts.metrics) opts.metrics.refresh = () => c.diskRoomFor(0).then(() => undefined);
    return c;
  }

  get maxBytes(): number {
    return this.opts.maxBytes;
  }

  get bytesHeld(): number {
    return this.held;
  }

  get blobCount(): number {
    return this.entries.size;
  }

  static key(upstream: string, digest: string): string {
    return `${upstream}/${digest.slice('sha256:'.length)}`;
  }

  private blobPath(key: string): string {
    return join(this.opts.path, 'blobs', key);
  }

  private linkPath(upstream: string, repo: string, digest: string): string {
    return join(this.opts.path, 'links', upstream, repo, digest.slice('sha256:'.length));
  }

  /** Synchronous, so check-then-start cannot race between two requests. */
  lookup(key: string): Lookup {
    const e = this.entries.get(key);
    if (e) return { kind: 'hit', entry: e };
    const f = this.fills.get(key);
    if (f) return { kind: 'filling', fill: f };
    return { kind: 'miss' };
  }

  /**
   * A miss may be a blob another process sharing the directory (a worker) committed after this one
   * indexed it: take the file into the index, unverified (hashed on its first read here), rather than
   * fetching it again. False when there is no such file.
   */
  async adopt(key: string): Promise<boolean> {
    const st = await stat(this.blobPath(key)).catch(() => undefined);
    if (!st?.isFile()) return false;
    if (this.lookup(key).kind !== 'miss') return true; // indexed or being filled meanwhile
    this.entries.set(key, { size: st.size, verified: false, readers: 0 });
    this.held += st.size;
    await this.evictFor(0);
    return true;
  }

  /** Has the upstream served (or confirmed) this blob to this repository? */
  async hasLink(upstream: string, repo: string, digest: string): Promise<boolean> {
    const k = `${upstream}\0${repo}\0${digest}`;
    if (this.links.has(k)) return true;
    try {
      await stat(this.linkPath(upstream, repo, digest));
      this.remember(k);
      return true;
    } catch {
      return false;
    }
  }

  async addLink(upstream: string, repo: string, digest: string): Promise<void> {
    const k = `${upstream}\0${repo}\0${digest}`;
    if (this.links.has(k)) return;
    const p = this.linkPath(upstream, repo, digest);
    await mkdir(join(p, '..'), { recursive: true });
    await writeFile(p, '');
    this.remember(k);
  }

  private remember(link: string): void {
    this.links.delete(link);
    this.links.set(link, true);
    if (this.links.size > MAX_LINKS_IN_MEMORY) this.links.delete(this.links.keys().next().value!);
  }

  /** The blob whose mtime was set last (openCommitted). */
  private lastTouched: string | undefined;

  /**
   * Open a committed blob. The size is checked against the index on every open: a file truncated or
   * grown on disk is dropped (and fetched again), never served as complete.
   */
  async openCommitted(key: string): Promise<CachedBlob | undefined> {
    const e = this.entries.get(key);
    if (!e) return undefined;
    e.readers++;
    let file: FileHandle;
    try {
      file = await gatedIo(0, () => open(this.blobPath(key), 'r'));
    } catch {
      e.readers--;
      this.drop(key, 'missing on disk');
      return undefined;
    }
    const st = await gatedIo(0, () => file.stat()).catch(() => undefined);
    if (!st || st.size !== e.size) {
      e.readers--;
      await gatedIo(0, () => file.close()).catch(() => undefined);
      await this.remove(key, `size on disk ${st?.size} is not ${e.size}`);
      return undefined;
    }
    // Most recently used: last in the map, and the file's mtime for the next start.
    this.entries.delete(key);
    this.entries.set(key, e);
    // The mtime orders eviction across restarts. Repeated hits of the blob touched last change nothing
    // in that order, so they touch it at most once a minute: a utimes per hit was one more threadpool
    // operation per request when hundreds of clients pull one blob at once.
    const now = Date.now();
    if (this.lastTouched !== key || e.touchedAt === undefined || now - e.touchedAt >= 60_000) {
      this.lastTouched = key;
      e.touchedAt = now;
      const t = new Date(now);
      void gatedIo(0, () => utimes(this.blobPath(key), t, t)).catch(() => undefined);
    }
    this.opts.metrics?.hits.inc();
    let released = false;
    return {
      key,
      size: e.size,
      file,
      mustVerify: this.opts.verifyOnRead || !e.verified,
      markVerified: () => (e.verified = true),
      discard: (reason) => this.remove(key, reason),
      release: () => {
        if (released) return;
        released = true;
        e.readers--;
        void gatedIo(0, () => file.close()).catch(() => undefined);
      },
    };
  }

  /** Register a fill for a missed blob. Must be called in the same tick as the `miss` lookup. */
  beginFill(key: string): Fill {
    if (this.fills.has(key) || this.entries.has(key)) throw new Error(`blob cache: ${key} is already present`);
    const fill = new Fill(key, join(this.tmpDir, `${key.replace('/', '-')}-${randomBytes(6).toString('hex')}`), this.blobPath(key));
    this.fills.set(key, fill);
    return fill;
  }

  /** The upstream did not give a cacheable 200: the fill ends, joiners see `err`. */
  abandonFill(fill: Fill, err: Error): void {
    if (this.fills.get(fill.key) === fill) this.fills.delete(fill.key);
    fill.finish(err);
  }

  /**
   * Fill from an upstream body already known to be a 200 of `size` bytes. Returns false when it
   * cannot be cached (bigger than the cache, no room because everything is in use, or the disk's free
   * space would fall below `minFreeBytes` even after pruning): the fill is abandoned and the caller
   * streams the body straight through instead.
   */
  async startFill(fill: Fill, size: number, body: Readable, digest: string, onCommit?: () => Promise<void>): Promise<boolean> {
    if (size > this.opts.maxBytes || !this.canReserve(size) || !(await this.diskRoomFor(size))) {
      this.abandonFill(fill, Object.assign(new Error('blob not cacheable'), { code: NOT_CACHEABLE }));
      return false;
    }
    this.reserved += size;
    this.opts.metrics?.misses.inc();
    fill.started(size);
    void this.pump(fill, body, digest, onCommit);
    return true;
  }

  /**
   * Free space on the cache's filesystem (statfs), pruning least recently used blobs to keep
   * `minFreeBytes` free with room for `size` more (what fills in progress will still write counted).
   * Filling stops (false, the gauge at 0, one warning) while free space stays below the floor.
   */
  private async diskRoomFor(size: number): Promise<boolean> {
    const pending = () => Math.max(0, this.reserved - this.landed);
    let free = await this.freeBytes();
    if (free === undefined) return true; // no statfs: the write itself will say
    const floor = this.minFree;
    let evictable = 0;
    for (const e of this.entries.values()) if (e.readers === 0) evictable += e.size;
    // Prune for the floor always; for this blob only if pruning can make it fit.
    const want = free + evictable - pending() >= floor + size ? floor + size : floor;
    for (const [key, e] of this.entries) {
      if (free - pending() >= want) break;
      if (e.readers > 0) continue;
      this.drop(key);
      this.opts.metrics?.evictions.inc();
      await unlink(this.blobPath(key)).catch(() => undefined);
      free += e.size;
    }
    if (evictable > 0) free = (await this.freeBytes()) ?? free;
    this.setFilling(free - pending() >= floor, free);
    return free - pending() >= floor + size;
  }

  /** The floor in use: blobCache.minFreeBytes, or the default min(1 GiB, 5% of the filesystem). */
  get minFree(): number {
    return this.opts.minFreeBytes ?? defaultMinFree(this.fsSize);
  }

  async freeBytes(): Promise<number | undefined> {
    const st = await statfs(this.opts.path).catch(() => undefined);
    if (!st) return undefined;
    this.fsSize = st.blocks * st.bsize;
    const free = st.bavail * st.bsize;
    this.opts.metrics?.freeBytes.set(free);
    return free;
  }

  private setFilling(on: boolean, free: number): void {
    if (on === this.filling) return;
    this.filling = on;
    this.opts.metrics?.filling.set(on ? 1 : 0);
    const fields = { path: this.opts.path, freeBytes: free, minFreeBytes: this.minFree };
    if (on) this.opts.log?.warn(fields, 'blob cache filling again: free space is back above blobCache.minFreeBytes');
    else this.opts.log?.warn(fields, 'blob cache stopped filling: free space is below blobCache.minFreeBytes; blobs are relayed from the upstream uncached');
  }

  /** The disk refused a fill's write: the fill relays (clients go on from the upstream) and is dropped. */
  private onRelay(fill: Fill, err: Error): void {
    if (this.fills.get(fill.key) === fill) this.fills.delete(fill.key);
    this.reserved -= fill.size;
    this.landed -= fill.onDisk;
    this.opts.log?.warn({ key: fill.key, code: (err as NodeJS.ErrnoException).code, written: fill.onDisk }, 'blob cache write failed: fill dropped, the blob is relayed from the upstream');
    this.opts.metrics?.relayed.inc();
    void unlink(fill.tmpPath).catch(() => undefined);
    // The disk is full or failing: prune (the floor) and re-measure; filling stops if still below it.
    void this.diskRoomFor(0).catch(() => undefined);
  }

  private async pump(fill: Fill, body: Readable, digest: string, onCommit?: () => Promise<void>): Promise<void> {
    let relayErr: Error | undefined;
    const hash = createHash('sha256');
    let writer: FillWriter | undefined;
    const writerFor = (fh: FileHandle | undefined) =>
      new FillWriter(fh, fill, hash, digest, {
        beforeWrite: (n) => this.evictFor(n),
        afterWrite: (n) => {
          this.landed += n;
          this.opts.metrics?.bytesFromUpstream.inc(n);
        },
        onRelay: (err) => {
          relayErr = err;
          this.onRelay(fill, err);
        },
      });
    try {
      let fh: FileHandle | undefined;
      try {
        // Read-write: readers share this handle, so neither the rename nor an unlink takes it from them.
        fh = await open(fill.tmpPath, 'wx+');
      } catch (err) {
        if (!isDiskError(err)) throw err;
        writer = writerFor(undefined);
        fill.fileCreated(undefined);
        writer.startRelay([], err as Error);
      }
      if (fh) {
        fill.fileCreated(fh);
        writer = writerFor(fh);
      }
      await pipeline(body, writer!);
      if (fill.written !== fill.size) throw fail('DIGEST_MISMATCH', `blob ${digest}: ${fill.written} bytes, not the announced ${fill.size}`);
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest) throw fail('DIGEST_MISMATCH', `upstream blob hashes to ${got}, not ${digest}`);
      if (relayErr) {
        // Every byte arrived and matched: the readers may have the last one; nothing is cached.
        fill.verified = true;
        fill.finish(Object.assign(new Error(`blob relayed, not cached (${(relayErr as NodeJS.ErrnoException).code})`), { code: NOT_CACHEABLE }));
        return;
      }
      try {
        // On disk before the name: a crash after the rename never leaves a short or empty blob (ext4
        // may otherwise persist the rename before the data). Costs a flush per fill (docs/failure-modes.md).
        await fill.fh!.datasync();
        await mkdir(join(fill.finalPath, '..'), { recursive: true });
        await rename(fill.tmpPath, fill.finalPath);
      } catch (err) {
        if (!isDiskError(err)) throw err;
        // The bytes are whole and verified in the file the readers hold: they finish; nothing is cached.
        fill.verified = true;
        this.onRelay(fill, err as Error);
        fill.finish(Object.assign(new Error('blob relayed, not cached'), { code: NOT_CACHEABLE }));
        return;
      }
      // From partial to held in one step: no await between, so no eviction sees it counted twice.
      this.entries.set(fill.key, { size: fill.size, verified: true, readers: 0 });
      this.held += fill.size;
      this.landed -= fill.written;
      this.reserved -= fill.size;
      this.fills.delete(fill.key);
      await onCommit?.().catch(() => undefined);
      fill.finish();
    } catch (err) {
      body.destroy();
      await unlink(fill.tmpPath).catch(() => undefined);
      if (!relayErr) {
        this.landed -= fill.onDisk;
        this.reserved -= fill.size;
        if (this.fills.get(fill.key) === fill) this.fills.delete(fill.key);
      }
      fill.finish(err instanceof Error ? err : new Error(String(err)));
    } finally {
      fill.writerFinished();
      this.publish();
    }
  }

  private canReserve(size: number): boolean {
    let free = this.opts.maxBytes - this.held - this.reserved;
    if (free >= size) return true;
    for (const e of this.entries.values()) {
      if (e.readers === 0) free += e.size;
      if (free >= size) return true;
    }
    return false;
  }

  /**
   * Least recently used first, skipping blobs being read (a blob being written is not in the index
   * yet), until what is on disk plus `extra` about to be written fits under maxBytes.
   */
  private async evictFor(extra: number): Promise<void> {
    for (const [key, e] of this.entries) {
      if (this.held + this.landed + extra <= this.opts.maxBytes) break;
      if (e.readers > 0) continue;
      this.drop(key);
      this.opts.metrics?.evictions.inc();
      await unlink(this.blobPath(key)).catch(() => undefined);
    }
    this.publish();
  }

  private drop(key: string, reason?: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.held -= e.size;
    if (reason) this.opts.onDiscard?.(key, reason);
    this.publish();
  }

  /** Drop an entry found wrong on disk, and its file. */
  private async remove(key: string, reason: string): Promise<void> {
    this.drop(key, reason);
    await unlink(this.blobPath(key)).catch(() => undefined);
  }

  private publish(): void {
    this.opts.metrics?.bytesHeld.set(this.held);
    this.opts.metrics?.blobs.set(this.entries.size);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Partial files left by processes that are gone (a crash, a restart) are removed; those of live
 * processes sharing the directory are theirs. Our own pid's directory can only be a previous
 * process's that had our pid: removed too.
 */
async function discardPartials(tmp: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(tmp);
  } catch {
    return;
  }
  for (const n of names) {
    const pid = /^\d+$/.test(n) ? Number(n) : NaN;
    if (pid !== process.pid && Number.isSafeInteger(pid) && isAlive(pid)) continue;
    await rm(join(tmp, n), { recursive: true, force: true });
  }
}

export interface FoundBlob {
  key: string;
  upstream: string;
  size: number;
  mtimeMs: number;
  path: string;
}

/** Every committed blob under <path>/blobs (for the index at start, and the cache CLI). */
export async function scanBlobs(path: string): Promise<FoundBlob[]> {
  const out: FoundBlob[] = [];
  const root = join(path, 'blobs');
  let ups: string[];
  try {
    ups = await readdir(root);
  } catch {
    return out;
  }
  for (const u of ups) {
    let names: string[];
    try {
      names = await readdir(join(root, u));
    } catch {
      continue;
    }
    for (const n of names) {
      if (!HEX.test(n)) continue;
      const p = join(root, u, n);
      const st = await stat(p).catch(() => undefined);
      if (st?.isFile()) out.push({ key: `${u}/${n}`, upstream: u, size: st.size, mtimeMs: st.mtimeMs, path: p });
    }
  }
  return out;
}

/**
 * Remove the repository links of blobs no longer held (evicted, pruned, dropped as wrong): without
 * this the links directory grows with every repository a blob was ever served to. A link that
 * outlived its blob would only spare a later fill one confirmation; it is not needed for correctness.
 * Returns how many links were removed; directories left empty are removed too.
 */
export async function pruneLinks(path: string, held: (key: string) => boolean): Promise<number> {
  const root = join(path, 'links');
  let removed = 0;
  // Returns whether `dir` is empty afterwards.
  const walk = async (dir: string, upstream: string | undefined): Promise<boolean> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return false;
    }
    let left = entries.length;
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (await walk(p, upstream ?? e.name)) {
          await rmdir(p).then(() => left--, () => undefined);
        }
      } else if (upstream !== undefined && HEX.test(e.name) && !held(`${upstream}/${e.name}`)) {
        await unlink(p).then(() => {
          left--;
          removed++;
        }, () => undefined);
      }
    }
    return left === 0;
  };
  await walk(root, undefined);
  return removed;
}
