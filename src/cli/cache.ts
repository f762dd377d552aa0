// `trustgate cache status|prune [--config FILE]`: the blob cache directory of a configuration.
// status: one JSON line (blobs, bytes, cap, partial fills, per upstream). prune: least recently used
// blobs removed down to blobCache.maxBytes, or `--max-bytes N`, or everything with `--all`.
// `trustgate cache forget [--config FILE] IMAGE@DIGEST`: a cached manifest withdrawn from the store
// now, and from the memory of every running trustgate on that store within a second.
import { parseArgs } from 'node:util';
import { cacheStatus, pruneCache } from '../blobcache/cache-admin.js';
import { parseImage } from '../app/select-upstream.js';
import { buildKv } from '../app/store.js';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { fail } from '../errors.js';
import { FORGOTTEN_KEY, manifestStoreKey } from '../store/manifest-cache.js';
import { EXIT_OK, reportError, UsageError, type Io } from './output.js';
import { Progress } from './progress.js';

/** Prune writes progress lines (stderr) from this many blobs on, or with --progress. */
export const PRUNE_PROGRESS_MIN = 1000;

const USAGE = `usage: trustgate cache status [--config FILE]
       trustgate cache prune [--config FILE] [--max-bytes N | --all] [--progress]
       trustgate cache forget [--config FILE] IMAGE@sha256:HEX`;

/**
 * The cache keys of IMAGE@DIGEST: one per upstream whose `gun` prefixes the image's name (several
 * upstreams may front one registry, each with its own copy).
 */
function manifestKeys(config: Config, ref: string): string[] {
  const at = ref.lastIndexOf('@');
  const digest = at < 0 ? '' : ref.slice(at + 1);
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new UsageError('name the manifest as IMAGE@sha256:<64 hex digits>');
  const { name, tag } = parseImage(ref.slice(0, at));
  if (tag !== undefined) throw new UsageError('IMAGE@DIGEST takes no tag');
  const keys = config.upstreams.filter((u) => name.startsWith(`${u.gun}/`)).map((u) => `${u.name}/${name.slice(u.gun.length + 1)}@${digest}`);
  if (keys.length === 0) throw fail('NOT_FOUND', `no upstream in the configuration serves ${name} (upstream gun prefixes: ${config.upstreams.map((u) => u.gun).join(', ')})`);
  return keys;
}

async function forget(config: Config, ref: string): Promise<string[]> {
  const keys = manifestKeys(config, ref);
  const kv = buildKv(config);
  try {
    const at = Date.now();
    for (const key of keys) await kv.delete(manifestStoreKey(key));
    // Running processes hold their own copy in memory: they read this map every second and drop theirs.
    await kv.raiseVersions(FORGOTTEN_KEY, Object.fromEntries(keys.map((k) => [k, at])));
    // The store layer carries on in memory when its backend fails: that would forget nothing here.
    if (!kv.health().ok) throw new Error(`the store (${kv.kind}) did not take the change: ${kv.health().detail ?? 'unavailable'}`);
  } finally {
    await kv.close();
  }
  return keys;
}

export async function runCache(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  try {
    const [sub, ...rest] = argv;
    if (sub === 'forget') {
      let parsed: { values: { config?: string | undefined }; positionals: string[] };
      try {
        parsed = parseArgs({ args: rest, options: { config: { type: 'string' } }, allowPositionals: true });
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      if (parsed.positionals.length !== 1) throw new UsageError('forget takes one IMAGE@DIGEST');
      const config = loadConfig(parsed.values.config ?? env.TRUSTGATE_CONFIG ?? DEFAULT_CONFIG_FILE, env);
      io.stdout(JSON.stringify({ forgotten: await forget(config, parsed.positionals[0]!) }));
      return EXIT_OK;
    }
    if (sub !== 'status' && sub !== 'prune') throw new UsageError('expected status, prune or forget');
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
