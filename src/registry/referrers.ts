// List the OCI referrers of a manifest (OCI distribution spec 1.1, "Listing Referrers" and
// "Referrers Tag Schema"): the referrers API (GET /v2/<name>/referrers/<digest>?artifactType=…,
// following Link pages on the same registry), or, for registries without it (such as distribution
// 2.8, which answers 404), the index tagged sha256-<hex>. Notation signatures and Sigstore bundles are
// both found this way; only the artifactType (and, for Notation, the manifest media type) differs.
// The listing is the upstream's answer and only names candidates: the tag is mutable and the API
// is whatever the registry says. Callers fetch each candidate by digest and check it themselves.
import { fail } from '../errors.js';
import { readBodyCapped } from '../http/read-capped.js';
import { parseUpstreamObject } from '../http/upstream-json.js';
import type { RegistryClient } from './registry-client.js';

const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json'];
const MAX_REFERRER_PAGES = 8;
const MAX_INDEX_BYTES = 4 * 1024 * 1024;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** An OCI descriptor as a referrers index or a manifest lists it; nothing in it is checked but what callers check. */
export interface Descriptor {
  mediaType?: string;
  artifactType?: string;
  digest: string;
  size?: number;
  annotations?: Record<string, string>;
}

export interface ReferrersQuery {
  /** Only descriptors with exactly this artifactType are kept (the registry's own filter is not relied on). */
  artifactType: string;
  /**
   * At most this many descriptors (and no more pages once there are). The filters run first, so what
   * is not of the artifactType never takes a place. Verifiers pass none: they rank every candidate
   * (the listing is bounded by its bytes and pages) and spend a budget instead.
   */
  max?: number;
  /** When set, a descriptor that names a mediaType must name this one. */
  mediaType?: string;
}

function indexManifests(bytes: Uint8Array, what: string): Descriptor[] {
  // Not JSON, not an object, or manifests not a list is UPSTREAM_INVALID; no manifests is no referrers.
  const manifests = parseUpstreamObject(bytes, what).manifests;
  if (manifests === undefined || manifests === null) return [];
  if (!Array.isArray(manifests)) throw fail('UPSTREAM_INVALID', `${what}: manifests is not a list`);
  return manifests as Descriptor[];
}

/** The next page of a referrers listing (RFC 5988 Link, rel="next"), only on the same registry. */
function nextLink(link: string | string[] | undefined): string | undefined {
  const l = Array.isArray(link) ? link.join(', ') : link;
  const m = l ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(l) : null;
  if (!m) return undefined;
  const u = new URL(m[1]!, 'http://registry.invalid');
  return u.origin === 'http://registry.invalid' ? `${u.pathname}${u.search}` : undefined;
}

/**
 * The referrers of `digest` in `repo` with the queried artifactType and a sha256 digest, each digest
 * once, in listing order, at most `max`. A malformed listing is UPSTREAM_INVALID; any answer but 200
 * from the API, other than a first-page 404 (no API: the tag schema instead), is UPSTREAM_UNAVAILABLE.
 */
export async function listReferrers(registry: RegistryClient, repo: string, digest: string, query: ReferrersQuery): Promise<Descriptor[]> {
  const { artifactType, max = Infinity, mediaType } = query;
  const listed: Descriptor[] = [];
  const keep = (ds: Descriptor[]) =>
    ds.filter((d) => d?.artifactType === artifactType && typeof d.digest === 'string' && DIGEST.test(d.digest) && (mediaType === undefined || d.mediaType === undefined || d.mediaType === mediaType));
  let path: string | undefined = `/v2/${repo}/referrers/${digest}?artifactType=${encodeURIComponent(artifactType)}`;
  for (let page = 0; path && page < MAX_REFERRER_PAGES && listed.length < max; page++) {
    const res = await registry.send(path, { method: 'GET', repo, headers: { accept: INDEX_TYPES.join(', ') }, signal: AbortSignal.timeout(30_000), pool: 'signatures' });
    if (res.statusCode === 200) {
      listed.push(...keep(indexManifests(await readBodyCapped(res.body, MAX_INDEX_BYTES, 'referrers index', res.headers['content-length']), `referrers of ${repo}@${digest}`)));
      path = nextLink(res.headers.link);
      continue;
    }
    await res.body.dump();
    if (page > 0 || res.statusCode !== 404) throw fail('UPSTREAM_UNAVAILABLE', `referrers of ${repo}@${digest}: upstream answered ${res.statusCode}`);
    // No referrers API: the tag schema. The index is mutable (anyone who can push may replace it),
    // which is fine: it only lists candidates, each verified on its own.
    const fallback = await registry.fetchManifest(repo, `sha256-${digest.slice('sha256:'.length)}`, INDEX_TYPES, undefined, { pool: 'signatures' });
    if (fallback) listed.push(...keep(indexManifests(fallback.bytes, `referrers tag of ${repo}@${digest}`)));
    break;
  }
  const seen = new Set<string>();
  return listed.filter((d) => !seen.has(d.digest) && seen.add(d.digest)).slice(0, max);
}
