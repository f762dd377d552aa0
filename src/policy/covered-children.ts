// Children of a signed index under `digestPulls: signed` (issue 25 item 6). A client pulls a multi-arch
// image by tag, gets an OCI image index (or a Docker manifest list), then pulls the platform manifest it
// wants BY DIGEST. Nothing signs that child itself: what is signed is the index, and the index names
// its children by digest, so a covered index covers what it lists. The rule, fail closed:
//   a child digest is covered when some index that lists it in `manifests[].digest` — parsed with caps,
//   from bytes already verified against the index's digest — is itself covered now, under the same
//   effective policy, as a pull of the index by digest would be (decide.ts satisfyDigest).
// Where candidate parents come from (what this process served, a scan of DCT's signed targets) is the
// caller's business: a candidate is only a hint, checked here every time. Nothing here does I/O.
import type { DecidedManifest, Refusals } from './decide.js';

/** The media types of a manifest that lists other manifests (OCI image-spec image-index.md; Docker manifest list v2.2). */
export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

export interface IndexCaps {
  /** An index bigger than this is not read as one (limits.manifestBytes). */
  maxBytes: number;
  /** An index listing more manifests than this is not read as one: the parse and what it adds to memory stay bounded. */
  maxChildren: number;
}

/** How many manifests one index may list and still be read (real multi-arch indexes list a few dozen, attestations included). */
export const MAX_INDEX_CHILDREN = 1024;

/** How many candidate parents one child's check looks at (each may cost a prover call). */
export const MAX_PARENTS_TRIED = 8;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Whether a manifest says it is an index, by its served media type or its own `mediaType` (what the digest covers). */
export function isIndex(m: DecidedManifest): boolean {
  return INDEX_MEDIA_TYPES.has(m.mediaType);
}

/**
 * The digests an index lists in `manifests[].digest`, or undefined when the bytes are not a well-formed
 * index within the caps. Anything odd (not JSON, a `mediaType` that is not an index's, `manifests` not
 * an array, an entry without a sha256 digest, too many entries, too many bytes) makes the whole index
 * unreadable: half an index covers nothing.
 */
export function indexChildren(m: DecidedManifest, caps: IndexCaps): readonly string[] | undefined {
  if (!isIndex(m) || m.bytes.length > caps.maxBytes) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(m.bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const { mediaType, manifests, schemaVersion } = doc as { mediaType?: unknown; manifests?: unknown; schemaVersion?: unknown };
  if (schemaVersion !== 2) return undefined;
  // The media type inside the signed bytes, where there is one, must be an index's too: bytes that say
  // they are an image manifest are not read as an index because a header said so.
  if (mediaType !== undefined && (typeof mediaType !== 'string' || !INDEX_MEDIA_TYPES.has(mediaType))) return undefined;
  if (!Array.isArray(manifests) || manifests.length > caps.maxChildren) return undefined;
  const out: string[] = [];
  for (const e of manifests) {
    const digest = typeof e === 'object' && e !== null ? (e as { digest?: unknown }).digest : undefined;
    if (typeof digest !== 'string' || !DIGEST.test(digest)) return undefined;
    out.push(digest);
  }
  return out;
}

/** What checking one child needs: candidate parents' manifests and whether a parent is covered now. */
export interface CoverPorts<M extends DecidedManifest> {
  /** The parent's manifest, its bytes checked against its digest (a refusal is thrown as a TrustgateError). */
  load(parent: string): Promise<M>;
  /** What covers the parent as a pull by digest now (satisfyDigest), or undefined; refusals go to `refusals`. */
  covered(parent: string, m: M, refusals: Refusals): Promise<string | undefined>;
  caps: IndexCaps;
}

/**
 * The first candidate parent that lists `child` and is covered now, as `index <digest> (<what covered
 * it>)`, or undefined. `tried` carries the parents already looked at across calls (the record first,
 * then a scan), so none is checked twice and at most MAX_PARENTS_TRIED are checked in all.
 */
export async function coverChild<M extends DecidedManifest>(child: string, candidates: Iterable<string>, ports: CoverPorts<M>, refusals: Refusals, tried: Set<string> = new Set()): Promise<string | undefined> {
  for (const parent of candidates) {
    if (parent === child || tried.has(parent)) continue;
    if (tried.size >= MAX_PARENTS_TRIED) return undefined;
    tried.add(parent);
    const m = await ports.load(parent).catch(refusals.catch);
    if (!m) continue;
    // The candidate is a hint: the verified bytes of the parent must list the child.
    if (!indexChildren(m, ports.caps)?.includes(child)) continue;
    const by = await ports.covered(parent, m, refusals);
    if (by) return `index ${parent} (${by})`;
  }
  return undefined;
}
