// What one signature verification may cost upstream, and what every candidate it looked at is known
// to be (issue 27, docs/signatures.md, "Discovery with a budget"). Anyone who can push to a repository can list
// signature candidates next to an image: without bounds, junk multiplies every pull's upstream load
// and pushes a valid signature out of reach. So:
// - a budget per verification (one manifest digest, one kind): fresh candidates fetched
//   (limits.maxSignatures) and bytes of signature material fetched (limits.signatureBytes). Only a
//   candidate without a cached verdict spends it; callers rank candidates so that those that cannot be
//   valid come last and get only what is left;
// - a bounded in-memory cache of verdicts by candidate, keyed with a fingerprint of the trust material
//   (a verdict under other keys or another policy is never reused), so a junk candidate costs once.
// Pure apart from the clock-free LRU map: no I/O here.
import { ExpiringLru } from '../store/expiring-lru.js';
import { createHash } from 'node:crypto';

export interface SignatureLimits {
  /** Candidates without a cached verdict fetched per verification (limits.maxSignatures). */
  candidates: number;
  /** Bytes of signature manifests, payloads, envelopes and bundles fetched per verification (limits.signatureBytes). */
  bytes: number;
}

export const DEFAULT_SIGNATURE_LIMITS: SignatureLimits = { candidates: 128, bytes: 4 * 1024 * 1024 };
/** Fresh candidates fetched at once by one verification (they queue on the signature pool beyond its size). */
export const SIGNATURE_PARALLEL = 8;
/** Reasons kept for a refusal message: the rest are counted, so junk cannot grow a message without bound. */
const MAX_REASONS = 8;

export class SignatureBudget {
  private candidatesLeft: number;
  private bytesLeft: number;
  /** Candidates ranked for a fetch that the budget did not reach. */
  notExamined = 0;

  constructor(readonly limits: SignatureLimits = DEFAULT_SIGNATURE_LIMITS) {
    this.candidatesLeft = limits.candidates;
    this.bytesLeft = limits.bytes;
  }

  /** One fresh candidate: false (and counted as not examined) once the candidate or byte budget is spent. */
  take(): boolean {
    if (this.candidatesLeft <= 0 || this.bytesLeft <= 0) {
      this.notExamined++;
      return false;
    }
    this.candidatesLeft--;
    return true;
  }

  /**
   * Reserve up to `itemMax` bytes for one read; the caller reads at most what it got and gives back
   * the rest with `refund`. Reserving first keeps the bound exact with reads in parallel.
   */
  reserve(itemMax: number): number {
    const r = Math.max(0, Math.min(itemMax, this.bytesLeft));
    this.bytesLeft -= r;
    return r;
  }

  refund(bytes: number): void {
    this.bytesLeft += Math.max(0, bytes);
  }

  /** Why a refusal may be lifted by a later pull, or '' when every ranked candidate was examined. */
  describeUnexamined(): string {
    if (this.notExamined === 0) return '';
    return `${this.notExamined} candidate(s) not examined: this request's signature budget (${this.limits.candidates} uncached candidates, ${this.limits.bytes} bytes) was spent; verdicts are cached, so a later request examines the rest`;
  }
}

/**
 * How long a failure that is not a property of the candidate's bytes but of the registry's answer (a
 * listed manifest or blob it does not have, bytes that do not hash to the digest) is remembered. Not
 * forever: it may be pushed a moment later. Not never: else listing endless missing digests would
 * make every request spend its whole budget on them.
 */
export const TRANSIENT_VERDICT_MS = 60_000;

/** Least recently used, at most `max` entries; an entry may carry an expiry (epoch ms). */
export class VerdictCache<V> extends ExpiringLru<V> {}

/** SHA-256 over a JSON rendering with sorted keys (Buffers as hex): the identity of some trust material. */
export function fingerprint(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('hex');
    if (v instanceof Map) return ['Map', [...v].map(norm)];
    if (v instanceof Set) return ['Set', [...v].map(norm)];
    if (v instanceof RegExp) return ['RegExp', String(v)];
    if (v instanceof Date) return ['Date', v.toISOString()];
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, norm((v as Record<string, unknown>)[k])]));
    return v;
  };
  return createHash('sha256').update(JSON.stringify(norm(value)) ?? 'undefined').digest('hex').slice(0, 32);
}

/**
 * Run `examine` over `items` in order, at most `parallel` at a time, and give the first result (in
 * item order) that is not undefined. No batch starts once one is found.
 */
export async function firstInOrder<T, R>(items: readonly T[], parallel: number, examine: (t: T) => Promise<R | undefined>): Promise<R | undefined> {
  for (let i = 0; i < items.length; i += parallel) {
    const results = await Promise.all(items.slice(i, i + parallel).map(examine));
    const found = results.find((r) => r !== undefined);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Refusal reasons, bounded: the first few and a count of the rest. */
export class Reasons {
  private readonly kept: string[] = [];
  private more = 0;
  /** A reason that always shows, first (the budget note: it says a later request may succeed). */
  first(r: string): void {
    this.kept.unshift(r);
  }
  push(r: string): void {
    if (this.kept.length < MAX_REASONS) this.kept.push(r);
    else this.more++;
  }
  get count(): number {
    return this.kept.length + this.more;
  }
  toString(): string {
    return [...this.kept, ...(this.more ? [`and ${this.more} more`] : [])].join(' | ');
  }
}
