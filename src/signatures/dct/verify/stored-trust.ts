// Trust data read back from a shared store, judged against the replica's own configuration (pure: no
// I/O, `now` passed in). The shared store is not a root of trust (DESIGN.md "Trust rules"): anyone who
// can write to it could otherwise choose the root and the rollback floors of every replica.
//  - A stored root counts only where the replica's trust pinning (certs or CA for the GUN) accepts it.
//    Where only TOFU applies, a replica's first root is the one *it* fetched from notary, never one a
//    store handed it: trust on first use means this replica's first use.
//  - A stored floor counts only where metadata signed by the replica's anchor root proves it: a floor
//    raised by a forger (version 10) would otherwise refuse the genuine metadata forever.
import { parseEnvelope, parseTimestamp } from '../model/metadata.js';
import { verifyThreshold } from './signatures.js';
import { validateRoot, type TrustedRoot, type TrustPinning } from './root.js';

/**
 * True when the replica's pins (certs[GUN], certs["prefix*"] or a CA for a GUN prefix) accept this root:
 * signed by a threshold of its own pinned keys, certificate CN = GUN. False without a pin for the GUN
 * (TOFU is not applied to a root read from a store) and for anything malformed or unsigned.
 * Expiry is not judged here: an accepted root is an anchor, and the client rotates away from an expired
 * anchor with pinning re-applied.
 */
export function isPinnedRoot(gun: string, raw: Uint8Array, pinning: TrustPinning | undefined, now: Date): boolean {
  if (!pinning || (!Object.keys(pinning.certs ?? {}).length && !Object.keys(pinning.ca ?? {}).length)) return false;
  try {
    validateRoot({ gun, env: parseEnvelope(raw, 'root'), now, checkExpiry: false, pinning: { ...pinning, disableTofu: true } });
    return true;
  } catch {
    return false;
  }
}

/**
 * The version of a timestamp.json a threshold of the anchor root's timestamp keys signed, or undefined.
 * That version was published: a timestamp floor up to it is safe to enforce. Expiry does not matter for
 * that (an expired timestamp still proves its version existed).
 */
export function provenTimestampVersion(anchor: TrustedRoot, raw: Uint8Array): number | undefined {
  try {
    const env = parseEnvelope(raw, 'timestamp');
    const ts = parseTimestamp(env);
    const r = anchor.root;
    const keys = new Map(r.roles.timestamp.keyids.flatMap((id) => (r.keys.has(id) ? [[id, r.keys.get(id)!] as const] : [])));
    verifyThreshold('timestamp', env.canonical, env.signatures, keys, r.roles.timestamp.threshold);
    return ts.version;
  } catch {
    return undefined;
  }
}
