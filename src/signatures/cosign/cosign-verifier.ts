// Does a manifest carry a cosign signature that satisfies the upstream's cosign keys or keyless
// identities? The I/O side of cosign: list the candidates (discovery.ts: simple-signing layers of the
// .sig manifest, Sigstore bundle referrers; other media and artifact types are filtered before any
// limit), take those with a cached verdict first (no fetch), then fetch and verify the others
// (verify-signature.ts) within the request's budget (limits.maxSignatures uncached candidates,
// limits.signatureBytes bytes); the first one that verifies wins. Verdicts are cached by candidate
// under a fingerprint of the trust (keys, identities, trusted root, tlog), so junk costs one fetch,
// once, and other trust never reuses them (docs/signatures.md, "Discovery with a budget").
import { fail } from '../../errors.js';
import type { RegistryClient } from '../../registry/registry-client.js';
import type { DigestSignatureVerifier, SignatureProof, SignatureSources } from '../port.js';
import { DEFAULT_SIGNATURE_LIMITS, fingerprint, firstInOrder, Reasons, SignatureBudget, SIGNATURE_PARALLEL, TRANSIENT_VERDICT_MS, VerdictCache, type SignatureLimits } from '../../registry/signature-budget.js';
import { fetchBundle, fetchClassic, isUnusable, listBundles, listClassic, type ClassicCandidate } from './discovery.js';
import type { Descriptor } from '../../registry/referrers.js';
import type { CosignTrustSelector } from './select-trust.js';
import { verifyBundleSignature, verifyClassicSignature, type CosignTrust } from './verify-signature.js';

/** The rule a refusal names: which keys and identities were asked for. */
export function describeTrust(trust: CosignTrust): string {
  const parts: string[] = [];
  if (trust.keys.length) parts.push(`keys ${trust.keys.map((k) => k.name).join(', ')}`);
  if (trust.root) parts.push(`identities ${trust.identities.map((i) => `${i.subject ?? `/${i.subjectRegExp}/`} from ${i.issuer}`).join(', ')}`);
  return parts.join('; ');
}

/** A candidate's verdict: who signed (allowed), or why not when that is a property of its bytes under this trust. */
type Verdict = { by: string } | { bad: string };

type Candidate = { form: 'classic'; c: ClassicCandidate; key: string } | { form: 'bundle'; d: Descriptor; key: string };

export interface CosignVerifierOptions {
  /** Uncached candidates fetched per verification (limits.maxSignatures). */
  maxSignatures?: number | undefined;
  /** Bytes of signature material fetched per verification (limits.signatureBytes). */
  signatureBytes?: number | undefined;
  /** Verdicts kept (by trust, subject and candidate). */
  cacheEntries?: number | undefined;
}

export class CosignVerifier implements DigestSignatureVerifier {
  /** A fixed trust, or one chosen per repository (repository entries with their own `cosign:`). */
  private readonly trustFor: CosignTrustSelector;
  private readonly limits: SignatureLimits;
  private readonly verdicts: VerdictCache<Verdict>;
  private readonly fingerprints = new WeakMap<CosignTrust, string>();

  constructor(
    trust: CosignTrust | CosignTrustSelector,
    /** The budget (limits.maxSignatures, or the options) and the verdict cache's size. */
    limits: number | CosignVerifierOptions = {},
    /** Where a trust's `repository` is read (src/app/runtime.ts: the client of the upstream serving it). */
    private readonly sources?: SignatureSources,
  ) {
    this.trustFor = typeof trust === 'function' ? trust : () => trust;
    const o = typeof limits === 'number' ? { maxSignatures: limits } : limits;
    this.limits = { candidates: o.maxSignatures ?? DEFAULT_SIGNATURE_LIMITS.candidates, bytes: o.signatureBytes ?? DEFAULT_SIGNATURE_LIMITS.bytes };
    this.verdicts = new VerdictCache(o.cacheEntries ?? 4096);
  }

  /** The identity of a trust's material: keys (SPKI), identities, trusted root, tlog rule. */
  private fingerprintOf(trust: CosignTrust): string {
    let fp = this.fingerprints.get(trust);
    if (fp === undefined) {
      fp = fingerprint({
        keys: trust.keys.map((k) => k.key.export({ type: 'spki', format: 'der' })),
        identities: trust.identities,
        root: trust.root ?? null,
        tlog: trust.tlog ?? null,
      });
      this.fingerprints.set(trust, fp);
    }
    return fp;
  }

  async verify(registry: RegistryClient, repositoryUri: string, repo: string, manifest: { digest: string }): Promise<SignatureProof> {
    const trust = this.trustFor(repo);
    // COSIGN_REPOSITORY semantics: the signature repository holds every image's signatures by digest
    // (sha256-<hex>.sig and bundle referrers of the digest), so only where we look changes. What a
    // signature must sign does not: the digest served (signed-subject.ts), whatever repository it is in.
    if (trust.repository !== undefined && !this.sources) throw fail('INTERNAL', `cosign repository ${trust.repository} is configured but no registry client was wired for it`);
    const at = trust.repository !== undefined ? this.sources!(trust.repository) : { registry, repo };
    const fp = this.fingerprintOf(trust);
    const rejected: string[] = [];
    const classic = await listClassic(at.registry, at.repo, manifest.digest, rejected);
    const classicKey = (c: ClassicCandidate) => `${fp} ${manifest.digest} classic ${c.key}`;
    // A tag-form signature verified before answers before the bundle listing is read at all (anyone
    // may make that listing a 4 MiB index): one look-up, the .sig manifest, on the warm path.
    for (const c of classic) {
      const v = this.verdicts.get(classicKey(c));
      if (v && 'by' in v) return { kind: 'cosign', by: `cosign ${v.by} ${c.manifestDigest}${trust.repository !== undefined ? ` from ${trust.repository}` : ''}` };
    }
    const listed = { classic, bundles: await listBundles(at.registry, at.repo, manifest.digest), rejected };
    const where = trust.repository !== undefined ? ` in signature repository ${trust.repository}` : '';
    // The proof says where the signature was found, so an audit line can be checked against that repository.
    const from = trust.repository !== undefined ? ` from ${trust.repository}` : '';
    if (listed.classic.length === 0 && listed.bundles.length === 0 && listed.rejected.length === 0) {
      throw fail('COSIGN_UNSIGNED', `${repositoryUri}@${manifest.digest} has no cosign signature${where} (no ${manifest.digest.replace(':', '-')}.sig tag, no Sigstore bundle referrer)`);
    }
    const reasons = new Reasons();
    for (const r of listed.rejected) reasons.push(r);
    const proof = (c: Candidate, by: string): SignatureProof => ({ kind: 'cosign', by: `cosign ${by} ${c.form === 'classic' ? c.c.manifestDigest : c.d.digest}${from}` });
    const label = (c: Candidate) => (c.form === 'classic' ? `${c.c.manifestDigest} layer ${c.c.layer}` : `bundle ${c.d.digest}`);
    // Both forms are genuine-looking once filtered by media and artifact type: the tag form first,
    // as before. A verdict is a property of (trust, subject, candidate bytes).
    const candidates: Candidate[] = [
      ...listed.classic.map((c) => ({ form: 'classic' as const, c, key: classicKey(c) })),
      ...listed.bundles.map((d) => ({ form: 'bundle' as const, d, key: `${fp} ${manifest.digest} bundle ${d.digest}` })),
    ];
    // Cached verdicts first: no fetch, no budget. A cached failure is only counted.
    const fresh: Candidate[] = [];
    for (const c of candidates) {
      const v = this.verdicts.get(c.key);
      if (!v) fresh.push(c);
      else if ('by' in v) return proof(c, v.by);
      else reasons.push(`${label(c)}: ${v.bad}`);
    }
    const budget = new SignatureBudget(this.limits);
    const examine = async (c: Candidate): Promise<SignatureProof | undefined> => {
      if (!budget.take()) return undefined;
      const found = c.form === 'classic' ? await fetchClassic(at.registry, at.repo, c.c, budget) : await fetchBundle(at.registry, at.repo, manifest.digest, c.d, budget);
      if (isUnusable(found)) {
        // Bytes that are not a signature stay so; a registry or network failure, or the budget, do not.
        if (found.permanent) this.verdicts.set(c.key, { bad: found.reason });
        else if (found.transient) this.verdicts.set(c.key, { bad: found.reason }, Date.now() + TRANSIENT_VERDICT_MS);
        reasons.push(found.reason);
        return undefined;
      }
      try {
        const signer = 'bundle' in found ? verifyBundleSignature(found.bundle, manifest.digest, trust) : verifyClassicSignature(found, manifest.digest, trust);
        this.verdicts.set(c.key, { by: signer.by });
        return proof(c, signer.by);
      } catch (err) {
        // The verification is pure over these bytes and this trust: its failure is cached too.
        this.verdicts.set(c.key, { bad: (err as Error).message });
        reasons.push(`${label(c)}: ${(err as Error).message}`);
        return undefined;
      }
    };
    const found = await firstInOrder(fresh, SIGNATURE_PARALLEL, examine);
    if (found) return found;
    const unexamined = budget.describeUnexamined();
    if (unexamined) reasons.first(unexamined);
    throw fail('COSIGN_INVALID', `no cosign signature of ${repositoryUri}@${manifest.digest}${where} satisfies cosign ${describeTrust(trust)}: ${reasons.toString()}`);
  }
}
