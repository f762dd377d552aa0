// Verified manifests by (upstream, repository, digest): in memory (bounded in bytes) and, when given,
// in the shared store for other replicas and restarts; single-flight loading so concurrent misses make
// one upstream request. Keyed per repository: registries scope content per repository, so a digest
// known in one must not leak into another. Bytes read back from the shared store are hashed again, and
// their stored media type must be the one the bytes declare themselves (the digest covers that, not
// the line beside it; bytes that declare none take any well-formed type, as the upstream's header
// was): anything else is deleted and fetched again from the upstream.
import { createHash } from 'node:crypto';
import type { KvStore } from './kv.js';

export interface CachedManifest {
  bytes: Buffer;
  mediaType: string;
  /** Response headers the server built for these bytes, kept with them so they are built once. */
  headers?: { key: string; value: Readonly<Record<string, string | number>> } | undefined;
  /** Per-tag answers the server derived for these bytes (server/handlers/warm-tag.ts): they go when the bytes go. */
  answers?: Map<string, unknown> | undefined;
  /**
   * When the upstream last confirmed it has these bytes (ms): set on a fetch and a revalidation; absent
   * for a copy read from the shared store, whose age this process does not know (revalidated first).
   */
  checkedAt?: number | undefined;
}

/** The shared-store key of a cached manifest (`trustgate cache forget` removes it). */
export const manifestStoreKey = (key: string): string => `manifest:${key}`;

/**
 * Keys `trustgate cache forget` withdrew, with when (ms): a map whose fields only rise (KvStore
 * raiseVersions), read by every running process, which drops its memory copy of each.
 */
export const FORGOTTEN_KEY = 'manifest-forgotten';

export class ManifestCache {
  private readonly entries = new Map<string, CachedManifest>();
  private readonly inflight = new Map<string, Promise<CachedManifest>>();
  private bytes = 0;

  constructor(
    private readonly maxBytes = 64 * 1024 * 1024,
    private readonly shared?: KvStore,
  ) {}

  get(key: string): CachedManifest | undefined {
    const e = this.entries.get(key);
    if (e) {
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    return e;
  }

  /** The cached value, or the one `load` produces (shared by concurrent callers); failures are not cached. */
  async getOrLoad(key: string, load: () => Promise<CachedManifest>): Promise<CachedManifest> {
    const hit = this.get(key);
    if (hit) return hit;
    let p = this.inflight.get(key);
    if (!p) {
      p = (async () => {
        const fromShared = await this.readShared(key);
        if (fromShared) return fromShared;
        const v = await load();
        // A copy (KvStore.set `copy`): hashed again when read back, so one a power loss took is fetched again.
        await this.shared?.set(manifestStoreKey(key), Buffer.concat([Buffer.from(`${v.mediaType}\n`), v.bytes]), 7 * 86400, { copy: true });
        return v;
      })()
        .then((v) => {
          this.set(key, v);
          return v;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /** A manifest another replica stored, if its bytes still hash to the digest in the key. */
  private async readShared(key: string): Promise<CachedManifest | undefined> {
    const raw = await this.shared?.get(manifestStoreKey(key));
    if (!raw) return undefined;
    const nl = raw.indexOf(0x0a);
    const bytes = raw.subarray(nl + 1);
    const digest = key.slice(key.lastIndexOf('@') + 1);
    const mediaType = nl < 0 ? '' : raw.subarray(0, nl).toString('utf8');
    if (nl < 0 || `sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest || !isMediaTypeOf(bytes, mediaType)) {
      // A copy that does not hash to its digest is never served, and not left for the next reader.
      await this.shared?.delete(manifestStoreKey(key));
      return undefined;
    }
    return { mediaType, bytes: Buffer.from(bytes) };
  }

  private readonly checks = new Map<string, Promise<unknown>>();

  /** Concurrent callers checking one key with the upstream (revalidation) share one `check`. */
  checkOnce<T>(key: string, check: () => Promise<T>): Promise<T> {
    let p = this.checks.get(key) as Promise<T> | undefined;
    if (!p) {
      p = check().finally(() => this.checks.delete(key));
      this.checks.set(key, p);
    }
    return p;
  }

  /** Drop one manifest from memory and from the shared store: the upstream no longer has it. */
  async delete(key: string): Promise<void> {
    this.evict(key);
    await this.shared?.delete(manifestStoreKey(key));
  }

  /** Drop one manifest from memory only. */
  evict(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.bytes -= e.bytes.length;
  }

  private forgotten: Record<string, number> = {};

  /** Evict what `trustgate cache forget` withdrew since the last call (the runtime calls this every second). */
  async applyForgotten(): Promise<void> {
    const now = (await this.shared?.getVersions(FORGOTTEN_KEY)) ?? {};
    for (const [k, at] of Object.entries(now)) if (this.forgotten[k] !== at) this.evict(k);
    this.forgotten = now;
  }

  set(key: string, v: CachedManifest): void {
    if (v.bytes.length > this.maxBytes) return;
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= old.bytes.length;
      this.entries.delete(key);
    }
    this.entries.set(key, v);
    this.bytes += v.bytes.length;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= e.bytes.length;
    }
  }
}

/**
 * Whether `mediaType` may be served for these bytes: the type they declare themselves when they do
 * (the digest covers it), else any well-formed media type (the upstream's header was all there was).
 */
function isMediaTypeOf(bytes: Uint8Array, mediaType: string): boolean {
  let declared: unknown;
  try {
    declared = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: unknown }).mediaType;
  } catch {
    declared = undefined;
  }
  return typeof declared === 'string' ? declared === mediaType : MEDIA_TYPE.test(mediaType);
}

const MEDIA_TYPE = /^[\w.+-]+\/[\w.+-]+$/;
