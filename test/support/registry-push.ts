// Small pushes straight through the distribution API, as signing tools make them: a blob by monolithic
// upload, a manifest by reference, a referrer manifest by its digest, and the referrers tag schema index
// (`sha256-<hex>`) that lists referrers on a registry without the referrers API (distribution 2.8).
import { createHash } from 'node:crypto';
import { request } from 'undici';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export const sha256Digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Upload `bytes` as one blob (POST a session, PUT with the digest); returns the digest. */
export async function putBlob(registry: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256Digest(bytes);
  const start = await request(`${registry}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.body.dump();
  const loc = new URL(String(start.headers.location), registry);
  loc.searchParams.set('digest', digest);
  const put = await request(loc, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  await put.body.dump();
  if (put.statusCode !== 201) throw new Error(`blob upload: ${put.statusCode}`);
  return digest;
}

export async function putManifest(registry: string, repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<void> {
  const put = await request(`${registry}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: bytes, headers: { 'content-type': mediaType } });
  await put.body.dump();
  if (put.statusCode !== 201) throw new Error(`manifest push ${ref}: ${put.statusCode}`);
}

/**
 * An OCI referrer manifest pushed by its digest; returns its entry for a referrers index, carrying the
 * manifest's annotations as the referrers API does (and oras-go, notation's library, in the tag schema).
 */
export async function putReferrer(registry: string, repo: string, manifest: Buffer, artifactType: string): Promise<{ mediaType: string; artifactType: string; digest: string; size: number; annotations?: Record<string, string> }> {
  const digest = sha256Digest(manifest);
  await putManifest(registry, repo, digest, manifest, OCI_MANIFEST);
  const annotations = (JSON.parse(manifest.toString()) as { annotations?: Record<string, string> }).annotations;
  return { mediaType: OCI_MANIFEST, artifactType, digest, size: manifest.length, ...(annotations ? { annotations } : {}) };
}

/** The referrers tag schema: an image index tagged sha256-<hex> of the subject, listing `entries` (replacing what it listed). */
export async function putReferrersIndex(registry: string, repo: string, subjectDigest: string, entries: unknown[]): Promise<void> {
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries }));
  await putManifest(registry, repo, `sha256-${subjectDigest.slice(7)}`, index, OCI_INDEX);
}
