// What the proxy asks of trust: verified tag → target, and the list of signed tags. Keeps each GUN's
// verified set in memory until the timestamp's cache period ends (never past any role's expiry), and
// coalesces concurrent misses for one GUN into one update (single-flight).
import type { Clock, TrustClient } from './client.js';
import { resolveTag, type SignedTarget } from './resolve-tag.js';
import type { TrustedSet } from './trusted-set.js';
import { isValidTag } from './model/names.js';
import { earliestRootCertExpiry } from './verify/root.js';

export interface TrustServiceOptions {
  client: TrustClient;
  clock: Clock;
  /** Seconds a verified set is used before the timestamp is re-checked. 0 = every request. */
  cacheSeconds: number;
  /** GUNs kept in memory. */
  maxEntries?: number;
}

interface Entry {
  set: TrustedSet;
  until: number;
}

/** Earliest expiry of any role (or root certificate) in the set: cached data is never used past it. */
export function earliestExpiry(set: TrustedSet): number {
  let t = Math.min(set.root.root.expires.getTime(), earliestRootCertExpiry(set.root.root)?.getTime() ?? Infinity);
  if (set.timestamp) t = Math.min(t, set.timestamp.ts.expires.getTime());
  if (set.snapshot) t = Math.min(t, set.snapshot.snap.expires.getTime());
  for (const r of set.targets.values()) t = Math.min(t, r.targets.expires.getTime());
  return t;
}

export class TrustService {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<TrustedSet>>();
  private readonly maxEntries: number;

  constructor(private readonly opts: TrustServiceOptions) {
    this.maxEntries = opts.maxEntries ?? 10_000;
  }

  async verifiedSet(gun: string): Promise<TrustedSet> {
    const now = this.opts.clock.now().getTime();
    const e = this.entries.get(gun);
    if (e && e.until > now) return e.set;
    let p = this.inflight.get(gun);
    if (!p) {
      p = this.opts.client.update(gun).then(
        (set) => {
          this.remember(gun, set);
          return set;
        },
        (err) => {
          // A failed update must not leave a stale "verified" set behind.
          this.entries.delete(gun);
          throw err;
        },
      );
      p = p.finally(() => this.inflight.delete(gun));
      this.inflight.set(gun, p);
    }
    return p;
  }

  private remember(gun: string, set: TrustedSet): void {
    const until = Math.min(set.now.getTime() + this.opts.cacheSeconds * 1000, earliestExpiry(set));
    this.entries.delete(gun);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(gun, { set, until });
  }

  async resolve(gun: string, tag: string): Promise<SignedTarget> {
    const set = await this.verifiedSet(gun);
    return resolveTag(gun, tag, set.targets, set.skipped);
  }

  /** Tags docker would pull with trust: those that resolve to targets/releases or targets. */
  async signedTags(gun: string): Promise<SignedTarget[]> {
    const set = await this.verifiedSet(gun);
    const names = new Set<string>();
    for (const role of ['targets/releases', 'targets']) for (const name of set.targets.get(role)?.targets.targets.keys() ?? []) names.add(name);
    const out: SignedTarget[] = [];
    for (const name of names) {
      if (!isValidTag(name)) continue; // a target name no client could ask for as a tag
      try {
        out.push(resolveTag(gun, name, set.targets, set.skipped));
      } catch {
        /* not trusted for pulls (e.g. outside the role's paths): not listed */
      }
    }
    return out;
  }
}
