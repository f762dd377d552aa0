// Combine a verified envelope with the trust policy: each check is enforced or logged as the policy's
// level (and overrides) say; one enforced failure refuses. Pure.
import { subjectOf, type EnvelopeVerification } from './envelope-checks.js';
import { isTrustedIdentity, type Check, type TrustPolicy } from './trust-policy.js';

export interface Verdict {
  allowed: boolean;
  /** Failures that refused (enforced) and those only logged, with their check. */
  enforced: Array<{ check: Check; reason: string }>;
  logged: Array<{ check: Check; reason: string }>;
}

export function judgeSignature(policy: TrustPolicy, v: EnvelopeVerification, manifest: { digest: string; size: number }): Verdict {
  const failures: Array<{ check: Check; reason: string }> = [];
  if (!v.integrity) failures.push({ check: 'integrity', reason: 'the signature does not verify' });
  // The signature must be for exactly these bytes: a valid signature of another manifest is worthless.
  if (v.target.digest !== manifest.digest || v.target.size !== manifest.size) {
    failures.push({ check: 'integrity', reason: `signed descriptor ${v.target.digest} (${v.target.size} bytes) is not the manifest ${manifest.digest} (${manifest.size} bytes)` });
  }
  if (!v.authenticity) failures.push({ check: 'authenticity', reason: v.problems.filter((p) => p.startsWith('authenticity')).join('; ') });
  else if (!isTrustedIdentity(policy, subjectOf(v.chain[0]!))) failures.push({ check: 'authenticity', reason: `signer ${v.chain[0]!.subject.replace(/\n/g, ', ')} is not a trusted identity of policy ${policy.name}` });
  if (!v.authenticTimestamp) failures.push({ check: 'authenticTimestamp', reason: 'a certificate of the chain is outside its validity' });
  if (!v.expiryOk) failures.push({ check: 'expiry', reason: `the signature expired at ${v.expiry?.toISOString()}` });
  const enforced = failures.filter((f) => policy.actions[f.check] === 'enforce');
  const logged = failures.filter((f) => policy.actions[f.check] === 'log');
  // A skip policy verifies nothing and lets the artifact through: that is what skip means in notation.
  if (policy.level === 'skip') return { allowed: true, enforced: [], logged: [] };
  return { allowed: enforced.length === 0, enforced, logged };
}
