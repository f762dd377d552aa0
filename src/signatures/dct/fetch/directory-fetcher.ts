// Offline metadata source: a directory laid out as the notary server serves a GUN
// (root.json timestamp.json snapshot.json targets.json targets/<role>.json N.root.json).
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fail } from '../../../errors.js';
import type { MetadataFetcher, MetadataRequest } from '../client.js';
import { metadataFileName } from './metadata-path.js';

export class DirectoryFetcher implements MetadataFetcher {
  readonly source: string;
  constructor(private readonly dir: string) {
    this.source = `metadata directory ${dir}`;
  }

  async fetch(req: MetadataRequest): Promise<Uint8Array | null> {
    // Checksum names are served by the same file: the hash check that follows proves it is the one.
    const name = metadataFileName({ role: req.role, version: req.version });
    let fh;
    try {
      fh = await open(join(this.dir, name), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw fail('NOTARY_UNAVAILABLE', `cannot read ${name} in ${this.dir}: ${(err as Error).message}`, err);
    }
    try {
      const { size } = await fh.stat();
      if (size > req.maxBytes) throw fail('TOO_LARGE', `${name} is ${size} bytes, over the ${req.maxBytes}-byte limit`);
      const buf = Buffer.alloc(size);
      const { bytesRead } = await fh.read(buf, 0, size, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
}
