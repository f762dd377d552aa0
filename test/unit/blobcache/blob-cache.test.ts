// BlobCache on a temp directory: commit only verified bytes, never evict what is being read, rebuild
// the index and discard partials at open, and let readers follow a fill as it grows.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobCache, type Fill } from '../../../src/blobcache/blob-cache.js';
import { sendGrowingFile } from '../../../src/blobcache/growing-file-sender.js';
import { parseRange } from '../../../src/blobcache/range.js';
import { pruneCache } from '../../../src/blobcache/cache-admin.js';

const MiB = 1 << 20;
const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'blobcache-unit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function put(cache: BlobCache, bytes: Buffer, digest = digestOf(bytes)): Promise<Fill> {
  const key = BlobCache.key('up', digest);
  expect(cache.lookup(key).kind).toBe('miss');
  const fill = cache.beginFill(key);
  expect(await cache.startFill(fill, bytes.length, Readable.from([bytes.subarray(0, bytes.length >> 1), bytes.subarray(bytes.length >> 1)]), digest)).toBe(true);
  await fill.done;
  return fill;
}

describe('BlobCache', () => {
  it('commits bytes that hash to the digest, and never a mismatch (nothing left behind)', async () => {
    const cache = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: false });
    const good = randomBytes(MiB);
    const ok = await put(cache, good);
    expect(ok.committed).toBe(true);
    expect(cache.lookup(BlobCache.key('up', digestOf(good))).kind).toBe('hit');
    const bad = Buffer.from(good);
    bad[10]! ^= 1;
    const f = await put(cache, bad, `sha256:${'a'.repeat(64)}`);
    expect(f.committed).toBe(false);
    expect((f.error as { code?: string }).code).toBe('DIGEST_MISMATCH');
    expect(cache.lookup(BlobCache.key('up', `sha256:${'a'.repeat(64)}`)).kind).toBe('miss');
    expect(readdirSync(join(dir, 'tmp', String(process.pid)))).toEqual([]);
    expect(cache.bytesHeld).toBe(MiB);
  });

  it('evicts least recently used under maxBytes, but never a blob being read', async () => {
    const cache = await BlobCache.open({ path: dir, maxBytes: 2 * MiB, verifyOnRead: false });
    const [a, b, c] = [randomBytes(MiB), randomBytes(MiB), randomBytes(MiB)];
    await put(cache, a);
    const reading = await cache.openCommitted(BlobCache.key('up', digestOf(a)));
    expect(reading).toBeDefined();
    await put(cache, b);
    await put(cache, c);
    // a is the oldest but in use: b went instead.
    expect(cache.lookup(BlobCache.key('up', digestOf(a))).kind).toBe('hit');
    expect(cache.lookup(BlobCache.key('up', digestOf(b))).kind).toBe('miss');
    expect(cache.bytesHeld).toBeLessThanOrEqual(2 * MiB);
    reading!.release();
    const d = randomBytes(MiB);
    await put(cache, d);
    expect(cache.lookup(BlobCache.key('up', digestOf(a))).kind).toBe('miss');
  });

  it('makes room as bytes land: an upstream announcing a huge length evicts nothing before sending it', async () => {
    const cache = await BlobCache.open({ path: dir, maxBytes: 3 * MiB, verifyOnRead: false });
    const [a, b] = [randomBytes(MiB), randomBytes(MiB)];
    await put(cache, a);
    await put(cache, b);
    const digest = `sha256:${'b'.repeat(64)}`;
    const body = new PassThrough();
    const fill = cache.beginFill(BlobCache.key('up', digest));
    expect(await cache.startFill(fill, 3 * MiB, body, digest)).toBe(true);
    body.write(Buffer.alloc(1024));
    await new Promise((r) => setTimeout(r, 50));
    expect([a, b].map((x) => cache.lookup(BlobCache.key('up', digestOf(x))).kind)).toEqual(['hit', 'hit']);
    body.end(); // short of the announced length: refused, and nothing was evicted for it
    await fill.done;
    expect((fill.error as { code?: string }).code).toBe('DIGEST_MISMATCH');
    expect([a, b].map((x) => cache.lookup(BlobCache.key('up', digestOf(x))).kind)).toEqual(['hit', 'hit']);
    // A fill bigger than the cache is not started at all.
    const big = cache.beginFill(BlobCache.key('up', `sha256:${'c'.repeat(64)}`));
    expect(await cache.startFill(big, 4 * MiB, new PassThrough(), `sha256:${'c'.repeat(64)}`)).toBe(false);
  });

  it('rebuilds the index at open, discards partial files, and re-verifies the first read (always with verifyOnRead)', async () => {
    const first = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: false });
    const a = randomBytes(MiB);
    await put(first, a);
    const key = BlobCache.key('up', digestOf(a));
    const fresh = await first.openCommitted(key);
    expect(fresh!.mustVerify).toBe(false); // written and hashed by this process
    fresh!.release();
    // A dead process's partial fill is debris; a live one's (another worker sharing the directory) is not.
    mkdirSync(join(dir, 'tmp', '999999999'), { recursive: true });
    writeFileSync(join(dir, 'tmp', '999999999', 'up-crashed-fill'), 'partial');
    mkdirSync(join(dir, 'tmp', String(process.ppid)), { recursive: true });
    writeFileSync(join(dir, 'tmp', String(process.ppid), 'up-live-fill'), 'partial');
    const second = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: false });
    expect(existsSync(join(dir, 'tmp', '999999999'))).toBe(false);
    expect(existsSync(join(dir, 'tmp', String(process.ppid), 'up-live-fill'))).toBe(true);
    expect(second.bytesHeld).toBe(MiB);
    const r1 = await second.openCommitted(key);
    expect(r1!.mustVerify).toBe(true);
    r1!.markVerified();
    r1!.release();
    const r2 = await second.openCommitted(key);
    expect(r2!.mustVerify).toBe(false);
    r2!.release();
    const always = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: true });
    const r3 = await always.openCommitted(key);
    r3!.markVerified();
    r3!.release();
    const r4 = await always.openCommitted(key);
    expect(r4!.mustVerify).toBe(true);
    r4!.release();
  });

  it('readers follow a fill as bytes land, and get the last byte only after the commit', async () => {
    const cache = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: false });
    const bytes = randomBytes(3 * MiB);
    const digest = digestOf(bytes);
    const body = new PassThrough();
    const fill = cache.beginFill(BlobCache.key('up', digest));
    await cache.startFill(fill, bytes.length, body, digest);
    const got = [[], []] as Buffer[][];
    // The sender reuses its buffers once a write is done: a sink keeps copies.
    const sinks = got.map((g) => new Writable({ write: (c: Buffer, _e, cb) => (g.push(Buffer.from(c)), cb()) }));
    const sends = sinks.map((sink) => sendGrowingFile(fill, fill.attach()!, sink));
    body.write(bytes.subarray(0, MiB));
    const size = (i: number) => got[i]!.reduce((a, c) => a + c.length, 0);
    for (let t = 0; t < 200 && (size(0) < MiB - 1 || size(1) < MiB - 1); t++) await new Promise((r) => setTimeout(r, 10));
    // The first MiB (less the held-back byte) is with both readers while 2 MiB are still to come.
    expect([size(0), size(1)]).toEqual([MiB - 1, MiB - 1]);
    // Every byte written, not yet committed (the upstream has not ended): the last byte waits.
    body.write(bytes.subarray(MiB));
    for (let t = 0; t < 200 && (size(0) < 3 * MiB - 1 || size(1) < 3 * MiB - 1); t++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    expect([size(0), size(1)]).toEqual([3 * MiB - 1, 3 * MiB - 1]);
    body.end();
    expect(await Promise.all(sends)).toEqual(['sent', 'sent']);
    for (const g of got) expect(Buffer.concat(g).equals(bytes)).toBe(true);
  });

  it('a sender that opens the fill while it is being committed (renamed, not yet finished) sends the committed file', async () => {
    const cache = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: false });
    const bytes = randomBytes(MiB);
    const digest = digestOf(bytes);
    const fill = cache.beginFill(BlobCache.key('up', digest));
    let finishCommit!: () => void;
    const commitStep = new Promise<void>((r) => (finishCommit = r));
    await cache.startFill(fill, bytes.length, Readable.from([bytes]), digest, () => commitStep);
    const finalFile = join(dir, 'blobs', 'up', digest.slice(7));
    for (let t = 0; t < 200 && !existsSync(finalFile); t++) await new Promise((r) => setTimeout(r, 5));
    expect(existsSync(finalFile)).toBe(true); // renamed into place...
    expect(fill.committed).toBe(false); // ...while the commit's last step is still running
    const got: Buffer[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (got.push(Buffer.from(c)), cb()) });
    const send = sendGrowingFile(fill, fill.attach()!, sink);
    setTimeout(finishCommit, 20);
    expect(await send).toBe('sent');
    expect(Buffer.concat(got).equals(bytes)).toBe(true);
  });

  it('a fill that fails fails its senders before they have every byte', async () => {
    const cache = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: false });
    const bytes = randomBytes(2 * MiB);
    const digest = digestOf(bytes);
    const body = new PassThrough();
    const fill = cache.beginFill(BlobCache.key('up', digest));
    await cache.startFill(fill, bytes.length, body, digest);
    const chunks: Buffer[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(Buffer.from(c)), cb()) });
    const ended = sendGrowingFile(fill, fill.attach()!, sink).then(
      () => undefined,
      (err: Error) => err,
    );
    const wrong = Buffer.from(bytes);
    wrong[wrong.length - 1]! ^= 1;
    body.end(wrong);
    const err = await ended;
    expect((err as { code?: string } | undefined)?.code).toBe('DIGEST_MISMATCH');
    expect(sink.writableEnded).toBe(false);
    expect(Buffer.concat(chunks).length).toBeLessThan(bytes.length);
  });
});

describe('adopt (a blob another process sharing the directory committed)', () => {
  it('takes the file into the index unverified, so its first read is hashed; no file, no entry', async () => {
    const mine = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: false });
    const other = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: false });
    const bytes = randomBytes(MiB);
    await put(other, bytes);
    const key = BlobCache.key('up', digestOf(bytes));
    expect(mine.lookup(key).kind).toBe('miss');
    expect(await mine.adopt(key)).toBe(true);
    expect(mine.lookup(key).kind).toBe('hit');
    expect(mine.bytesHeld).toBe(MiB);
    const blob = await mine.openCommitted(key);
    expect(blob!.mustVerify).toBe(true);
    blob!.release();
    expect(await mine.adopt(BlobCache.key('up', `sha256:${'d'.repeat(64)}`))).toBe(false);
    expect(mine.blobCount).toBe(1);
  });
});

describe('repository links', () => {
  it('are kept for held blobs and removed with their blob: at open, and by cache prune', async () => {
    const cache = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: false });
    const a = randomBytes(MiB);
    const b = randomBytes(MiB);
    await put(cache, a);
    await put(cache, b);
    for (const repo of ['lib/one', 'lib/two']) for (const d of [digestOf(a), digestOf(b)]) await cache.addLink('up', repo, d);
    // A link whose blob went while no trustgate ran (evicted, pruned, removed by hand).
    const orphan = `sha256:${'c'.repeat(64)}`;
    await cache.addLink('up', 'other/repo', orphan);
    const linkFile = (repo: string, d: string) => join(dir, 'links', 'up', repo, d.slice(7));
    expect(existsSync(linkFile('other/repo', orphan))).toBe(true);

    const reopened = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: false });
    expect(existsSync(linkFile('other/repo', orphan))).toBe(false);
    expect(existsSync(join(dir, 'links', 'up', 'other'))).toBe(false); // emptied directories go too
    expect(await reopened.hasLink('up', 'lib/one', digestOf(a))).toBe(true);
    expect(await reopened.hasLink('up', 'lib/two', digestOf(b))).toBe(true);

    // Prune to one blob's worth: the older blob (a) goes, and its links with it.
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'blobs', 'up', digestOf(a).slice(7)), past, past);
    const r = await pruneCache(dir, MiB);
    expect(r).toMatchObject({ removed: 1, links: 2 });
    expect(existsSync(linkFile('lib/one', digestOf(a)))).toBe(false);
    expect(existsSync(linkFile('lib/one', digestOf(b)))).toBe(true);
  });

  it('kept in memory only up to a bound; the disk still answers for the rest', async () => {
    const cache = await BlobCache.open({ path: dir, maxBytes: 10 * MiB, verifyOnRead: false });
    const d = digestOf(randomBytes(16));
    for (let i = 0; i < 100_010; i++) (cache as unknown as { remember(k: string): void }).remember(`up\0r${i}\0${d}`);
    expect((cache as unknown as { links: Map<string, true> }).links.size).toBe(100_000);
    await cache.addLink('up', 'late/repo', d);
    expect(await cache.hasLink('up', 'late/repo', d)).toBe(true);
    expect(await cache.hasLink('up', 'never/seen', d)).toBe(false);
  });
});

describe('parseRange', () => {
  it.each<[string | undefined, ReturnType<typeof parseRange>]>([
    [undefined, { kind: 'whole' }],
    ['bytes=0-9', { kind: 'part', start: 0, end: 9 }],
    ['bytes=90-', { kind: 'part', start: 90, end: 99 }],
    ['bytes=-10', { kind: 'part', start: 90, end: 99 }],
    ['bytes=50-500', { kind: 'part', start: 50, end: 99 }],
    ['bytes=100-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=0-1,5-6', { kind: 'whole' }],
    ['bytes=9-3', { kind: 'whole' }],
    ['items=0-1', { kind: 'whole' }],
  ])('%s of 100 bytes', (h, want) => {
    expect(parseRange(h, 100)).toEqual(want);
  });
});

describe('Fill relaying from memory (the disk refused a write)', () => {
  it('readers at different speeds get every byte from the file, then the tail; the tail is trimmed behind the slowest', async () => {
    const { Fill } = await import('../../../src/blobcache/blob-cache.js');
    const fill = new Fill('up/x', join(dir, 'none.tmp'), join(dir, 'none'));
    fill.started(6);
    fill.fileCreated(undefined); // the temp file could not even be created (EROFS): all from memory
    const fast = fill.attach()!;
    const slow = fill.attach()!;
    fill.beginRelay([Buffer.from('ab')]);
    fill.pushTail(Buffer.from('cd'));
    const buf = Buffer.alloc(6);
    expect((await fast.read(buf, 0, 6, 0)).bytesRead).toBe(4);
    expect(buf.subarray(0, 4).toString()).toBe('abcd');
    expect(fill.tailLag).toBe(4); // the slow reader has nothing yet: nothing dropped
    const s = Buffer.alloc(6);
    expect((await slow.read(s, 0, 3, 0)).bytesRead).toBe(3);
    expect(s.subarray(0, 3).toString()).toBe('abc');
    // 'ab' is behind both readers now: dropped; a reader from byte 0 can no longer be served.
    expect(fill.attach()).toBeUndefined();
    fill.pushTail(Buffer.from('ef'));
    expect((await slow.read(s, 3, 3, 3)).bytesRead).toBe(3);
    expect(s.toString()).toBe('abcdef');
    slow.detach();
    fast.detach();
    fill.writerFinished();
  });
});
