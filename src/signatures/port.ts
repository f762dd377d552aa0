// The signature port (DESIGN.md "Architecture"): what policy/decide.ts asks of a signature kind.
// DCT (Notary v1) is a source of tag → (digest, length) mappings; Notation and cosign sign digests,
// so their adapters prove a descriptor. Each kind is an adapter behind one of these two interfaces;
// nothing here does I/O, and nothing here imports server/ (the adapters used to import it from there).
import type { RegistryClient } from '../registry/registry-client.js';
import type { DigestKind } from '../policy/vocabulary.js';

/** What a manifest is, as a signature names it: digest, size and media type (notation-go binds all three). */
export interface Descriptor {
  digest: string;
  size: number;
  mediaType: string;
}

/** What a signature check over a digest proves: which kind, and who or what satisfied the policy. */
export interface SignatureProof {
  kind: DigestKind;
  /** For the X-Trustgate-Verified-By header and the audit line's `satisfiedBy`. */
  by: string;
  /** Check failures the policy only logs (Notation permissive/audit levels): written to the audit record. */
  logged?: readonly string[] | undefined;
  /**
   * Until when this proof may be replayed without checking again (the signature's or its
   * certificate's end of validity, the next revocation check). Absent: the adapter sets no bound of
   * its own and the verdict cache's TTL applies.
   */
  validUntil?: Date | undefined;
}

/**
 * Notation and cosign sign digests, not tags: given the descriptor of a manifest, prove that a
 * signature of it satisfies the site's policy, or throw a TrustgateError with the refusal code.
 */
export interface DigestProver {
  verify(registry: RegistryClient, repositoryUri: string, repo: string, manifest: Descriptor): Promise<SignatureProof>;
}

/** The name the code had while it lived in server/deps.ts. */
export type DigestSignatureVerifier = DigestProver;

/** A tag DCT maps: the signed digest and length, and the role that signed it. */
export interface TagMapping {
  digest: string;
  length: number;
  role: string;
}

/**
 * DCT's side of the port: tag → signed (digest, length) now, and digest → a signed tag mapping to it.
 * Refusals are thrown TrustgateErrors (TAG_NOT_SIGNED, TRUST_DATA_MISSING, NOTARY_UNAVAILABLE, …).
 * trust/trust-service.ts (TrustService) is the implementation.
 */
export interface TagSource<T extends TagMapping = TagMapping> {
  resolve(gun: string, tag: string): Promise<T>;
  signedTagForDigest(gun: string, digest: string): Promise<{ tag: string; role: string } | undefined>;
}

/**
 * Where the signatures of an image are read: its own repository on its upstream's registry, or a
 * signature repository (cosign.repository, notation.repository) on the registry of the upstream whose
 * gun prefixes it — possibly another upstream, with its own URL, TLS and credentials.
 */
export interface SignatureSource {
  registry: RegistryClient;
  /** Repository name on that registry (without the gun). */
  repo: string;
  /** gun/repo, for messages. */
  name: string;
}

/** A configured signature repository (REGISTRY_HOST/REPOSITORY) → where to read it; built once at start. */
export type SignatureSources = (repository: string) => SignatureSource;
