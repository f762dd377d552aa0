// Combine a verified envelope with the trust policy: each check is enforced or logged as the policy's
// level (and overrides) say; one enforced failure refuses. Pure.
import { subjectOf, type EnvelopeVerification, type Problem } from './envelope-checks.js';
import { isTrustedIdentity, type TrustPolicy } from './trust-policy.js';
import { subjectLine } from './x509.js';

export interface Verdict {
  allowed: boolean;
  /** Failures that refused (enforced) and those only logged, with their check. */
  enforced: Problem[];
  logged: Problem[];
}

/** The manifest served, as the signed descriptor must describe it. */
export interface ManifestDescriptor {
  digest: string;
  size: number;
  mediaType: string;
}

/** The policy-independent failures of a signature for this manifest (the verdict applies the policy). */
export function signatureFailures(policy: TrustPolicy, v: EnvelopeVerification, manifest: ManifestDescriptor): Problem[] {
  const failures: Problem[] = [];
  // "Validate Integrity": the artifact's digest, media type and size must match the signed
  // descriptor — a valid signature of other bytes, or of the same bytes under another type, is worthless.
  const t = v.target;
  const diff = [
    t.digest !== manifest.digest ? `digest ${t.digest}, not ${manifest.digest}` : undefined,
    t.size !== manifest.size ? `size ${t.size}, not ${manifest.size}` : undefined,
    t.mediaType !== manifest.mediaType ? `media type ${t.mediaType}, not ${manifest.mediaType}` : undefined,
  ].filter(Boolean);
  if (diff.length) failures.push({ check: 'integrity', reason: `the signed descriptor is not the manifest served: ${diff.join('; ')}` });
  for (const p of v.problems) if (p.check !== 'authenticity') failures.push(p);
  const authenticity = v.problems.filter((p) => p.check === 'authenticity');
  failures.push(...authenticity);
  if (authenticity.length === 0 && !isTrustedIdentity(policy, subjectOf(v.chain[0]!))) {
    failures.push({ check: 'authenticity', reason: `signer ${subjectLine(v.chain[0]!)} is not a trusted identity of policy ${policy.name}` });
  }
  return failures.sort((a, b) => ORDER.indexOf(a.check) - ORDER.indexOf(b.check));
}

// The order notation-go validates in (and so reports).
const ORDER = ['integrity', 'authenticity', 'expiry', 'authenticTimestamp', 'revocation'];

/** Apply the policy's actions to a list of failures. */
export function applyPolicy(policy: TrustPolicy, failures: readonly Problem[]): Verdict {
  // A skip policy verifies nothing and lets the artifact through: that is what skip means in notation.
  if (policy.level === 'skip') return { allowed: true, enforced: [], logged: [] };
  const enforced = failures.filter((f) => policy.actions[f.check] === 'enforce');
  const logged = failures.filter((f) => policy.actions[f.check] === 'log');
  return { allowed: enforced.length === 0, enforced, logged };
}

export function judgeSignature(policy: TrustPolicy, v: EnvelopeVerification, manifest: ManifestDescriptor): Verdict {
  return applyPolicy(policy, signatureFailures(policy, v, manifest));
}

/** "check: reason" for messages and audit records. */
export const describe = (p: Problem): string => `${p.check}: ${p.reason}`;
