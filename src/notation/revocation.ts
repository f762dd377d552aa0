// Certificate revocation for Notation chains (trust-store-trust-policy.md "Certificate Revocation
// Evaluation"). Placeholder until OCSP and CRL land: a certificate that names neither is not
// revocable and passes (as the specification says); one that names either cannot be checked yet,
// so its status is unknown, which the policy enforces or logs.
import type { X509Certificate } from 'node:crypto';
import { certInfo, subjectLine } from './x509.js';

export interface RevocationOptions {
  purpose: 'codeSigning' | 'timeStamping';
  /** Authentic signing time or trusted timestamp, compared with an invalidity date. */
  signingTime?: Date | undefined;
}

export interface RevocationChecker {
  /** undefined when no certificate of the chain is revoked or of unknown status; else why. */
  check(chain: readonly X509Certificate[], o: RevocationOptions): Promise<string | undefined>;
}

export class PointerOnlyRevocation implements RevocationChecker {
  async check(chain: readonly X509Certificate[]): Promise<string | undefined> {
    for (const c of chain.slice(0, -1)) {
      const i = certInfo(c);
      if (i.ocspUrls.length || i.crlUrls.length) return `the revocation status of certificate ${subjectLine(c)} is unknown (OCSP and CRL checking are not available)`;
    }
    return undefined;
  }
}
