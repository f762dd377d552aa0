// Where a re-signed signature goes and how "already signed by this key" is found: one publisher per
// signature kind (cosign-publisher.ts, notation-publisher.ts), both writing to the `--into` repository.
import type { DctProvenance } from './provenance.js';

/** The image manifest being signed: verified against the DCT target before a publisher sees it. */
export interface SignedSubject {
  /** The image's repository as a person names it (host/path): cosign's docker-reference. */
  name: string;
  mediaType: string;
  digest: string;
  size: number;
}

export interface Publisher {
  readonly kind: 'cosign' | 'notation';
  /** host/repository the signatures are written to. */
  readonly repository: string;
  /** The signature manifest that already carries a valid signature of `subject` by this key, if any. */
  findPresent(subject: SignedSubject): Promise<string | undefined>;
  /** Sign and push; returns the signature manifest's digest. */
  publish(subject: SignedSubject, provenance: DctProvenance): Promise<string>;
}
