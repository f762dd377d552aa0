// When each GUN's newest metadata was verified, and which files it was: what frozen DCT trust
// (notary.frozenAt) resolves from once the notary server is gone. A record names its timestamp and root
// by sha256; the files themselves are kept content-addressed under the names CachingFetcher uses
// (`meta:<source>:<gun>:<role>:<sha256>`), so a frozen update reads exactly the set that was verified,
// hash-checked on the way in like any other content-addressed read.
//
// The record is input, not truth: what it points at is verified again (signatures against the trusted
// root, hash links, rollback floors) by the trusted set on every frozen update. What the record alone
// decides is *when*: state verified after the freeze is never used (a server revived with new keys).
import { createHash } from 'node:crypto';
import type { KvStore } from '../../../store/kv.js';
import type { TrustedSet } from '../trusted-set.js';

export interface VerifiedRecord {
  /** ISO instant of the verification (an imported bundle: its createdAt). */
  at: string;
  /** Hex sha256 of the timestamp.json and root.json of the verified set. */
  timestamp: string;
  root: string;
}

/** A record with its store key and the bytes stored under it. */
export interface StoredRecord {
  rec: VerifiedRecord;
  key: string;
  raw: Buffer;
}

const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export class VerifiedRecords {
  constructor(
    private readonly kv: KvStore,
    /** The metadata source the files were fetched from (the notary host), as CachingFetcher names it. */
    readonly source: string,
  ) {}

  /** One record per timestamp version: replicas verifying concurrently never overwrite each other's. */
  private recordKey(gun: string, timestampVersion: number): string {
    return `dct:verified:${this.source}:${gun}:v${timestampVersion}`;
  }

  /**
   * The highest timestamp version recorded, raised atomically: the record it names is the newest set,
   * the one the rollback floors agree with, whatever order two replicas' writes land in.
   */
  private latestKey(gun: string): string {
    return `dct:verified-latest:${this.source}:${gun}`;
  }

  /** GUN → epoch seconds of its latest record: config check and bundle status read it (raised atomically). */
  private indexKey(): string {
    return `dct:verified-index:${this.source}`;
  }

  fileKey(gun: string, role: string, sha256: string): string {
    return `meta:${this.source}:${gun}:${role}:${sha256}`;
  }

  /**
   * The files `write` stores for `set` (key → bytes): timestamp and root; with `pin` every file of the
   * set. The fetcher's commit leaves these keys to `write` (one writer per file: as two writers of one
   * name, a 30-day copy landing after the pinned durable write expired the frozen state).
   */
  filesOf(gun: string, set: TrustedSet, pin: boolean): Map<string, Uint8Array> {
    const files = new Map<string, Uint8Array>();
    if (!set.timestamp) return files;
    const add = (role: string, raw: Uint8Array) => files.set(this.fileKey(gun, role, sha256Hex(raw)), raw);
    add('timestamp', set.timestamp.env.raw);
    add('root', set.root.env.raw);
    if (pin) {
      if (set.snapshot) add('snapshot', set.snapshot.env.raw);
      for (const [role, t] of set.targets) add(role, t.env.raw);
    }
    return files;
  }

  /**
   * Record a set verified at `at`. `pin`: the upstream has a freeze configured, so every file of the set
   * is kept until evicted rather than for the usual retention (30 days), or the frozen state would
   * expire out of the store a month after the shutdown.
   */
  async write(gun: string, set: TrustedSet, at: Date, pin: boolean, files = this.filesOf(gun, set, pin)): Promise<void> {
    if (!set.timestamp) return;
    const ttl = pin ? 0 : 30 * 86400;
    const version = set.timestamp.ts.version;
    // The files and the earlier record of this version together (distinct keys); the record only once
    // its files are in, and the pointers only once the record is.
    const puts = [...files].map(([key, raw]) => this.kv.set(key, Buffer.from(raw), ttl));
    const [earlier] = await Promise.all([this.readVersion(gun, version), ...puts]);
    const rec: VerifiedRecord = { at: at.toISOString(), timestamp: sha256Hex(set.timestamp.env.raw), root: sha256Hex(set.root.env.raw) };
    // The same timestamp verified again keeps its first instant: a set verified before the freeze stays
    // usable even if a replica without frozenAt verifies it again afterwards.
    if (earlier && earlier.timestamp === rec.timestamp && earlier.root === rec.root && Date.parse(earlier.at) <= at.getTime()) rec.at = earlier.at;
    // The record before the pointer to it: a reader never finds a pointer whose record is not written yet.
    await this.kv.set(this.recordKey(gun, version), Buffer.from(JSON.stringify(rec)), ttl);
    await Promise.all([this.kv.raiseVersions(this.latestKey(gun), { timestamp: version }), this.kv.raiseVersions(this.indexKey(), { [gun]: Math.floor(at.getTime() / 1000) })]);
  }

  /** The record, or undefined when there is none or it is not one this code wrote (never an exception). */
  async read(gun: string): Promise<VerifiedRecord | undefined> {
    return (await this.readStored(gun))?.rec;
  }

  /** The record with its store key and bytes as stored (FrozenFetcher keeps them without a TTL). */
  async readStored(gun: string): Promise<StoredRecord | undefined> {
    const latest = (await this.kv.getVersions(this.latestKey(gun))).timestamp;
    return latest === undefined ? undefined : this.readAt(this.recordKey(gun, latest));
  }

  private async readVersion(gun: string, version: number): Promise<VerifiedRecord | undefined> {
    return (await this.readAt(this.recordKey(gun, version)))?.rec;
  }

  private async readAt(key: string): Promise<StoredRecord | undefined> {
    const raw = await this.kv.get(key);
    const rec = raw && parseRecord(raw);
    return rec ? { rec, key, raw: raw! } : undefined;
  }

  /** GUN → instant of its latest verification, for every GUN recorded under this source. */
  async index(): Promise<Map<string, Date>> {
    const v = await this.kv.getVersions(this.indexKey());
    return new Map(Object.entries(v).map(([gun, s]) => [gun, new Date(s * 1000)]));
  }
}

function parseRecord(raw: Buffer): VerifiedRecord | undefined {
  try {
    const r = JSON.parse(raw.toString('utf8')) as Partial<VerifiedRecord>;
    const hex = /^[0-9a-f]{64}$/;
    if (typeof r.at !== 'string' || Number.isNaN(Date.parse(r.at)) || !hex.test(r.timestamp ?? '') || !hex.test(r.root ?? '')) return undefined;
    return { at: r.at, timestamp: r.timestamp!, root: r.root! };
  } catch {
    return undefined;
  }
}
