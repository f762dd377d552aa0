// Discover the Notation signatures of a manifest: the OCI referrers API
// (GET /v2/<name>/referrers/<digest>?artifactType=…), or — for registries without it, such as
// distribution 2.8 — the referrers tag schema (an index tagged sha256-<hex>) (OCI distribution spec
// 1.1, "Listing Referrers" and "Referrers Tag Schema"). Every manifest and envelope is fetched by
// digest and checked against it; nothing the registry says is taken on trust.
import { createHash } from 'node:crypto';
import { fail } from '../errors.js';
import { parseUpstreamObject } from '../http/upstream-json.js';
import { readBodyCapped } from '../http/read-capped.js';
import type { RegistryClient } from '../registry/registry-client.js';

export const SIGNATURE_ARTIFACT_TYPE = 'application/vnd.cncf.notary.signature';
const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json'];
const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json'];
/** Signatures considered per manifest: a registry could list endless referrers. */
export const MAX_SIGNATURES = 16;
const MAX_ENVELOPE_BYTES = 256 * 1024;

export interface FoundSignature {
  /** Digest of the signature manifest. */
  manifestDigest: string;
  /** application/jose+json or application/cose */
  envelopeMediaType: string;
  envelope: Buffer;
}

interface Descriptor {
  mediaType?: string;
  artifactType?: string;
  digest: string;
  size?: number;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function referrerDescriptors(registry: RegistryClient, repo: string, digest: string): Promise<Descriptor[]> {
  const res = await registry.send(`/v2/${repo}/referrers/${digest}?artifactType=${encodeURIComponent(SIGNATURE_ARTIFACT_TYPE)}`, {
    method: 'GET',
    repo,
    headers: { accept: INDEX_TYPES.join(', ') },
    signal: AbortSignal.timeout(30_000),
  });
  let index: { manifests?: Descriptor[] } | undefined;
  if (res.statusCode === 200) {
    index = parseUpstreamObject(await readBodyCapped(res.body, 4 * 1024 * 1024, 'referrers index', res.headers['content-length']), `referrers index of ${repo}@${digest}`);
  } else {
    await res.body.dump();
    if (res.statusCode !== 404) throw fail('UPSTREAM_UNAVAILABLE', `referrers of ${repo}@${digest}: upstream answered ${res.statusCode}`);
    // No referrers API: the tag schema. The index is mutable (anyone who can push may replace it),
    // which is fine: it only lists candidates, each verified on its own.
    const fallback = await registry.fetchManifest(repo, `sha256-${digest.slice('sha256:'.length)}`, INDEX_TYPES);
    index = fallback ? parseUpstreamObject(fallback.bytes, `referrers tag index of ${repo}@${digest}`) : undefined;
  }
  if (index?.manifests !== undefined && !Array.isArray(index.manifests)) throw fail('UPSTREAM_INVALID', `referrers index of ${repo}@${digest}: manifests is not a list`);
  return (index?.manifests ?? []).filter((d) => d?.artifactType === SIGNATURE_ARTIFACT_TYPE && typeof d.digest === 'string').slice(0, MAX_SIGNATURES);
}

export async function findNotationSignatures(registry: RegistryClient, repo: string, digest: string): Promise<FoundSignature[]> {
  const out: FoundSignature[] = [];
  for (const d of await referrerDescriptors(registry, repo, digest)) {
    if (!/^sha256:[0-9a-f]{64}$/.test(d.digest)) continue;
    const m = await registry.fetchManifest(repo, d.digest, MANIFEST_TYPES);
    if (!m || sha256(m.bytes) !== d.digest) continue;
    let doc: { artifactType?: string; subject?: { digest?: string }; layers?: Descriptor[] };
    try {
      doc = parseUpstreamObject(m.bytes, `signature manifest ${d.digest}`) as typeof doc;
    } catch {
      continue; // a junk candidate is skipped; the others are still verified
    }
    if (!Array.isArray(doc.layers)) continue;
    // A signature manifest must say it is one, and point back at exactly this manifest.
    if (doc.artifactType !== SIGNATURE_ARTIFACT_TYPE || doc.subject?.digest !== digest) continue;
    const layer = doc.layers?.[0];
    if (!layer || (layer.mediaType !== 'application/jose+json' && layer.mediaType !== 'application/cose') || !/^sha256:[0-9a-f]{64}$/.test(layer.digest)) continue;
    const res = await registry.send(`/v2/${repo}/blobs/${layer.digest}`, { method: 'GET', repo, signal: AbortSignal.timeout(30_000) });
    if (res.statusCode !== 200) {
      await res.body.dump();
      continue;
    }
    const envelope = Buffer.from(await readBodyCapped(res.body, MAX_ENVELOPE_BYTES, `signature envelope ${layer.digest}`, res.headers['content-length']));
    if (sha256(envelope) !== layer.digest) continue;
    out.push({ manifestDigest: d.digest, envelopeMediaType: layer.mediaType, envelope });
  }
  return out;
}
