// Discover the Notation signatures of a manifest through the OCI referrers listing (the referrers API
// with its Link pages, or the referrers tag schema: src/registry/referrers.ts). Both forms of signature
// manifest are recognised (signature-specification.md "OCI Signatures"): the current one
// (artifactType application/vnd.cncf.notary.signature, empty config) and notation 1.0's
// (no artifactType, config.mediaType application/vnd.cncf.notary.signature); in a referrers index
// both appear with that artifactType, since the index carries config.mediaType when a manifest has no
// artifactType. Candidates are filtered by artifactType before anything is fetched, and every
// manifest and envelope is fetched by digest and checked against it: nothing the registry says is
// taken on trust.
import { listReferrers, type Descriptor } from '../../registry/referrers.js';
import type { RegistryClient } from '../../registry/registry-client.js';
import type { SignatureBudget } from '../../registry/signature-budget.js';
import { fetchSignatureBlob, fetchSignatureManifest } from '../../registry/signature-fetch.js';

export type { Descriptor } from '../../registry/referrers.js';

export const SIGNATURE_ARTIFACT_TYPE = 'application/vnd.cncf.notary.signature';
export const ENVELOPE_MEDIA_TYPES = ['application/jose+json', 'application/cose'];
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
/** Listed candidates `findNotationSignatures` (inspect, resign) fetches by default. */
export const MAX_SIGNATURES = 32;
const MAX_ENVELOPE_BYTES = 256 * 1024;
/** A signature manifest is a few hundred bytes: one layer, a subject, a few annotations. */
const MAX_SIGNATURE_MANIFEST_BYTES = 64 * 1024;
/** notation writes the SHA-256 thumbprints of the signing chain here (hex, leaf first), unsigned. */
export const THUMBPRINT_ANNOTATION = 'io.cncf.notary.x509chain.thumbprint#S256';
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface FoundSignature {
  /** Digest of the signature manifest. */
  manifestDigest: string;
  /** application/jose+json or application/cose */
  envelopeMediaType: string;
  envelope: Buffer;
}

/**
 * The descriptors listed as Notation signatures of `digest`, in listing order, at most `max` (the
 * verifier passes Infinity: it ranks them all and spends a budget instead). Only the listing decides
 * here (artifactType, and the OCI manifest media type where one is named), before any limit; the
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
    /** The registry's answer about the digest (missing, other bytes): cached for a while (signature-budget.ts). */
    readonly transient = false,
  ) {
    super(message);
  }
}

/**
 * Fetch one candidate: its manifest (either signature manifest form, pointing back at `subject`, one
 * envelope layer) and its envelope, both checked against their digests, through the signature pool and
 * within `budget` when given (each item also has its own cap).
 */
export async function fetchSignature(registry: RegistryClient, repo: string, subject: string, d: Descriptor, budget?: SignatureBudget): Promise<FoundSignature> {
  if (typeof d.size === 'number' && d.size > MAX_SIGNATURE_MANIFEST_BYTES) throw new NotASignature(`signature manifest ${d.digest} is listed as ${d.size} bytes, over ${MAX_SIGNATURE_MANIFEST_BYTES}`, false);
  const m = await fetchSignatureManifest(registry, repo, d.digest, [MANIFEST_TYPE], MAX_SIGNATURE_MANIFEST_BYTES, `signature manifest ${d.digest}`, budget);
  if (!('bytes' in m)) throw new NotASignature(m.reason, m.permanent, m.transient);
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
  const env = await fetchSignatureBlob(registry, repo, layer.digest, MAX_ENVELOPE_BYTES, `signature envelope ${layer.digest}`, budget);
  if (!('bytes' in env)) throw new NotASignature(env.reason, env.permanent, env.transient);
  return { manifestDigest: d.digest, envelopeMediaType: String(layer.mediaType), envelope: env.bytes };
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

/**
 * What the unsigned thumbprint annotation says about a candidate, against the thumbprints of the
 * trust store: `trusted` (it names a certificate of the store: worth fetching first), `unknown` (no
 * readable annotation: other tools may not write it), `untrusted` (it names only other certificates:
 * a signature made as notation makes it cannot chain to the store). An empty list is `unknown`. Only a ranking: the annotation is
 * the pusher's word, and every candidate fetched is verified in full.
 */
export function thumbprintRank(d: Descriptor, trusted: ReadonlySet<string>): 'trusted' | 'unknown' | 'untrusted' {
  const raw = d.annotations?.[THUMBPRINT_ANNOTATION];
  if (typeof raw !== 'string' || raw.length > 64 * 1024) return 'unknown';
  let list: unknown;
  try {
    list = JSON.parse(raw);
  } catch {
    return 'unknown';
  }
  // An empty list names no chain at all: no evidence either way.
  if (!Array.isArray(list) || list.length === 0 || !list.every((t): t is string => typeof t === 'string')) return 'unknown';
  return list.some((t) => trusted.has(t.toLowerCase())) ? 'trusted' : 'untrusted';
}
