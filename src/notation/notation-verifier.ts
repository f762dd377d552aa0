// Does a manifest carry a Notary Project signature that satisfies the site's trust policy? The I/O
// side of Notation: list the candidates (referrers.ts, filtered by artifactType before any fetch),
// fetch and inspect each (jws-envelope.ts / cose-envelope.ts), evaluate it against the trust store and
// the clock, judge it (verdict.ts), check revocation when the policy asks; the first signature the
// policy allows wins, at most `maxSignatures` are tried. Inspections are cached by signature manifest
// digest (content-addressed, so the bytes behind a digest never change): junk signatures pushed in
// front of a valid one cost one fetch each, once.
import type { X509Certificate } from 'node:crypto';
import { fail, isTrustgateError } from '../errors.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { inspectCoseEnvelope } from './cose-envelope.js';
import { evaluateEnvelope, SIGNING_SCHEME_SA, type InspectedEnvelope, type Problem } from './envelope-checks.js';
import { inspectJwsEnvelope } from './jws-envelope.js';
import { fetchSignature, listSignatureCandidates, MAX_SIGNATURES, NotASignature } from './referrers.js';
import type { RevocationChecker } from './revocation.js';
import { selectPolicy, type TrustPolicy, type TrustPolicyDocument } from './trust-policy.js';
import { applyPolicy, describe, signatureFailures, type ManifestDescriptor } from './verdict.js';

export interface NotationResult {
  /** The signature manifest that satisfied the policy (absent under a skip policy). */
  signature?: string | undefined;
  policy: string;
  /** Check failures the policy only logs ("check: reason"). */
  logged: string[];
}

export interface NotationVerifierOptions {
  trustPolicy: TrustPolicyDocument;
  /** "type:name" → certificates of that trust store. */
  trustStores: ReadonlyMap<string, X509Certificate[]>;
  now?: () => Date;
  /** Signatures tried per manifest (limits.maxSignatures). */
  maxSignatures?: number;
  /** OCSP/CRL checking; without it a policy that does not skip revocation fails that check. */
  revocation?: RevocationChecker | undefined;
  /** Inspections kept (by signature manifest digest). */
  cacheEntries?: number;
}

type Inspection = { ok: InspectedEnvelope } | { bad: string };

export class NotationVerifier {
  private readonly cache = new Map<string, Inspection>();

  constructor(private readonly opts: NotationVerifierOptions) {}

  private anchors(policy: TrustPolicy, type: 'ca' | 'signingAuthority' | 'tsa'): X509Certificate[] {
    return policy.trustStores.filter((s) => s.type === type).flatMap((s) => this.opts.trustStores.get(`${s.type}:${s.name}`) ?? []);
  }

  private remember(key: string, v: Inspection): Inspection {
    const max = this.opts.cacheEntries ?? 4096;
    this.cache.delete(key);
    this.cache.set(key, v);
    while (this.cache.size > max) this.cache.delete(this.cache.keys().next().value!);
    return v;
  }

  /** Fetch and inspect one candidate, or reuse what its digest gave before. */
  private async inspect(registry: RegistryClient, repo: string, subject: string, digest: string): Promise<Inspection> {
    // The subject is part of the manifest's bytes, so (digest, subject) decides the outcome.
    const key = `${digest} ${subject}`;
    const hit = this.cache.get(key);
    if (hit) return this.remember(key, hit);
    try {
      const sig = await fetchSignature(registry, repo, subject, { digest });
      const inspected = sig.envelopeMediaType === 'application/cose' ? inspectCoseEnvelope(sig.envelope) : inspectJwsEnvelope(sig.envelope);
      return this.remember(key, { ok: inspected });
    } catch (err) {
      // Malformed bytes are a property of the digest: remember. Network trouble is not: try again next time.
      if ((err instanceof NotASignature && err.permanent) || (isTrustgateError(err) && err.code === 'MALFORMED')) return this.remember(key, { bad: (err as Error).message });
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
    const candidates = await listSignatureCandidates(registry, repo, manifest.digest, this.opts.maxSignatures ?? MAX_SIGNATURES);
    if (candidates.length === 0) throw fail('NOTATION_UNSIGNED', `${repositoryUri}@${manifest.digest} has no Notary Project signature${where}`);
    const reasons: string[] = [];
    for (const c of candidates) {
      const inspection = await this.inspect(registry, repo, manifest.digest, c.digest);
      if ('bad' in inspection) {
        reasons.push(`${c.digest}: ${inspection.bad}`);
        continue;
      }
      try {
        const verdict = await this.judge(policy, inspection.ok, manifest);
        if (verdict.allowed) return { signature: c.digest, policy: policy.name, logged: verdict.logged.map(describe) };
        reasons.push(`${c.digest}: ${verdict.enforced.map(describe).join('; ')}`);
      } catch (err) {
        reasons.push(`${c.digest}: ${(err as Error).message}`);
      }
    }
    throw fail('NOTATION_INVALID', `no Notary Project signature of ${repositoryUri}@${manifest.digest}${where} satisfies trust policy ${policy.name}: ${reasons.join(' | ')}`);
  }
}
