// Does a manifest carry a cosign signature that satisfies the upstream's cosign keys or keyless
// identities? The I/O side of cosign: find the candidates (discovery.ts), verify each
// (verify-signature.ts); the first one that verifies wins.
import { fail } from '../errors.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { DigestSignatureVerifier, SignatureProof, SignatureSources } from '../signatures/port.js';
import { findCosignSignatures, MAX_COSIGN_SIGNATURES } from './discovery.js';
import type { CosignTrustSelector } from './select-trust.js';
import { verifyBundleSignature, verifyClassicSignature, type CosignTrust } from './verify-signature.js';

/** The rule a refusal names: which keys and identities were asked for. */
export function describeTrust(trust: CosignTrust): string {
  const parts: string[] = [];
  if (trust.keys.length) parts.push(`keys ${trust.keys.map((k) => k.name).join(', ')}`);
  if (trust.root) parts.push(`identities ${trust.identities.map((i) => `${i.subject ?? `/${i.subjectRegExp}/`} from ${i.issuer}`).join(', ')}`);
  return parts.join('; ');
}

export class CosignVerifier implements DigestSignatureVerifier {
  /** A fixed trust, or one chosen per repository (repository entries with their own `cosign:`). */
  private readonly trustFor: CosignTrustSelector;
  constructor(
    trust: CosignTrust | CosignTrustSelector,
    /** Candidates tried per form (limits.maxSignatures). */
    private readonly maxSignatures = MAX_COSIGN_SIGNATURES,
    /** Where a trust's `repository` is read (src/app/runtime.ts: the client of the upstream serving it). */
    private readonly sources?: SignatureSources,
  ) {
    this.trustFor = typeof trust === 'function' ? trust : () => trust;
  }

  async verify(registry: RegistryClient, repositoryUri: string, repo: string, manifest: { digest: string }): Promise<SignatureProof> {
    const trust = this.trustFor(repo);
    // COSIGN_REPOSITORY semantics: the signature repository holds every image's signatures by digest
    // (sha256-<hex>.sig and bundle referrers of the digest), so only where we look changes. What a
    // signature must sign does not: the digest served (signed-subject.ts), whatever repository it is in.
    if (trust.repository !== undefined && !this.sources) throw fail('INTERNAL', `cosign repository ${trust.repository} is configured but no registry client was wired for it`);
    const at = trust.repository !== undefined ? this.sources!(trust.repository) : { registry, repo };
    const found = await findCosignSignatures(at.registry, at.repo, manifest.digest, this.maxSignatures);
    const where = trust.repository !== undefined ? ` in signature repository ${trust.repository}` : '';
    // The proof says where the signature was found, so an audit line can be checked against that repository.
    const from = trust.repository !== undefined ? ` from ${trust.repository}` : '';
    if (found.classic.length === 0 && found.bundles.length === 0 && found.rejected.length === 0) {
      throw fail('COSIGN_UNSIGNED', `${repositoryUri}@${manifest.digest} has no cosign signature${where} (no ${manifest.digest.replace(':', '-')}.sig tag, no Sigstore bundle referrer)`);
    }
    const reasons: string[] = [...found.rejected];
    for (const sig of found.classic) {
      try {
        const signer = verifyClassicSignature(sig, manifest.digest, trust);
        return { kind: 'cosign', by: `cosign ${signer.by} ${sig.manifestDigest}${from}` };
      } catch (err) {
        reasons.push(`${sig.manifestDigest} layer ${sig.layer}: ${(err as Error).message}`);
      }
    }
    for (const b of found.bundles) {
      try {
        const signer = verifyBundleSignature(b.bundle, manifest.digest, trust);
        return { kind: 'cosign', by: `cosign ${signer.by} ${b.manifestDigest}${from}` };
      } catch (err) {
        reasons.push(`bundle ${b.manifestDigest}: ${(err as Error).message}`);
      }
    }
    throw fail('COSIGN_INVALID', `no cosign signature of ${repositoryUri}@${manifest.digest}${where} satisfies cosign ${describeTrust(trust)}: ${reasons.join(' | ')}`);
  }
}
