// An in-memory MetadataFetcher over a files map (a Repo's, or a directory read into memory), for unit
// tests of TrustClient. It behaves like a mirror that serves by name: `<role>.<sha256>.json` requests
// get the current `<role>.json` (the client's hash check decides), `N.root.json` its own file. Every
// request is logged; `intercept` can answer instead (errors, other bytes).
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { MetadataFetcher, MetadataRequest } from '../../../src/signatures/dct/client.js';
import { fail } from '../../../src/errors.js';
import type { Repo } from './repo.js';

type Files = ReadonlyMap<string, Uint8Array>;

export interface MemoryFetcherOptions {
  /** Refuse (TOO_LARGE) bodies over req.maxBytes, as the real fetchers do. Default true. */
  enforceMaxBytes?: boolean;
  /** Answer a request instead of the files: bytes, null (404), or undefined to fall through. May throw. */
  intercept?: (req: MetadataRequest, file: string) => Uint8Array | null | undefined | Promise<Uint8Array | null | undefined>;
}

/** The file a request names, as notary-server routes it (server/server.go). */
export function fileForRequest(req: Pick<MetadataRequest, 'role' | 'version'>): string {
  return req.version !== undefined ? `${req.version}.${req.role}.json` : `${req.role}.json`;
}

export class MemoryFetcher implements MetadataFetcher {
  readonly source = 'memory-notary';
  readonly requests: MetadataRequest[] = [];
  intercept: MemoryFetcherOptions['intercept'];

  constructor(
    private readonly files: Files | (() => Files),
    private readonly opts: MemoryFetcherOptions = {},
  ) {
    this.intercept = opts.intercept;
  }

  /** Requested file names, in order (checksum requests show as `role.<sha256>.json`). */
  get log(): string[] {
    return this.requests.map((r) => (r.sha256 && r.version === undefined ? `${r.role}.${r.sha256}.json` : fileForRequest(r)));
  }

  async fetch(req: MetadataRequest): Promise<Uint8Array | null> {
    this.requests.push({ ...req });
    const file = fileForRequest(req);
    const over = this.intercept ? await this.intercept(req, file) : undefined;
    const files = typeof this.files === 'function' ? this.files() : this.files;
    const bytes = over !== undefined ? over : (files.get(file) ?? null);
    if (bytes && (this.opts.enforceMaxBytes ?? true) && bytes.length > req.maxBytes) {
      throw fail('TOO_LARGE', `${file}: ${bytes.length} bytes, over the ${req.maxBytes}-byte limit`);
    }
    return bytes;
  }
}

/** A fetcher serving a Repo's current files (later edits to the repo are seen). */
export function repoFetcher(repo: Repo, opts?: MemoryFetcherOptions): MemoryFetcher {
  return new MemoryFetcher(() => repo.files, opts);
}

/** Every *.json below `dir`, by relative path (`targets/releases.json`). */
export async function readFiles(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.json')) continue;
    const full = join(e.parentPath, e.name);
    out.set(relative(dir, full).split('\\').join('/'), await readFile(full));
  }
  return out;
}
