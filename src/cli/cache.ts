// `trustgate cache status|prune [--config FILE]`: the blob cache directory of a configuration.
// status: one JSON line (blobs, bytes, cap, partial fills, per upstream). prune: least recently used
// blobs removed down to blobCache.maxBytes, or `--max-bytes N`, or everything with `--all`.
import { parseArgs } from 'node:util';
import { cacheStatus, pruneCache } from '../blobcache/cache-admin.js';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import { EXIT_OK, reportError, UsageError, type Io } from './output.js';
import { Progress } from './progress.js';

/** Prune writes progress lines (stderr) from this many blobs on, or with --progress. */
export const PRUNE_PROGRESS_MIN = 1000;

const USAGE = `usage: trustgate cache status [--config FILE]
       trustgate cache prune [--config FILE] [--max-bytes N | --all] [--progress]`;

export async function runCache(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  try {
    const [sub, ...rest] = argv;
    if (sub !== 'status' && sub !== 'prune') throw new UsageError('expected status or prune');
    let values: { config?: string | undefined; 'max-bytes'?: string | undefined; all?: boolean | undefined; progress?: boolean | undefined };
    try {
      ({ values } = parseArgs({ args: rest, options: { config: { type: 'string' }, 'max-bytes': { type: 'string' }, all: { type: 'boolean' }, progress: { type: 'boolean' } } }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const config = loadConfig(values.config ?? env.TRUSTGATE_CONFIG ?? DEFAULT_CONFIG_FILE, env);
    if (config.blobCache === false) throw new UsageError('the blob cache is off in this configuration (blobCache: false)');
    const { path, maxBytes } = config.blobCache;
    if (sub === 'status') {
      if (values.all || values['max-bytes'] !== undefined || values.progress) throw new UsageError('status takes only --config');
      io.stdout(JSON.stringify(await cacheStatus(path, maxBytes)));
      return EXIT_OK;
    }
    if (values.all && values['max-bytes'] !== undefined) throw new UsageError('--all or --max-bytes, not both');
    let target = maxBytes;
    if (values.all) target = 0;
    else if (values['max-bytes'] !== undefined) {
      if (!/^\d+$/.test(values['max-bytes'])) throw new UsageError('--max-bytes takes a number of bytes');
      target = Number(values['max-bytes']);
    }
    // Created on the first blob looked at, when the number of blobs is known (none: nothing to say).
    let progress: Progress | undefined;
    let looked = 0;
    const r = await pruneCache(path, target, (n, of, so) => {
      progress ??= new Progress(io, 'cache prune', of, 'blobs looked at', { minTotal: PRUNE_PROGRESS_MIN, force: values.progress });
      looked = n + 1;
      progress.tick(n, `${so.removed} removed, ${so.freedBytes} bytes freed`);
    });
    progress?.finish(looked, `${r.removed} removed, ${r.freedBytes} bytes freed, ${r.bytes} bytes held`);
    io.stdout(JSON.stringify({ path, ...r }));
    return EXIT_OK;
  } catch (err) {
    return reportError(io, err, USAGE);
  }
}
