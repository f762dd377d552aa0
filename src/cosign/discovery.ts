// Find the cosign signatures of a manifest digest in the upstream registry (sigstore/cosign specs):
// - the classic tag form: the manifest tagged `sha256-<hex>.sig`, one simple-signing layer per
//   signature, the signature and certificate in the layer's annotations (SIGNATURE_SPEC.md "Storage");
// - Sigstore bundles as OCI referrers (artifactType application/vnd.dev.sigstore.bundle.v0.3+json),
//   through the referrers API or, without it, the referrers tag schema (BUNDLE_SPEC.md "Retrieval";
//   the listing itself is src/registry/referrers.ts, shared with Notation).
// Both tags are mutable and anyone who can push may rewrite them: they only name candidates. Every
// manifest and blob is fetched by digest and checked against it, with size caps.
import { createHash } from 'node:crypto';
import { readBodyCapped } from '../http/read-capped.js';
import { listReferrers, type Descriptor } from '../registry/referrers.js';
import type { RegistryClient } from '../registry/registry-client.js';
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
/** Signatures considered per manifest and form by default (limits.maxSignatures): a registry could list endless ones. */
export const MAX_COSIGN_SIGNATURES = 32;
const MAX_PAYLOAD_BYTES = 64 * 1024;
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

/** A blob by digest, or why not: a blob the registry swapped is simply not the signed one. */
async function fetchBlob(registry: RegistryClient, repo: string, digest: string, max: number, what: string): Promise<Buffer | string> {
  const res = await registry.send(`/v2/${repo}/blobs/${digest}`, { method: 'GET', repo, signal: AbortSignal.timeout(30_000) });
  if (res.statusCode !== 200) {
    await res.body.dump();
    return `${what}: the registry answered ${res.statusCode}`;
  }
  let bytes: Buffer;
  try {
    bytes = Buffer.from(await readBodyCapped(res.body, max, what, res.headers['content-length']));
  } catch (err) {
    return `${what}: ${(err as Error).message}`;
  }
  return sha256(bytes) === digest ? bytes : `the registry served other bytes for ${what}`;
}

async function findClassic(registry: RegistryClient, repo: string, digest: string, max: number, rejected: string[]): Promise<FoundClassic[]> {
  const tag = `sha256-${digest.slice('sha256:'.length)}.sig`;
  const m = await registry.fetchManifest(repo, tag, MANIFEST_TYPES);
  if (!m) return [];
  const manifestDigest = sha256(m.bytes);
  const doc = parse<{ layers?: unknown }>(m.bytes);
  if (!doc || !Array.isArray(doc.layers)) {
    rejected.push(`${tag} (${manifestDigest}) is not an image manifest with layers`);
    return [];
  }
  const out: FoundClassic[] = [];
  for (const [i, l] of (doc.layers as Array<Descriptor | null>).slice(0, max).entries()) {
    const signature = l?.annotations?.[ANNOTATION_SIGNATURE];
    // Other layers (attestations pushed to the same tag by older tools) are not signatures.
    if (l?.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) continue;
    if (typeof signature !== 'string' || typeof l.digest !== 'string' || !DIGEST.test(l.digest)) {
      rejected.push(`${manifestDigest} layer ${i}: no ${ANNOTATION_SIGNATURE} annotation or no sha256 digest`);
      continue;
    }
    const payload = await fetchBlob(registry, repo, l.digest, MAX_PAYLOAD_BYTES, `cosign payload ${l.digest}`);
    if (typeof payload === 'string') {
      rejected.push(`${manifestDigest} layer ${i}: ${payload}`);
      continue;
    }
    out.push({
      manifestDigest,
      layer: i,
      payload,
      signature,
      certificate: l.annotations?.[ANNOTATION_CERTIFICATE] || undefined,
      chain: l.annotations?.[ANNOTATION_CHAIN] || undefined,
      rekorBundle: l.annotations?.[ANNOTATION_BUNDLE] || undefined,
    });
  }
  return out;
}

async function findBundles(registry: RegistryClient, repo: string, digest: string, max: number, rejected: string[]): Promise<FoundBundle[]> {
  const out: FoundBundle[] = [];
  for (const d of await listReferrers(registry, repo, digest, { artifactType: BUNDLE_ARTIFACT_TYPE, max })) {
    const m = await registry.fetchManifest(repo, d.digest, MANIFEST_TYPES);
    if (!m || sha256(m.bytes) !== d.digest) {
      rejected.push(`bundle manifest ${d.digest}: ${m ? 'the registry served other bytes' : 'not in the registry'}`);
      continue;
    }
    const doc = parse<{ artifactType?: string; subject?: { digest?: string }; layers?: Descriptor[] }>(m.bytes);
    // A referrer must say it is a bundle and point back at exactly this manifest.
    if (doc?.artifactType !== BUNDLE_ARTIFACT_TYPE || doc.subject?.digest !== digest) {
      rejected.push(`bundle manifest ${d.digest}: not a Sigstore bundle manifest whose subject is ${digest}`);
      continue;
    }
    const layer = Array.isArray(doc.layers) ? doc.layers[0] : undefined;
    if (!layer || !BUNDLE_MEDIA_TYPES.includes(String(layer.mediaType)) || typeof layer.digest !== 'string' || !DIGEST.test(layer.digest)) {
      rejected.push(`bundle manifest ${d.digest}: its first layer is not a Sigstore bundle`);
      continue;
    }
    const bundle = await fetchBlob(registry, repo, layer.digest, MAX_BUNDLE_BYTES, `sigstore bundle ${layer.digest}`);
    if (typeof bundle === 'string') rejected.push(`bundle manifest ${d.digest}: ${bundle}`);
    else out.push({ manifestDigest: d.digest, bundle });
  }
  return out;
}

/** Every cosign signature candidate of `digest` in `repo`, both forms, at most `max` of each. */
export async function findCosignSignatures(registry: RegistryClient, repo: string, digest: string, max = MAX_COSIGN_SIGNATURES): Promise<FoundCosign> {
  const rejected: string[] = [];
  const [classic, bundles] = await Promise.all([findClassic(registry, repo, digest, max, rejected), findBundles(registry, repo, digest, max, rejected)]);
  return { classic, bundles, rejected };
}
