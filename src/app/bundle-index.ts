// The index of imported air-gap bundles kept in the store: `bundle status` reports it, `start` watches
// its expiries.
import type { KvStore } from '../store/kv.js';
import { BUNDLE_INDEX_KEY } from './store.js';

export interface BundleIndexEntry {
  importedAt: string;
  versions: Record<string, number>;
  expires: Record<string, string>;
}

export async function readBundleIndex(kv: KvStore): Promise<Record<string, BundleIndexEntry>> {
  const raw = await kv.get(BUNDLE_INDEX_KEY);
  return raw ? (JSON.parse(raw.toString('utf8')) as Record<string, BundleIndexEntry>) : {};
}

/** Seconds until the earliest expiry of a repository's roles (negative: expired). */
export function secondsLeft(e: BundleIndexEntry, now: Date): number {
  const earliest = Math.min(...Object.values(e.expires).map((x) => Date.parse(x)));
  return Math.floor((earliest - now.getTime()) / 1000);
}
