// Find the cosign signatures of a manifest digest in the upstream registry (sigstore/cosign specs):
// - the classic tag form: the manifest tagged `sha256-<hex>.sig`, one simple-signing layer per
//   signature, the signature and certificate in the layer's annotations (SIGNATURE_SPEC.md "Storage");
// - Sigstore bundles as OCI referrers (artifactType application/vnd.dev.sigstore.bundle.v0.3+json),
//   through the referrers API or, without it, the referrers tag schema (BUNDLE_SPEC.md "Retrieval").
// Both tags are mutable and anyone who can push may rewrite them: they only name candidates. Every
// manifest and blob is fetched by digest and checked against it, with size caps.
import { createHash } from 'node:crypto';
import { fail } from '../errors.js';
import { readBodyCapped } from '../http/read-capped.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { SIMPLE_SIGNING_MEDIA_TYPE } from './signed-subject.js';
import type { ClassicSignature } from './verify-signature.js';

export const BUNDLE_ARTIFACT_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const BUNDLE_MEDIA_TYPES = [BUNDLE_ARTIFACT_TYPE, 'application/vnd.dev.sigstore.bundle+json;version=0.3'];
const ANNOTATION_SIGNATURE = 'dev.cosignproject.cosign/signature';
const ANNOTATION_CERTIFICATE = 'dev.sigstore.cosign/certificate';
const ANNOTATION_CHAIN = 'dev.sigstore.cosign/chain';
const ANNOTATION_BUNDLE = 'dev.sigstore.cosign/bundle';
const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json'];
// cosign wrote Docker v2 manifests before it wrote OCI ones; both are still in registries.
const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];
/** Signatures considered per manifest and form: a registry could list endless ones. */
export const MAX_COSIGN_SIGNATURES = 16;
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
}

interface Descriptor {
  mediaType?: string;
  artifactType?: string;
  digest: string;
  size?: number;
  annotations?: Record<string, string>;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function parse<T>(bytes: Buffer): T | undefined {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

async function fetchBlob(registry: RegistryClient, repo: string, digest: string, max: number, what: string): Promise<Buffer | undefined> {
  const res = await registry.send(`/v2/${repo}/blobs/${digest}`, { method: 'GET', repo, signal: AbortSignal.timeout(30_000) });
  if (res.statusCode !== 200) {
    await res.body.dump();
    return undefined;
  }
  const bytes = Buffer.from(await readBodyCapped(res.body, max, what, res.headers['content-length']));
  // A blob the registry swapped is simply not the signed one.
  return sha256(bytes) === digest ? bytes : undefined;
}

async function findClassic(registry: RegistryClient, repo: string, digest: string): Promise<FoundClassic[]> {
  const m = await registry.fetchManifest(repo, `sha256-${digest.slice('sha256:'.length)}.sig`, MANIFEST_TYPES);
  if (!m) return [];
  const doc = parse<{ layers?: Array<Descriptor> }>(m.bytes);
  const manifestDigest = sha256(m.bytes);
  const out: FoundClassic[] = [];
  for (const [i, l] of (doc?.layers ?? []).slice(0, MAX_COSIGN_SIGNATURES).entries()) {
    const signature = l?.annotations?.[ANNOTATION_SIGNATURE];
    if (l?.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE || typeof signature !== 'string' || typeof l.digest !== 'string' || !DIGEST.test(l.digest)) continue;
    const payload = await fetchBlob(registry, repo, l.digest, MAX_PAYLOAD_BYTES, `cosign payload ${l.digest}`);
    if (!payload) continue;
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

async function referrerDescriptors(registry: RegistryClient, repo: string, digest: string): Promise<Descriptor[]> {
  const res = await registry.send(`/v2/${repo}/referrers/${digest}?artifactType=${encodeURIComponent(BUNDLE_ARTIFACT_TYPE)}`, {
    method: 'GET',
    repo,
    headers: { accept: INDEX_TYPES.join(', ') },
    signal: AbortSignal.timeout(30_000),
  });
  let index: { manifests?: Descriptor[] } | undefined;
  if (res.statusCode === 200) {
    index = parse(Buffer.from(await readBodyCapped(res.body, 4 * 1024 * 1024, 'referrers index', res.headers['content-length'])));
  } else {
    await res.body.dump();
    if (res.statusCode !== 404) throw fail('UPSTREAM_UNAVAILABLE', `referrers of ${repo}@${digest}: upstream answered ${res.statusCode}`);
    const fallback = await registry.fetchManifest(repo, `sha256-${digest.slice('sha256:'.length)}`, INDEX_TYPES);
    index = fallback ? parse(fallback.bytes) : undefined;
  }
  const manifests = Array.isArray(index?.manifests) ? index.manifests : [];
  return manifests.filter((d) => d?.artifactType === BUNDLE_ARTIFACT_TYPE && typeof d.digest === 'string' && DIGEST.test(d.digest)).slice(0, MAX_COSIGN_SIGNATURES);
}

async function findBundles(registry: RegistryClient, repo: string, digest: string): Promise<FoundBundle[]> {
  const out: FoundBundle[] = [];
  for (const d of await referrerDescriptors(registry, repo, digest)) {
    const m = await registry.fetchManifest(repo, d.digest, MANIFEST_TYPES);
    if (!m || sha256(m.bytes) !== d.digest) continue;
    const doc = parse<{ artifactType?: string; subject?: { digest?: string }; layers?: Descriptor[] }>(m.bytes);
    // A referrer must say it is a bundle and point back at exactly this manifest.
    if (doc?.artifactType !== BUNDLE_ARTIFACT_TYPE || doc.subject?.digest !== digest) continue;
    const layer = doc.layers?.[0];
    if (!layer || !BUNDLE_MEDIA_TYPES.includes(String(layer.mediaType)) || typeof layer.digest !== 'string' || !DIGEST.test(layer.digest)) continue;
    const bundle = await fetchBlob(registry, repo, layer.digest, MAX_BUNDLE_BYTES, `sigstore bundle ${layer.digest}`);
    if (bundle) out.push({ manifestDigest: d.digest, bundle });
  }
  return out;
}

/** Every cosign signature candidate of `digest` in `repo`, both forms. */
export async function findCosignSignatures(registry: RegistryClient, repo: string, digest: string): Promise<FoundCosign> {
  const [classic, bundles] = await Promise.all([findClassic(registry, repo, digest), findBundles(registry, repo, digest)]);
  return { classic, bundles };
}
