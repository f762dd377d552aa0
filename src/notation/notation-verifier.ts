// Does a manifest carry a Notary Project signature that satisfies the site's trust policy? The I/O
// side of Notation: find the signatures (referrers.ts), verify each (jws-envelope.ts), judge it
// (verdict.ts); the first signature the policy allows wins. Both envelope formats notation writes:
// JWS (application/jose+json) and COSE_Sign1 (application/cose).
import type { X509Certificate } from 'node:crypto';
import { fail } from '../errors.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { verifyCoseEnvelope } from './cose-envelope.js';
import { verifyJwsEnvelope } from './jws-envelope.js';
import { findNotationSignatures } from './referrers.js';
import { selectPolicy, type TrustPolicyDocument } from './trust-policy.js';
import { judgeSignature } from './verdict.js';

export interface NotationResult {
  /** The signature manifest that satisfied the policy (absent under a skip policy). */
  signature?: string | undefined;
  policy: string;
  /** Check failures the policy only logs. */
  logged: string[];
}

export interface NotationVerifierOptions {
  trustPolicy: TrustPolicyDocument;
  /** "type:name" → certificates of that trust store. */
  trustStores: ReadonlyMap<string, X509Certificate[]>;
  now?: () => Date;
}

export class NotationVerifier {
  constructor(private readonly opts: NotationVerifierOptions) {}

  async verify(registry: RegistryClient, repositoryUri: string, repo: string, manifest: { digest: string; size: number }): Promise<NotationResult> {
    const policy = selectPolicy(this.opts.trustPolicy, repositoryUri);
    if (!policy) throw fail('NOTATION_NO_POLICY', `no Notation trust policy applies to ${repositoryUri}`);
    if (policy.level === 'skip') return { policy: policy.name, logged: [] };
    const anchors = policy.trustStores.filter((s) => s.type === 'ca').flatMap((s) => this.opts.trustStores.get(`${s.type}:${s.name}`) ?? []);
    const found = await findNotationSignatures(registry, repo, manifest.digest);
    if (found.length === 0) throw fail('NOTATION_UNSIGNED', `${repositoryUri}@${manifest.digest} has no Notary Project signature`);
    const reasons: string[] = [];
    const now = this.opts.now?.() ?? new Date();
    for (const sig of found) {
      try {
        const verified = sig.envelopeMediaType === 'application/cose' ? verifyCoseEnvelope(sig.envelope, anchors, now) : verifyJwsEnvelope(sig.envelope, anchors, now);
        const verdict = judgeSignature(policy, verified, manifest);
        if (verdict.allowed) return { signature: sig.manifestDigest, policy: policy.name, logged: verdict.logged.map((l) => `${l.check}: ${l.reason}`) };
        reasons.push(`${sig.manifestDigest}: ${verdict.enforced.map((e) => `${e.check}: ${e.reason}`).join('; ')}`);
      } catch (err) {
        reasons.push(`${sig.manifestDigest}: ${(err as Error).message}`);
      }
    }
    throw fail('NOTATION_INVALID', `no Notary Project signature of ${repositoryUri}@${manifest.digest} satisfies trust policy ${policy.name}: ${reasons.join(' | ')}`);
  }
}
