// Discover the Notation signatures of a manifest through the OCI referrers listing (the referrers API
// with its Link pages, or the referrers tag schema: src/registry/referrers.ts). Both forms of signature
// manifest are recognised (signature-specification.md "OCI Signatures"): the current one
// (artifactType application/vnd.cncf.notary.signature, empty config) and notation 1.0's
// (no artifactType, config.mediaType application/vnd.cncf.notary.signature); in a referrers index
// both appear with that artifactType, since the index carries config.mediaType when a manifest has no
// artifactType. Candidates are filtered by artifactType before anything is fetched, and every
// manifest and envelope is fetched by digest and checked against it: nothing the registry says is
// taken on trust.
import { createHash } from 'node:crypto';
import { readBodyCapped } from '../http/read-capped.js';
import { listReferrers, type Descriptor } from '../registry/referrers.js';
import type { RegistryClient } from '../registry/registry-client.js';

export type { Descriptor } from '../registry/referrers.js';

export const SIGNATURE_ARTIFACT_TYPE = 'application/vnd.cncf.notary.signature';
export const ENVELOPE_MEDIA_TYPES = ['application/jose+json', 'application/cose'];
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
/** Signatures considered per manifest by default (limits.maxSignatures). */
export const MAX_SIGNATURES = 32;
const MAX_ENVELOPE_BYTES = 256 * 1024;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface FoundSignature {
  /** Digest of the signature manifest. */
  manifestDigest: string;
  /** application/jose+json or application/cose */
  envelopeMediaType: string;
  envelope: Buffer;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * The descriptors listed as Notation signatures of `digest`, at most `max`, in listing order. Only
 * the listing decides here (artifactType, and the OCI manifest media type where one is named); the
 * manifests themselves are checked when fetched.
 */
export async function listSignatureCandidates(registry: RegistryClient, repo: string, digest: string, max = MAX_SIGNATURES): Promise<Descriptor[]> {
  return listReferrers(registry, repo, digest, { artifactType: SIGNATURE_ARTIFACT_TYPE, max, mediaType: MANIFEST_TYPE });
}

/** Why a candidate is not a usable signature, and whether that is a property of its (immutable) bytes. */
export class NotASignature extends Error {
  constructor(
    message: string,
    /** True when it depends only on the content-addressed bytes (so it may be cached by digest). */
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/**
 * Fetch one candidate: its manifest (either signature manifest form, pointing back at `subject`, one
 * envelope layer) and its envelope, both checked against their digests.
 */
export async function fetchSignature(registry: RegistryClient, repo: string, subject: string, d: Descriptor): Promise<FoundSignature> {
  const m = await registry.fetchManifest(repo, d.digest, [MANIFEST_TYPE]);
  if (!m) throw new NotASignature(`signature manifest ${d.digest} is not in the registry`, false);
  if (sha256(m.bytes) !== d.digest) throw new NotASignature(`the registry served other bytes for signature manifest ${d.digest}`, false);
  let doc: { mediaType?: unknown; artifactType?: unknown; config?: { mediaType?: unknown }; subject?: { digest?: unknown }; layers?: Descriptor[] };
  try {
    doc = JSON.parse(m.bytes.toString('utf8'));
  } catch {
    throw new NotASignature(`signature manifest ${d.digest} is not JSON`, true);
  }
  // A signature manifest must say it is one (either form), and point back at exactly this manifest.
  const current = doc.artifactType === SIGNATURE_ARTIFACT_TYPE;
  const legacy = doc.artifactType === undefined && doc.config?.mediaType === SIGNATURE_ARTIFACT_TYPE;
  if (!current && !legacy) throw new NotASignature(`${d.digest} is not a Notary Project signature manifest (neither artifactType nor config.mediaType says so)`, true);
  if (doc.subject?.digest !== subject) throw new NotASignature(`signature manifest ${d.digest} is for ${String(doc.subject?.digest)}, not ${subject}`, true);
  const layers = Array.isArray(doc.layers) ? doc.layers : [];
  const layer = layers[0];
  if (layers.length !== 1 || !layer || !ENVELOPE_MEDIA_TYPES.includes(String(layer.mediaType)) || typeof layer.digest !== 'string' || !DIGEST.test(layer.digest)) {
    throw new NotASignature(`signature manifest ${d.digest} must have exactly one layer, a JWS or COSE envelope`, true);
  }
  if (typeof layer.size === 'number' && layer.size > MAX_ENVELOPE_BYTES) throw new NotASignature(`signature envelope ${layer.digest} is larger than ${MAX_ENVELOPE_BYTES} bytes`, true);
  const res = await registry.send(`/v2/${repo}/blobs/${layer.digest}`, { method: 'GET', repo, signal: AbortSignal.timeout(30_000) });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new NotASignature(`signature envelope ${layer.digest}: the registry answered ${res.statusCode}`, false);
  }
  let envelope: Buffer;
  try {
    envelope = Buffer.from(await readBodyCapped(res.body, MAX_ENVELOPE_BYTES, `signature envelope ${layer.digest}`, res.headers['content-length']));
  } catch (err) {
    throw new NotASignature(`signature envelope ${layer.digest}: ${(err as Error).message}`, false);
  }
  if (sha256(envelope) !== layer.digest) throw new NotASignature(`the registry served other bytes for signature envelope ${layer.digest}`, false);
  return { manifestDigest: d.digest, envelopeMediaType: String(layer.mediaType), envelope };
}

/** Every usable signature of `digest` (both manifest forms), for callers that want them all. */
export async function findNotationSignatures(registry: RegistryClient, repo: string, digest: string, max = MAX_SIGNATURES): Promise<FoundSignature[]> {
  const out: FoundSignature[] = [];
  for (const d of await listSignatureCandidates(registry, repo, digest, max)) {
    try {
      out.push(await fetchSignature(registry, repo, digest, d));
    } catch (err) {
      if (!(err instanceof NotASignature)) throw err;
    }
  }
  return out;
}
