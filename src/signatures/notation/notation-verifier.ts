// Does a manifest carry a Notary Project signature that satisfies the site's trust policy? The I/O
// side of Notation: list the candidates (referrers.ts, filtered by artifactType before any fetch),
// fetch and inspect each (jws-envelope.ts / cose-envelope.ts), evaluate it against the trust store and
// the clock, judge it (verdict.ts), check revocation when the policy asks; the first signature the
// policy allows wins. Candidates are ranked before anything is fetched (docs/signatures.md, "Discovery with a budget"):
// those with a cached inspection first (no fetch; one allowed before ahead of the rest), then by the
// thumbprint annotation against the trust store. Fetches spend a per-request budget (limits.maxSignatures
// uncached candidates, limits.signatureBytes bytes), and inspections are cached by signature manifest
// digest (content-addressed, so the bytes behind a digest never change) under a fingerprint of the
// trust material: junk signatures pushed in front of a valid one cost one fetch each, once.
import type { X509Certificate } from 'node:crypto';
import { fail, isTrustgateError } from '../../errors.js';
import type { RegistryClient } from '../../registry/registry-client.js';
import { inspectCoseEnvelope } from './cose-envelope.js';
import { evaluateEnvelope, SIGNING_SCHEME_SA, type InspectedEnvelope, type Problem } from './envelope-checks.js';
import { inspectJwsEnvelope } from './jws-envelope.js';
import { certInfo } from './x509.js';
import { createHash } from 'node:crypto';
import { DEFAULT_SIGNATURE_LIMITS, fingerprint, firstInOrder, Reasons, SignatureBudget, SIGNATURE_PARALLEL, TRANSIENT_VERDICT_MS, VerdictCache, type SignatureLimits } from '../../registry/signature-budget.js';
import { fetchSignature, listSignatureCandidates, NotASignature, thumbprintRank, type Descriptor } from './referrers.js';
import type { RevocationChecker } from './revocation.js';
import { selectPolicy, type TrustPolicy, type TrustPolicyDocument } from './trust-policy.js';
import { applyPolicy, describe, signatureFailures, type ManifestDescriptor } from './verdict.js';

export interface NotationResult {
  /** The signature manifest that satisfied the policy (absent under a skip policy). */
  signature?: string | undefined;
  policy: string;
  /** Check failures the policy only logs ("check: reason"). */
  logged: string[];
  /**
   * The verdict holds at most until the signature's expiry or the first notAfter of its chain (a proof
   * replayed from the verdict cache is re-checked by then). Absent under a skip policy.
   */
  validUntil?: Date | undefined;
}

export interface NotationVerifierOptions {
  trustPolicy: TrustPolicyDocument;
  /** "type:name" → certificates of that trust store. */
  trustStores: ReadonlyMap<string, X509Certificate[]>;
  now?: () => Date;
  /** Uncached candidates fetched per verification (limits.maxSignatures). */
  maxSignatures?: number;
  /** Bytes of signature material fetched per verification (limits.signatureBytes). */
  signatureBytes?: number;
  /** OCSP/CRL checking; without it a policy that does not skip revocation fails that check. */
  revocation?: RevocationChecker | undefined;
  /** Inspections kept (by signature manifest digest). */
  cacheEntries?: number;
}

type Inspection = { ok: InspectedEnvelope; allowedBefore?: boolean } | { bad: string };

const RANK = { trusted: 0, unknown: 1, untrusted: 2 } as const;

/**
 * The earliest of the signature's expiry and its chain's notAfter dates that are still ahead: there the
 * verdict may change (a certificate expiring needs a timestamp from then on). One already past did not
 * stop this verdict (a timestamp covered it, or the policy only logs it), and will not later.
 */
function validUntilOf(e: InspectedEnvelope, nowMs: number): Date | undefined {
  const ends = [e.expiry, ...e.chain.map((c) => certInfo(c).notAfter)].filter((d): d is Date => d !== undefined && d.getTime() > nowMs);
  return ends.length > 0 ? new Date(Math.min(...ends.map((d) => d.getTime()))) : undefined;
}

export class NotationVerifier {
  private readonly cache: VerdictCache<Inspection>;
  /** The trust material's identity: part of every cache key, so other material never reuses a verdict. */
  readonly fingerprint: string;
  private readonly limits: SignatureLimits;
  /** SHA-256 thumbprints (hex) of the certificates of each trust store, by "type:name". */
  private readonly thumbprints: ReadonlyMap<string, readonly string[]>;

  constructor(private readonly opts: NotationVerifierOptions) {
    this.cache = new VerdictCache(opts.cacheEntries ?? 4096);
    this.limits = { candidates: opts.maxSignatures ?? DEFAULT_SIGNATURE_LIMITS.candidates, bytes: opts.signatureBytes ?? DEFAULT_SIGNATURE_LIMITS.bytes };
    this.thumbprints = new Map([...opts.trustStores].map(([k, certs]) => [k, certs.map((c) => createHash('sha256').update(c.raw).digest('hex'))]));
    this.fingerprint = fingerprint({ policy: opts.trustPolicy, stores: [...this.thumbprints].sort(([a], [b]) => (a < b ? -1 : 1)) });
  }

  private nowMs(): number {
    return (this.opts.now?.() ?? new Date()).getTime();
  }

  /** Thumbprints of the certificates a signature under `policy` may chain to (ca and signingAuthority stores). */
  private trustedThumbprints(policy: TrustPolicy): Set<string> {
    return new Set(policy.trustStores.filter((s) => s.type !== 'tsa').flatMap((s) => this.thumbprints.get(`${s.type}:${s.name}`) ?? []));
  }

  private anchors(policy: TrustPolicy, type: 'ca' | 'signingAuthority' | 'tsa'): X509Certificate[] {
    return policy.trustStores.filter((s) => s.type === type).flatMap((s) => this.opts.trustStores.get(`${s.type}:${s.name}`) ?? []);
  }

  private key(subject: string, digest: string): string {
    // The subject is part of the manifest's bytes, so (digest, subject) decides the inspection.
    return `${this.fingerprint} ${subject} ${digest}`;
  }

  /** Fetch and inspect one candidate (spending `budget`), or reuse what its digest gave before. */
  private async inspect(registry: RegistryClient, repo: string, subject: string, d: Descriptor, budget?: SignatureBudget): Promise<Inspection> {
    const key = this.key(subject, d.digest);
    const hit = this.cache.get(key, this.nowMs());
    if (hit) return hit;
    try {
      const sig = await fetchSignature(registry, repo, subject, d, budget);
      const inspected = sig.envelopeMediaType === 'application/cose' ? inspectCoseEnvelope(sig.envelope) : inspectJwsEnvelope(sig.envelope);
      const v = { ok: inspected };
      this.cache.set(key, v);
      return v;
    } catch (err) {
      // Malformed bytes are a property of the digest: remember. Network trouble is not: try again next time.
      if ((err instanceof NotASignature && err.permanent) || (isTrustgateError(err) && err.code === 'MALFORMED')) {
        const v = { bad: (err as Error).message };
        this.cache.set(key, v);
        return v;
      }
      if (err instanceof NotASignature && err.transient) {
        const v = { bad: (err as Error).message };
        this.cache.set(key, v, this.nowMs() + TRANSIENT_VERDICT_MS);
        return v;
      }
      return { bad: (err as Error).message };
    }
  }

  /** Judge one inspected signature under `policy`, revocation included when nothing enforced failed first. */
  async judge(policy: TrustPolicy, inspected: InspectedEnvelope, manifest: ManifestDescriptor): Promise<{ allowed: boolean; enforced: Problem[]; logged: Problem[] }> {
    const now = this.opts.now?.() ?? new Date();
    const tsa = policy.trustStores.some((s) => s.type === 'tsa') ? { anchors: this.anchors(policy, 'tsa'), verifyTimestamp: policy.verifyTimestamp } : undefined;
    const v = evaluateEnvelope(inspected, { anchors: this.anchors(policy, inspected.signingScheme === SIGNING_SCHEME_SA ? 'signingAuthority' : 'ca'), tsa, now });
    const failures = signatureFailures(policy, v, manifest);
    let verdict = applyPolicy(policy, failures);
    // Revocation needs the network: only once every other enforced check has passed (as notation-go,
    // which stops at the first critical failure), and not when the policy skips it.
    if (verdict.allowed && policy.actions.revocation !== 'skip') {
      const rev = this.opts.revocation;
      const more: Problem[] = [];
      if (!rev) more.push({ check: 'revocation', reason: 'revocation checking is not available' });
      else {
        const authenticSigningTime = inspected.signingScheme === SIGNING_SCHEME_SA ? inspected.signingTime : undefined;
        const r = await rev.check(v.chain, { purpose: 'codeSigning', signingTime: authenticSigningTime ?? v.timestamp?.genTime });
        if (r) more.push({ check: 'revocation', reason: r });
        // The TSA's chain, when a timestamp was relied on: part of authentic timestamp (as notation-go).
        if (v.timestamp) {
          const t = await rev.check(v.timestamp.tsaChain, { purpose: 'timeStamping' });
          if (t) more.push({ check: 'authenticTimestamp', reason: `timestamping chain: ${t}` });
        }
      }
      verdict = applyPolicy(policy, [...failures, ...more]);
    }
    return verdict;
  }

  /**
   * `registry` and `repo` are where the signatures are read: the image's own repository, or its
   * signature repository (notation.repository), named by `signatureRepository` for messages.
   */
  async verify(registry: RegistryClient, repositoryUri: string, repo: string, manifest: ManifestDescriptor, signatureRepository?: string): Promise<NotationResult> {
    const policy = selectPolicy(this.opts.trustPolicy, repositoryUri);
    if (!policy) throw fail('NOTATION_NO_POLICY', `no Notation trust policy applies to ${repositoryUri}`);
    if (policy.level === 'skip') return { policy: policy.name, logged: [] };
    // A signature repository holds the referrers of every image's digest (referrers API or tag schema
    // sha256-<hex> there). The policy is still chosen by the image's name (registryScopes), and a
    // signature must still name the image's digest, size and media type (fetchSignature, verdict.ts).
    const where = signatureRepository !== undefined ? ` in signature repository ${signatureRepository}` : '';
    const candidates = await listSignatureCandidates(registry, repo, manifest.digest, Infinity);
    if (candidates.length === 0) throw fail('NOTATION_UNSIGNED', `${repositoryUri}@${manifest.digest} has no Notary Project signature${where}`);
    const reasons = new Reasons();
    const budget = new SignatureBudget(this.limits);
    const judged = async (c: Descriptor, inspection: Inspection): Promise<NotationResult | undefined> => {
      if ('bad' in inspection) {
        reasons.push(`${c.digest}: ${inspection.bad}`);
        return undefined;
      }
      try {
        const verdict = await this.judge(policy, inspection.ok, manifest);
        if (verdict.allowed) {
          inspection.allowedBefore = true;
          return { signature: c.digest, policy: policy.name, logged: verdict.logged.map(describe), validUntil: validUntilOf(inspection.ok, this.nowMs()) };
        }
        reasons.push(`${c.digest}: ${verdict.enforced.map(describe).join('; ')}`);
      } catch (err) {
        reasons.push(`${c.digest}: ${(err as Error).message}`);
      }
      return undefined;
    };
    // Ranking, cheapest first. 1. Candidates with a cached inspection cost no fetch: one the policy
    // allowed before first, cached failures are only counted. They never spend the budget.
    const cached: Array<{ c: Descriptor; i: Inspection }> = [];
    const fresh: Descriptor[] = [];
    for (const c of candidates) {
      const i = this.cache.get(this.key(manifest.digest, c.digest), this.nowMs());
      if (i) cached.push({ c, i });
      else fresh.push(c);
    }
    const before = (i: Inspection) => Number('ok' in i && i.allowedBefore === true);
    cached.sort((a, b) => before(b.i) - before(a.i));
    for (const { c, i } of cached) {
      const r = await judged(c, i);
      if (r) return r;
    }
    // 2. Uncached ones by what their thumbprint annotation says (the order is stable: listing order
    // within a rank); those that name only other certificates get what the budget has left.
    const trusted = this.trustedThumbprints(policy);
    const tiers: Descriptor[][] = [[], [], []];
    for (const c of fresh) tiers[RANK[thumbprintRank(c, trusted)]]!.push(c);
    // Rank by rank, so a batch never mixes a lower rank in with a higher one.
    for (const tier of tiers) {
      const found = await firstInOrder(tier, SIGNATURE_PARALLEL, async (c) => (budget.take() ? judged(c, await this.inspect(registry, repo, manifest.digest, c, budget)) : undefined));
      if (found) return found;
    }
    const unexamined = budget.describeUnexamined();
    if (unexamined) reasons.first(unexamined);
    throw fail('NOTATION_INVALID', `no Notary Project signature of ${repositoryUri}@${manifest.digest}${where} satisfies trust policy ${policy.name}: ${reasons.toString()}`);
  }
}
