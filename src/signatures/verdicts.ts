// The verdict cache of the one decision (issue 25): what a digest prover (Notation, cosign) said about
// (repository, digest, size, media type), kept so that a warm request neither lists nor verifies
// signatures again. A proof is kept until the earliest of its own end (the signature's expiry, a
// certificate's notAfter: SignatureProof.validUntil) and maxAgeMs (limits.trustCacheSeconds, which
// also bounds how long a revocation or a deleted signature may go unseen). A refusal is kept only
// refusalMs (1 s): a signature pushed a moment later is seen within it, and a flood of requests for an
// unsigned digest makes at most one listing a second. Concurrent misses share one verification.
// The cache belongs to one prover instance, whose trust material is fixed at start, so a verdict is
// never replayed under other keys or another policy. docs/signatures.md, "Warm answers and freshness".
import { isTrustgateError, type TrustgateError } from '../errors.js';
import { ExpiringLru, type Expiring } from '../store/expiring-lru.js';
import type { Descriptor, DigestProver, SignatureProof } from './port.js';

export type Verdict = { proof: SignatureProof } | { refusal: TrustgateError };

export interface VerdictOptions {
  nowMs: () => number;
  /** Longest a proof is replayed (ms). */
  maxAgeMs: number;
  /** How long a refusal is replayed (ms). */
  refusalMs?: number;
  max?: number;
}

export const REFUSAL_VERDICT_MS = 1000;

/** A prover whose verdicts are cached; `now()` answers synchronously from the cache (the warm path). */
export class CachedProver implements DigestProver {
  private readonly verdicts: ExpiringLru<Verdict>;
  private readonly refusalMs: number;

  constructor(
    readonly inner: DigestProver,
    private readonly opts: VerdictOptions,
  ) {
    this.verdicts = new ExpiringLru(opts.max ?? 10_000);
    this.refusalMs = opts.refusalMs ?? REFUSAL_VERDICT_MS;
  }

  private static key(repositoryUri: string, d: Descriptor): string {
    return `${repositoryUri}@${d.digest} ${d.size} ${d.mediaType}`;
  }

  /**
   * The earliest end (SignatureProof.validUntil: the signature's expiry, a certificate's notAfter) of
   * the proofs in use at `nowMs`, ms; undefined when none is or none has an end. Bounded by `max`.
   */
  earliestProofEnd(nowMs: number): number | undefined {
    let t = Infinity;
    for (const e of this.verdicts.live(nowMs)) if ('proof' in e.value && e.value.proof.validUntil) t = Math.min(t, e.value.proof.validUntil.getTime());
    return t === Infinity ? undefined : t;
  }

  /** The cached verdict for this descriptor, without I/O. */
  now(repositoryUri: string, d: Descriptor): Expiring<Verdict> | undefined {
    return this.verdicts.entry(CachedProver.key(repositoryUri, d), this.opts.nowMs());
  }

  async verify(registry: Parameters<DigestProver['verify']>[0], repositoryUri: string, repo: string, d: Descriptor): Promise<SignatureProof> {
    const e = await this.verdicts.getOrLoad(CachedProver.key(repositoryUri, d), this.opts.nowMs, async () => {
      const now = this.opts.nowMs();
      try {
        const proof = await this.inner.verify(registry, repositoryUri, repo, d);
        const end = proof.validUntil?.getTime() ?? Infinity;
        return { value: { proof }, until: Math.min(end, now + this.opts.maxAgeMs) };
      } catch (err) {
        // Only refusals are verdicts; anything else is a bug and propagates, uncached.
        if (!isTrustgateError(err)) throw err;
        return { value: { refusal: err }, until: now + this.refusalMs };
      }
    });
    if ('refusal' in e.value) throw e.value.refusal;
    return e.value.proof;
  }
}
