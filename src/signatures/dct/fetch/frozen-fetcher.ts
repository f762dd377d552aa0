// The metadata source of a frozen upstream (notary.frozenAt has passed): never the network, only the
// set last verified at or before the freeze (state/verified-records.ts). timestamp.json and root.json
// are the recorded files; snapshot and targets are read by the checksums their parents list, exactly
// as a live update reads them. Every byte is hash-checked against its name here and verified again by
// the trusted set (signatures against the trusted root, links, rollback floors).
import { createHash } from 'node:crypto';
import { fail } from '../../../errors.js';
import type { KvStore } from '../../../store/kv.js';
import type { MetadataFetcher, MetadataRequest } from '../client.js';
import type { VerifiedRecord, VerifiedRecords } from '../state/verified-records.js';

export class FrozenFetcher implements MetadataFetcher {
  readonly source: string;
  /** Keys this process has pinned already (see `pin`). */
  private readonly pinned = new Set<string>();

  constructor(
    private readonly kv: KvStore,
    private readonly records: VerifiedRecords,
    readonly frozenAt: Date,
  ) {
    this.source = records.source;
  }

  private async record(gun: string): Promise<VerifiedRecord> {
    const stored = await this.records.readStored(gun);
    const rec = stored?.rec;
    const at = this.frozenAt.toISOString();
    if (!rec) throw fail('FROZEN_NO_STATE', `DCT trust for ${gun} is frozen at ${at} and no trust data was verified for it before then`);
    // A record newer than the freeze came from a replica without frozenAt, or a bundle made later: the
    // state it names is not what was trusted at the freeze, and the earlier one is gone.
    if (Date.parse(rec.at) > this.frozenAt.getTime()) {
      throw fail('FROZEN_NO_STATE', `DCT trust for ${gun} is frozen at ${at}; its stored trust data was verified later (${rec.at}) and is not used`);
    }
    await this.pin(stored!.key, stored!.raw);
    return rec;
  }

  /**
   * Keep `key` until evicted (no TTL), once per process. The frozen set may have been stored with the
   * usual 30-day retention: verified before notary.frozenAt was configured, or by a version in which a
   * 30-day copy could land over the pinned file. Nothing can fetch it again once it expires, so the
   * first frozen read of each file writes the same bytes back without a TTL. Best effort: a store that
   * cannot take the write still serves what it has.
   */
  private async pin(key: string, bytes: Buffer): Promise<void> {
    if (this.pinned.has(key)) return;
    this.pinned.add(key);
    try {
      await this.kv.set(key, bytes, 0);
    } catch {
      this.pinned.delete(key); // tried again on the next frozen update
    }
  }

  async fetch(req: MetadataRequest): Promise<Uint8Array | null> {
    // Intermediate roots of a rotation are not kept: a frozen set rotates nowhere.
    if (req.version !== undefined) return null;
    let sha256 = req.sha256;
    if (sha256 === undefined) {
      if (req.role !== 'timestamp' && req.role !== 'root') return null;
      const rec = await this.record(req.gun);
      sha256 = req.role === 'timestamp' ? rec.timestamp : rec.root;
    }
    const key = this.records.fileKey(req.gun, req.role, sha256.toLowerCase());
    const bytes = await this.kv.get(key);
    if (!bytes || bytes.length > req.maxBytes || createHash('sha256').update(bytes).digest('hex') !== sha256.toLowerCase()) {
      // Nothing can be fetched any more: a file of the frozen set that is gone is the end of that GUN's trust.
      throw fail('FROZEN_NO_STATE', `DCT trust for ${req.gun} is frozen and its ${req.role}.json verified before the freeze is not in the store`);
    }
    await this.pin(key, bytes);
    return bytes;
  }
}
