// cosign signatures in tag form (`sha256-<hex>.sig`) in the `--into` repository. "Present" is decided
// by trustgate's own cosign verifier (discovery.ts + verify-signature.ts) with the site's public key,
// so a signature counts as present only if `require: cosign` with that key would accept it.
import type { KeyObject } from 'node:crypto';
import { findCosignSignatures } from '../signatures/cosign/discovery.js';
import { verifyClassicSignature } from '../signatures/cosign/verify-signature.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { RegistryWriter } from '../registry/registry-writer.js';
import { sigManifestWith, signatureLayer, signatureTag, signPayload, simpleSigningPayload } from './cosign-signer.js';
import { OCI_MANIFEST, sha256Digest } from './oci.js';
import { provenanceAnnotations, type DctProvenance } from './provenance.js';
import type { Publisher, SignedSubject } from './publisher.js';

const SIG_MANIFEST_TYPES = [OCI_MANIFEST, 'application/vnd.docker.distribution.manifest.v2+json'];

export class CosignPublisher implements Publisher {
  readonly kind = 'cosign' as const;

  constructor(
    private readonly reader: RegistryClient,
    private readonly writer: RegistryWriter,
    /** Path of the repository under its registry. */
    private readonly repo: string,
    readonly repository: string,
    private readonly key: { privateKey: KeyObject; publicKey: KeyObject },
  ) {}

  async findPresent(subject: SignedSubject): Promise<string | undefined> {
    const found = await findCosignSignatures(this.reader, this.repo, subject.digest);
    const trust = { keys: [{ name: '--key', key: this.key.publicKey }], identities: [] };
    for (const sig of found.classic) {
      try {
        verifyClassicSignature(sig, subject.digest, trust);
        return sig.manifestDigest;
      } catch {
        /* another signer's, or not valid: not ours */
      }
    }
    return undefined;
  }

  async publish(subject: SignedSubject, provenance: DctProvenance): Promise<string> {
    const tag = signatureTag(subject.digest);
    const payload = simpleSigningPayload(subject.name, subject.digest);
    const annotations = provenanceAnnotations(provenance);
    const layer = signatureLayer(payload, signPayload(payload, this.key.privateKey), annotations);
    // Read-modify-write of the tag, as cosign does it (SIGNATURE_SPEC.md: "multiple signatures works
    // but is racy"): two signers at once may leave only one of their layers.
    const existing = await this.reader.fetchManifest(this.repo, tag, SIG_MANIFEST_TYPES);
    const { manifest, config } = sigManifestWith(existing?.bytes, layer, annotations);
    await this.writer.putBlob(this.repo, layer.digest, payload);
    await this.writer.putBlob(this.repo, sha256Digest(config), config);
    await this.writer.putManifest(this.repo, tag, manifest, OCI_MANIFEST);
    return sha256Digest(manifest);
  }
}
