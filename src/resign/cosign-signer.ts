// A keyed cosign signature of an image digest, as sigstore/cosign specs/SIGNATURE_SPEC.md lays it out:
// a simple-signing payload (containers-signature(5) JSON with critical.type "cosign container image
// signature"), signed with ECDSA P-256 over SHA-256 (ASN.1 DER, base64) — the one scheme every cosign
// implementation supports — stored as a layer of media type application/vnd.dev.cosign.simplesigning.v1+json
// in the manifest tagged `sha256-<hex>.sig`, the signature in the layer annotation
// dev.cosignproject.cosign/signature. Several signatures of one digest share that manifest: a new one is
// appended as a layer, as cosign does. Pure: bytes in, bytes out; pushing is registry-writer.ts.
import { sign, type KeyObject } from 'node:crypto';
import { fail } from '../errors.js';
import { COSIGN_SIGNATURE_TYPE, SIMPLE_SIGNING_MEDIA_TYPE } from '../signatures/cosign/signed-subject.js';
import { OCI_MANIFEST, sha256Digest, type OciDescriptor } from './oci.js';

export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';

/** The tag cosign stores signatures of `digest` under. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/**
 * The simple-signing payload cosign signs for `dockerReference` (the repository, without tag) at
 * `digest`. Field order is cosign's (payload.Cosign marshals critical then optional).
 */
export function simpleSigningPayload(dockerReference: string, digest: string): Buffer {
  return Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': digest }, type: COSIGN_SIGNATURE_TYPE }, optional: null }));
}

/** Only ECDSA P-256: the scheme the specification requires every verifier to support. */
export function checkCosignKey(k: KeyObject): void {
  if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw fail('USAGE', `--key: cosign re-signing uses ECDSA P-256 keys (the scheme every cosign verifier supports); this key is ${k.asymmetricKeyType} ${k.asymmetricKeyDetails?.namedCurve ?? ''}`.trim());
  }
}

/** base64 of the ASN.1 DER ECDSA signature over SHA-256 of the payload. */
export function signPayload(payload: Buffer, key: KeyObject): string {
  checkCosignKey(key);
  return sign('sha256', payload, { key, dsaEncoding: 'der' }).toString('base64');
}

export interface SigManifest {
  manifest: Buffer;
  config: Buffer;
}

/**
 * The `.sig` manifest with `layer` added after the layers of `existing` (its bytes, or undefined when
 * the tag does not exist yet). The config is the one cosign writes for a signature image: an empty
 * image whose rootfs lists each layer's digest (payloads are not compressed, so diff ID = digest).
 * A manifest-level annotation set is merged over the existing one.
 */
export function sigManifestWith(existing: Buffer | undefined, layer: OciDescriptor, annotations: Record<string, string>): SigManifest {
  let layers: OciDescriptor[] = [];
  let previous: Record<string, string> = {};
  if (existing) {
    let doc: { layers?: unknown; annotations?: unknown };
    try {
      doc = JSON.parse(existing.toString('utf8'));
    } catch {
      throw fail('UPSTREAM_INVALID', 'the existing .sig manifest is not JSON');
    }
    if (!Array.isArray(doc.layers)) throw fail('UPSTREAM_INVALID', 'the existing .sig manifest has no layers');
    // Kept as they are: other signers' signatures (and whatever else older tools put there).
    layers = doc.layers as OciDescriptor[];
    if (doc.annotations && typeof doc.annotations === 'object') previous = doc.annotations as Record<string, string>;
  }
  layers = [...layers, layer];
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: config.length, digest: sha256Digest(config) },
      layers,
      annotations: { ...previous, ...annotations },
    }),
  );
  return { manifest, config };
}

/** The layer descriptor of one signature: the payload blob, the signature and provenance annotations. */
export function signatureLayer(payload: Buffer, signature: string, annotations: Record<string, string>): OciDescriptor {
  return { mediaType: SIMPLE_SIGNING_MEDIA_TYPE, size: payload.length, digest: sha256Digest(payload), annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signature, ...annotations } };
}
