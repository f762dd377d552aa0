// Air-gap trust bundles: the raw signed metadata of repositories, carried to sites that cannot reach a
// notary server. The bundle is only a container: on import every byte is verified again, offline,
// against the site's own trust pinning and rollback state — nothing in it is trusted, not even its index.
import { fail } from '../../errors.js';
import type { MetadataFetcher, MetadataRequest } from './client.js';
import type { TrustedSet } from './trusted-set.js';

export const BUNDLE_FORMAT = 'trustgate-bundle/v1';
/** Refuse bundles larger than this before parsing them (endless data). */
export const MAX_BUNDLE_BYTES = 512 * 1024 * 1024;

export interface BundleRepository {
  gun: string;
  /** role file name without .json ('timestamp', 'targets/releases', '3.root') → base64 bytes */
  files: Record<string, string>;
  /** Informational only; recomputed from verified data on import. */
  index: { versions: Record<string, number>; expires: Record<string, string> };
}

export interface BundleImage {
  gun: string;
  repo: string;
  tag: string;
  digest: string;
  /** digest → { mediaType, base64 } for manifests (index and children) and blobs */
  manifests: Record<string, { mediaType: string; data: string }>;
  blobs: Record<string, string>;
}

export interface Bundle {
  format: typeof BUNDLE_FORMAT;
  createdAt: string;
  repositories: BundleRepository[];
  images?: BundleImage[];
}

/** Versions and expiries of everything in a verified set: the bundle index, the status report. */
export function describeSet(set: TrustedSet): BundleRepository['index'] {
  const versions: Record<string, number> = { root: set.root.root.version };
  const expires: Record<string, string> = { root: set.root.root.expires.toISOString() };
  if (set.timestamp) {
    versions.timestamp = set.timestamp.ts.version;
    expires.timestamp = set.timestamp.ts.expires.toISOString();
  }
  if (set.snapshot) {
    versions.snapshot = set.snapshot.snap.version;
    expires.snapshot = set.snapshot.snap.expires.toISOString();
  }
  for (const [name, t] of set.targets) {
    versions[name] = t.targets.version;
    expires[name] = t.targets.expires.toISOString();
  }
  return { versions, expires };
}

/** The raw bytes of a verified set, as the bundle carries them. */
export function setFiles(set: TrustedSet, extraRoots: Map<number, Uint8Array>): Record<string, string> {
  const files: Record<string, string> = {};
  const put = (name: string, b: Uint8Array) => (files[name] = Buffer.from(b).toString('base64'));
  put('root', set.root.env.raw);
  if (set.timestamp) put('timestamp', set.timestamp.env.raw);
  if (set.snapshot) put('snapshot', set.snapshot.env.raw);
  for (const [name, t] of set.targets) put(name, t.env.raw);
  for (const [v, b] of extraRoots) put(`${v}.root`, b);
  return files;
}

export function parseBundle(bytes: Buffer): Bundle {
  if (bytes.length > MAX_BUNDLE_BYTES) throw fail('TOO_LARGE', `bundle is ${bytes.length} bytes, over ${MAX_BUNDLE_BYTES}`);
  let doc: Bundle;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Bundle;
  } catch (err) {
    throw fail('MALFORMED', `bundle is not valid JSON: ${(err as Error).message}`);
  }
  if (doc?.format !== BUNDLE_FORMAT || !Array.isArray(doc.repositories)) throw fail('MALFORMED', `not a ${BUNDLE_FORMAT} bundle`);
  for (const r of doc.repositories) {
    if (typeof r?.gun !== 'string' || typeof r.files !== 'object' || r.files === null) throw fail('MALFORMED', 'bundle repository without gun or files');
    for (const [k, v] of Object.entries(r.files)) if (typeof v !== 'string') throw fail('MALFORMED', `bundle ${r.gun}: file ${k} is not base64 text`);
  }
  return doc;
}

/** Serves one bundled repository's files to the updater, as a notary server would. */
export class BundleFetcher implements MetadataFetcher {
  constructor(
    private readonly repo: BundleRepository,
    /** Whose files these are in the store: 'bundle' for an air-gapped upstream, the notary host for a frozen one. */
    readonly source = 'bundle',
  ) {}

  async fetch(req: MetadataRequest): Promise<Uint8Array | null> {
    if (req.gun !== this.repo.gun) return null;
    const name = req.version !== undefined ? `${req.version}.${req.role}` : req.role;
    const b64 = this.repo.files[name];
    if (b64 === undefined) return null;
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length > req.maxBytes) throw fail('TOO_LARGE', `bundle ${this.repo.gun} ${name}: ${bytes.length} bytes, over ${req.maxBytes}`);
    return bytes;
  }
}

/** The fetcher of an upstream that has no notary server: nothing exists beyond what was imported. */
export class OfflineFetcher implements MetadataFetcher {
  readonly source = 'bundle';
  async fetch(_req: MetadataRequest): Promise<Uint8Array | null> {
    return null;
  }
}
