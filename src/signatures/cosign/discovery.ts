// Find the cosign signatures of a manifest digest in the upstream registry (sigstore/cosign specs):
// - the classic tag form: the manifest tagged `sha256-<hex>.sig`, one simple-signing layer per
//   signature, the signature and certificate in the layer's annotations (SIGNATURE_SPEC.md "Storage");
// - Sigstore bundles as OCI referrers (artifactType application/vnd.dev.sigstore.bundle.v0.3+json),
//   through the referrers API or, without it, the referrers tag schema (BUNDLE_SPEC.md "Retrieval";
//   the listing itself is src/registry/referrers.ts, shared with Notation).
// Both tags are mutable and anyone who can push may rewrite them: they only name candidates. Every
// manifest and blob is fetched by digest and checked against it, with size caps, through the
// registry's signature pool. Listing and fetching are separate steps: the verifier filters candidates
// by media type before any limit, ranks them, and fetches them within a per-request budget
// (src/registry/signature-budget.ts, docs/signatures.md, "Discovery with a budget").
import { createHash } from 'node:crypto';
import { listReferrers, type Descriptor } from '../../registry/referrers.js';
import type { RegistryClient } from '../../registry/registry-client.js';
import type { SignatureBudget } from '../../registry/signature-budget.js';
import { fetchSignatureBlob, fetchSignatureManifest, type Fetched } from '../../registry/signature-fetch.js';
import { SIMPLE_SIGNING_MEDIA_TYPE } from './signed-subject.js';
import type { ClassicSignature } from './verify-signature.js';

export const BUNDLE_ARTIFACT_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const BUNDLE_MEDIA_TYPES = [BUNDLE_ARTIFACT_TYPE, 'application/vnd.dev.sigstore.bundle+json;version=0.3'];
const ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature';
const ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate';
const ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain';
const ANNOTATION_BUNDLE = 'dev.sigstore.cosign/bundle';
// cosign wrote Docker v2 manifests before it wrote OCI ones; both are still in registries.
const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];
/** Candidates `findCosignSignatures` (inspect, resign) fetches per form by default: a registry could list endless ones. */
export const MAX_COSIGN_SIGNATURES = 32;
const MAX_PAYLOAD_BYTES = 64 * 1024;
const MAX_REFERRER_MANIFEST_BYTES = 64 * 1024;
const MAX_BUNDLE_BYTES = 256 * 1024;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface FoundClassic extends ClassicSignature {
  /** Digest of the `.sig` manifest, and the layer's index in it. */
  manifestDigest: string;
  layer: number;
  /** dev.sigstore.cosign/chain, kept for inspect; the trusted root decides the chain. */
  chain?: string | undefined;
}

export interface FoundBundle {
  /** Digest of the referrer manifest. */
  manifestDigest: string;
  bundle: Buffer;
}

export interface FoundCosign {
  classic: FoundClassic[];
  bundles: FoundBundle[];
  /**
   * Candidates that are there but unusable (bytes that do not match their digest, a manifest that is
   * not JSON or points at another subject): the image is not unsigned, its signatures are invalid.
   */
  rejected: string[];
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function parse<T>(bytes: Buffer): T | undefined {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as T) : undefined;
  } catch {
    return undefined;
  }
}

/** A simple-signing layer of a `.sig` manifest, not fetched yet. */
export interface ClassicCandidate {
  manifestDigest: string;
  layer: number;
  descriptor: Descriptor & { digest: string };
  signature: string;
  /**
   * What decides this candidate's verdict: the payload's digest and every annotation the verifier
   * reads. The same layer in a rewritten `.sig` manifest keeps its key, so its cached verdict holds.
   */
  key: string;
}

/** The listed candidates of both forms: nothing but the `.sig` manifest and the referrers listing is fetched. */
export interface CosignCandidates {
  classic: ClassicCandidate[];
  bundles: Descriptor[];
  rejected: string[];
}

/**
 * The simple-signing layers of the `.sig` manifest, in order. The media type filter runs first: other
 * layers (attestations pushed to the same tag by older tools) are not signatures and take no place.
 */
export async function listClassic(registry: RegistryClient, repo: string, digest: string, rejected: string[]): Promise<ClassicCandidate[]> {
  const tag = `sha256-${digest.slice('sha256:'.length)}.sig`;
  const m = await registry.fetchManifest(repo, tag, MANIFEST_TYPES, undefined, { pool: 'signatures' });
  if (!m) return [];
  const manifestDigest = sha256(m.bytes);
  const doc = parse<{ layers?: unknown }>(m.bytes);
  if (!doc || !Array.isArray(doc.layers)) {
    rejected.push(`${tag} (${manifestDigest}) is not an image manifest with layers`);
    return [];
  }
  const out: ClassicCandidate[] = [];
  for (const [i, l] of (doc.layers as Array<Descriptor | null>).entries()) {
    if (l?.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) continue;
    const signature = l.annotations?.[ANNOTATION_SIGNATURE];
    if (typeof signature !== 'string' || typeof l.digest !== 'string' || !DIGEST.test(l.digest)) {
      rejected.push(`${manifestDigest} layer ${i}: no ${ANNOTATION_SIGNATURE} annotation or no sha256 digest`);
      continue;
    }
    const a = l.annotations ?? {};
    const key = sha256(Buffer.from(JSON.stringify([l.digest, signature, a[ANNOTATION_CERTIFICATE] ?? '', a[ANNOTATION_CHAIN] ?? '', a[ANNOTATION_BUNDLE] ?? ''])));
    out.push({ manifestDigest, layer: i, descriptor: l as Descriptor & { digest: string }, signature, key });
  }
  return out;
}

/** The Sigstore bundle referrers of `digest` (filtered by artifactType before any limit). */
export async function listBundles(registry: RegistryClient, repo: string, digest: string): Promise<Descriptor[]> {
  return listReferrers(registry, repo, digest, { artifactType: BUNDLE_ARTIFACT_TYPE });
}

/** Both forms' candidates of `digest`, listed (referrers filtered by artifactType before any limit). */
export async function listCosignCandidates(registry: RegistryClient, repo: string, digest: string): Promise<CosignCandidates> {
  const rejected: string[] = [];
  const [classic, bundles] = await Promise.all([listClassic(registry, repo, digest, rejected), listBundles(registry, repo, digest)]);
  return { classic, bundles, rejected };
}

/** A failure of one candidate, and whether it is a property of its content-addressed bytes. */
export interface Unusable {
  reason: string;
  permanent: boolean;
  /** The registry's answer about a digest (missing, other bytes): remembered for a while. */
  transient?: boolean | undefined;
}

const unusable = (f: Exclude<Fetched, { bytes: Buffer }>, prefix: string): Unusable => ({ reason: `${prefix}: ${f.reason}`, permanent: f.permanent, transient: f.transient });

/** Fetch one tag-form candidate's payload (within `budget`). */
export async function fetchClassic(registry: RegistryClient, repo: string, c: ClassicCandidate, budget?: SignatureBudget): Promise<FoundClassic | Unusable> {
  const prefix = `${c.manifestDigest} layer ${c.layer}`;
  if (typeof c.descriptor.size === 'number' && c.descriptor.size > MAX_PAYLOAD_BYTES) return { reason: `${prefix}: the payload is listed as ${c.descriptor.size} bytes, over ${MAX_PAYLOAD_BYTES}`, permanent: true };
  const payload = await fetchSignatureBlob(registry, repo, c.descriptor.digest, MAX_PAYLOAD_BYTES, `cosign payload ${c.descriptor.digest}`, budget);
  if (!('bytes' in payload)) return unusable(payload, prefix);
  const a = c.descriptor.annotations ?? {};
  return {
    manifestDigest: c.manifestDigest,
    layer: c.layer,
    payload: payload.bytes,
    signature: c.signature,
    certificate: a[ANNOTATION_CERTIFICATE] || undefined,
    chain: a[ANNOTATION_CHAIN] || undefined,
    rekorBundle: a[ANNOTATION_BUNDLE] || undefined,
  };
}

/** Fetch one bundle referrer (its manifest, then its bundle layer) of `subject` (within `budget`). */
export async function fetchBundle(registry: RegistryClient, repo: string, subject: string, d: Descriptor, budget?: SignatureBudget): Promise<FoundBundle | Unusable> {
  const prefix = `bundle manifest ${d.digest}`;
  if (typeof d.size === 'number' && d.size > MAX_REFERRER_MANIFEST_BYTES) return { reason: `${prefix}: listed as ${d.size} bytes, over ${MAX_REFERRER_MANIFEST_BYTES}`, permanent: false };
  const m = await fetchSignatureManifest(registry, repo, d.digest, MANIFEST_TYPES, MAX_REFERRER_MANIFEST_BYTES, prefix, budget);
  if (!('bytes' in m)) return unusable(m, prefix);
  const doc = parse<{ artifactType?: string; subject?: { digest?: string }; layers?: Descriptor[] }>(m.bytes);
  // A referrer must say it is a bundle and point back at exactly this manifest.
  if (doc?.artifactType !== BUNDLE_ARTIFACT_TYPE || doc.subject?.digest !== subject) return { reason: `${prefix}: not a Sigstore bundle manifest whose subject is ${subject}`, permanent: true };
  const layer = Array.isArray(doc.layers) ? doc.layers[0] : undefined;
  if (!layer || !BUNDLE_MEDIA_TYPES.includes(String(layer.mediaType)) || typeof layer.digest !== 'string' || !DIGEST.test(layer.digest)) {
    return { reason: `${prefix}: its first layer is not a Sigstore bundle`, permanent: true };
  }
  if (typeof layer.size === 'number' && layer.size > MAX_BUNDLE_BYTES) return { reason: `${prefix}: the bundle is larger than ${MAX_BUNDLE_BYTES} bytes`, permanent: true };
  const bundle = await fetchSignatureBlob(registry, repo, layer.digest, MAX_BUNDLE_BYTES, `sigstore bundle ${layer.digest}`, budget);
  if (!('bytes' in bundle)) return unusable(bundle, prefix);
  return { manifestDigest: d.digest, bundle: bundle.bytes };
}

export const isUnusable = (x: object): x is Unusable => 'reason' in x && 'permanent' in x;

/** Every cosign signature candidate of `digest` in `repo`, both forms, at most `max` of each, fetched (inspect, resign). */
export async function findCosignSignatures(registry: RegistryClient, repo: string, digest: string, max = MAX_COSIGN_SIGNATURES): Promise<FoundCosign> {
  const listed = await listCosignCandidates(registry, repo, digest);
  const rejected = [...listed.rejected];
  const classic: FoundClassic[] = [];
  for (const c of listed.classic.slice(0, max)) {
    const f = await fetchClassic(registry, repo, c);
    if (isUnusable(f)) rejected.push(f.reason);
    else classic.push(f);
  }
  const bundles: FoundBundle[] = [];
  for (const d of listed.bundles.slice(0, max)) {
    const f = await fetchBundle(registry, repo, digest, d);
    if (isUnusable(f)) rejected.push(f.reason);
    else bundles.push(f);
  }
  return { classic, bundles, rejected };
}
