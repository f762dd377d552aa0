// RFC 3161 timestamp countersignatures (placeholder until the CMS reader lands).
import type { X509Certificate } from 'node:crypto';

export interface VerifiedTimestamp {
  genTime: Date;
  accuracyMs: number;
  lower: Date;
  upper: Date;
  /** The TSA's chain, leaf first, ending at its trust anchor. */
  tsaChain: X509Certificate[];
}

export function verifyTimestampToken(_token: Buffer, _signature: Buffer, _anchors: readonly X509Certificate[]): VerifiedTimestamp | { problem: string } {
  return { problem: 'timestamp countersignatures are not verified yet' };
}
