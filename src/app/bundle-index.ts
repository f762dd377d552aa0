// The index of imported air-gap bundles kept in the store: `bundle status` reports it, `start` watches
// its expiries.
import type { KvStore } from '../store/kv.js';
import { BUNDLE_INDEX_KEY } from './store.js';

export interface BundleIndexEntry {
  importedAt: string;
  versions: Record<string, number>;
  expires: Record<string, string>;
  /** Imported for an upstream whose DCT trust is frozen (notary.frozenAt): that instant. */
  frozenAt?: string | undefined;
}

export async function readBundleIndex(kv: KvStore): Promise<Record<string, BundleIndexEntry>> {
  const raw = await kv.get(BUNDLE_INDEX_KEY);
  return raw ? (JSON.parse(raw.toString('utf8')) as Record<string, BundleIndexEntry>) : {};
}

/**
 * Seconds until the earliest expiry of a repository's roles (negative: expired). An entry of a frozen
 * upstream counts only the signer's roles: its timestamp and snapshot were checked at the freeze.
 */
export function secondsLeft(e: BundleIndexEntry, now: Date): number {
  const counted = Object.entries(e.expires).filter(([role]) => !e.frozenAt || (role !== 'timestamp' && role !== 'snapshot'));
  const earliest = Math.min(...counted.map(([, x]) => Date.parse(x)));
  return Math.floor((earliest - now.getTime()) / 1000);
}
