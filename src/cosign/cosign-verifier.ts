// Does a manifest carry a cosign signature that satisfies the upstream's cosign keys or keyless
// identities? The I/O side of cosign: find the candidates (discovery.ts), verify each
// (verify-signature.ts); the first one that verifies wins.
import { fail } from '../errors.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { DigestSignatureVerifier, SignatureProof } from '../server/deps.js';
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
  ) {
    this.trustFor = typeof trust === 'function' ? trust : () => trust;
  }

  async verify(registry: RegistryClient, repositoryUri: string, repo: string, manifest: { digest: string }): Promise<SignatureProof> {
    const trust = this.trustFor(repo);
    const found = await findCosignSignatures(registry, repo, manifest.digest, this.maxSignatures);
    if (found.classic.length === 0 && found.bundles.length === 0 && found.rejected.length === 0) {
      throw fail('COSIGN_UNSIGNED', `${repositoryUri}@${manifest.digest} has no cosign signature (no ${manifest.digest.replace(':', '-')}.sig tag, no Sigstore bundle referrer)`);
    }
    const reasons: string[] = [...found.rejected];
    for (const sig of found.classic) {
      try {
        const signer = verifyClassicSignature(sig, manifest.digest, trust);
        return { kind: 'cosign', by: `cosign ${signer.by} ${sig.manifestDigest}` };
      } catch (err) {
        reasons.push(`${sig.manifestDigest} layer ${sig.layer}: ${(err as Error).message}`);
      }
    }
    for (const b of found.bundles) {
      try {
        const signer = verifyBundleSignature(b.bundle, manifest.digest, trust);
        return { kind: 'cosign', by: `cosign ${signer.by} ${b.manifestDigest}` };
      } catch (err) {
        reasons.push(`bundle ${b.manifestDigest}: ${(err as Error).message}`);
      }
    }
    throw fail('COSIGN_INVALID', `no cosign signature of ${repositoryUri}@${manifest.digest} satisfies cosign ${describeTrust(trust)}: ${reasons.join(' | ')}`);
  }
}
