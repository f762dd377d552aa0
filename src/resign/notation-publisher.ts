// Notary Project signatures as OCI referrers in the `--into` repository: the signature manifest is
// pushed by digest with its subject; a registry with the referrers API answers OCI-Subject and indexes
// it itself, otherwise the referrers tag schema index `sha256-<hex>` is updated (OCI distribution spec
// 1.1 "Pushing Manifests with Subject"; distribution 2.8 is such a registry). "Present" means an
// intact envelope for this digest whose leaf certificate holds the site's key.
import type { KeyObject, X509Certificate } from 'node:crypto';
import { inspectCoseEnvelope } from '../signatures/notation/cose-envelope.js';
import { inspectJwsEnvelope } from '../signatures/notation/jws-envelope.js';
import { fetchSignature, listSignatureCandidates, SIGNATURE_ARTIFACT_TYPE } from '../signatures/notation/referrers.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { RegistryWriter } from '../registry/registry-writer.js';
import { OCI_INDEX, OCI_MANIFEST, sha256Digest } from './oci.js';
import { spkiOf } from './keys.js';
import { COSE_MEDIA_TYPE, coseEnvelope, EMPTY_CONFIG, JWS_MEDIA_TYPE, jwsEnvelope, notationSignatureManifest, referrersIndexWith, type EnvelopeFormat } from './notation-signer.js';
import { provenanceAnnotations, type DctProvenance } from './provenance.js';
import type { Publisher, SignedSubject } from './publisher.js';

export class NotationPublisher implements Publisher {
  readonly kind = 'notation' as const;

  constructor(
    private readonly reader: RegistryClient,
    private readonly writer: RegistryWriter,
    private readonly repo: string,
    readonly repository: string,
    private readonly key: { privateKey: KeyObject; publicKey: KeyObject },
    private readonly chain: readonly X509Certificate[],
    private readonly format: EnvelopeFormat,
    private readonly now: () => Date,
  ) {}

  async findPresent(subject: SignedSubject): Promise<string | undefined> {
    const ours = spkiOf(this.key.publicKey);
    for (const d of await listSignatureCandidates(this.reader, this.repo, subject.digest)) {
      try {
        const sig = await fetchSignature(this.reader, this.repo, subject.digest, d);
        const env = sig.envelopeMediaType === COSE_MEDIA_TYPE ? inspectCoseEnvelope(sig.envelope) : inspectJwsEnvelope(sig.envelope);
        const leaf = env.chain[0];
        if (env.integrityProblems.length === 0 && env.target.digest === subject.digest && env.target.size === subject.size && leaf && spkiOf(leaf.publicKey).equals(ours)) return sig.manifestDigest;
      } catch {
        /* not a usable signature: not ours */
      }
    }
    return undefined;
  }

  async publish(subject: SignedSubject, provenance: DctProvenance): Promise<string> {
    const input = { key: this.key.privateKey, chain: this.chain, target: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size }, signingTime: this.now() };
    const envelope = this.format === 'cose' ? { bytes: coseEnvelope(input), mediaType: COSE_MEDIA_TYPE } : { bytes: jwsEnvelope(input), mediaType: JWS_MEDIA_TYPE };
    const annotations = provenanceAnnotations(provenance);
    const manifest = notationSignatureManifest(subject, envelope, this.chain, annotations);
    const digest = sha256Digest(manifest);
    await this.writer.putBlob(this.repo, sha256Digest(envelope.bytes), envelope.bytes);
    await this.writer.putBlob(this.repo, sha256Digest(EMPTY_CONFIG), EMPTY_CONFIG);
    const pushed = await this.writer.putManifest(this.repo, digest, manifest, OCI_MANIFEST);
    if (pushed.subject === undefined) {
      const tag = `sha256-${subject.digest.slice('sha256:'.length)}`;
      const existing = await this.reader.fetchManifest(this.repo, tag, [OCI_INDEX]);
      const index = referrersIndexWith(existing?.bytes, { mediaType: OCI_MANIFEST, artifactType: SIGNATURE_ARTIFACT_TYPE, digest, size: manifest.length, annotations });
      await this.writer.putManifest(this.repo, tag, index, OCI_INDEX);
    }
    return digest;
  }
}
