// `trustgate bundle export|import|status`: trust metadata for air-gapped sites.
//   export --out FILE [--with-images] [--list FILE] IMAGE[:TAG]...   verify online, write one file
//   import FILE [--now ISO8601] [--push-to REGISTRY_URL]            verify again offline, load the store
//   status [--json] [--now ISO8601]                                 versions held, time to earliest expiry
import { readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { fail, isTrustgateError } from '../errors.js';
import type { KvStore } from '../store/kv.js';
import { VerifiedRecords } from '../signatures/dct/state/verified-records.js';
import { KvTrustState } from '../store/kv-trust-state.js';
import { BundleFetcher, BUNDLE_FORMAT, describeSet, parseBundle, setFiles, type Bundle, type BundleImage, type BundleRepository } from '../signatures/dct/bundle.js';
import { TrustClient } from '../signatures/dct/client.js';
import { CachingFetcher } from '../signatures/dct/fetch/caching-fetcher.js';
import { resolveTag } from '../signatures/dct/resolve-tag.js';
import { MemoryTrustState } from '../signatures/dct/state/memory-state.js';
import { MANIFEST_MEDIA_TYPES } from '../registry/registry-client.js';
import { readBodyCapped } from '../http/read-capped.js';
import { BUNDLE_INDEX_KEY, buildKv, pinningOf } from '../app/store.js';
import { readBundleIndex, secondsLeft } from '../app/bundle-index.js';
import { Progress } from './progress.js';
import { notaryFetcherFor, notarySourceOf, registryClientFor } from '../app/upstream-clients.js';
import { parseImage, upstreamForImage } from '../app/select-upstream.js';
import { parseNow } from './lookup.js';
import { EXIT_OK, EXIT_REFUSED, reportError, UsageError, type Io } from './output.js';

/** bundle export writes progress lines (stderr) from this many references on, or with --progress. */
export const EXPORT_PROGRESS_MIN = 20;

const USAGE = `usage: trustgate bundle export --out FILE [--with-images] [--list FILE] [--progress] [--config FILE] IMAGE[:TAG]...
       trustgate bundle import FILE [--now ISO8601] [--push-to REGISTRY_URL] [--config FILE]
       trustgate bundle status [--json] [--now ISO8601] [--config FILE]`;

/**
 * The frozen upstream (notary.frozenAt) that serves a GUN, with the notary host its state is stored
 * under, or undefined: an air-gapped (`bundle: true`) or live upstream, or none.
 */
function frozenUpstreamOf(config: Config, gun: string, env: NodeJS.ProcessEnv): { upstream: string; at: Date; source: string } | undefined {
  const u = [...config.upstreams].sort((a, b) => b.gun.length - a.gun.length).find((x) => gun.startsWith(`${x.gun}/`));
  const at = u?.notary?.frozenAt;
  if (!u || !at) return undefined;
  return { upstream: u.name, at, source: notarySourceOf(u)! };
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function exportImages(config: Config, env: NodeJS.ProcessEnv, image: { name: string; tag: string }, digest: string): Promise<BundleImage> {
  const u = upstreamForImage(config, image.name);
  const repo = image.name.slice(u.gun.length + 1);
  const registry = registryClientFor(config, u, env);
  try {
    const out: BundleImage = { gun: image.name, repo, tag: image.tag, digest, manifests: {}, blobs: {} };
    const queue = [digest];
    while (queue.length) {
      const d = queue.shift()!;
      if (out.manifests[d]) continue;
      const m = await registry.fetchManifest(repo, d, MANIFEST_MEDIA_TYPES);
      if (!m || sha256(m.bytes) !== d) throw fail('DIGEST_MISMATCH', `manifest ${repo}@${d} is missing upstream or does not match its digest`);
      const doc = JSON.parse(m.bytes.toString('utf8')) as { mediaType?: string; manifests?: Array<{ digest: string }>; config?: { digest: string }; layers?: Array<{ digest: string }> };
      out.manifests[d] = { mediaType: m.mediaType ?? doc.mediaType ?? 'application/vnd.oci.image.manifest.v1+json', data: m.bytes.toString('base64') };
      for (const child of doc.manifests ?? []) queue.push(child.digest);
      for (const b of [doc.config, ...(doc.layers ?? [])]) {
        if (!b || out.blobs[b.digest]) continue;
        const res = await registry.send(`/v2/${repo}/blobs/${b.digest}`, { method: 'GET', repo });
        if (res.statusCode !== 200) throw fail('BLOB_UNKNOWN', `blob ${repo}@${b.digest}: upstream answered ${res.statusCode}`);
        const bytes = Buffer.from(await readBodyCapped(res.body, 1024 * 1024 * 1024, `blob ${b.digest}`));
        if (sha256(bytes) !== b.digest) throw fail('DIGEST_MISMATCH', `blob ${repo}@${b.digest} does not match its digest`);
        out.blobs[b.digest] = bytes.toString('base64');
      }
    }
    return out;
  } finally {
    await registry.close();
  }
}

async function runExport(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string' }, 'with-images': { type: 'boolean' }, list: { type: 'string' }, progress: { type: 'boolean' }, config: { type: 'string' } } });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const out = parsed.values.out;
  if (!out) throw new UsageError('export needs --out FILE');
  const refs = [...parsed.positionals];
  if (parsed.values.list) refs.push(...(await readFile(parsed.values.list, 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
  if (refs.length === 0) throw new UsageError('export needs at least one IMAGE[:TAG]');
  const config = loadConfig(parsed.values.config ?? env.TRUSTGATE_CONFIG ?? DEFAULT_CONFIG_FILE, env);
  const bundle: Bundle = { format: BUNDLE_FORMAT, createdAt: new Date().toISOString(), repositories: [], images: [] };
  const byGun = new Map<string, BundleRepository>();
  // A --list of hundreds of images takes minutes (each one verified, its images copied): say how far.
  const progress = new Progress(io, 'bundle export', refs.length, 'references', { minTotal: EXPORT_PROGRESS_MIN, force: parsed.values.progress });
  let done = 0;
  for (const ref of refs) {
    const { name, tag } = parseImage(ref);
    const u = upstreamForImage(config, name);
    const fetcher = notaryFetcherFor(config, u, env)!;
    try {
      // Fully verified before anything is written: an export never carries data that does not verify.
      const client = new TrustClient({ fetcher, state: new MemoryTrustState(), clock: { now: () => new Date() }, pinning: pinningOf(config) });
      const set = await client.update(name);
      if (!byGun.has(name)) {
        // Older roots let a site whose store holds one of them follow the rotation chain offline.
        const roots = new Map<number, Uint8Array>();
        for (let v = 1; v < set.root.root.version; v++) {
          const b = await fetcher.fetch({ gun: name, role: 'root', version: v, maxBytes: 512 * 1024 });
          if (b) roots.set(v, b);
        }
        const repo = { gun: name, files: setFiles(set, roots), index: describeSet(set) };
        byGun.set(name, repo);
        bundle.repositories.push(repo);
      }
      if (parsed.values['with-images']) {
        const t = resolveTag(name, tag ?? 'latest', set.targets, set.skipped);
        bundle.images!.push(await exportImages(config, env, { name, tag: t.tag }, t.digest));
      }
    } finally {
      await fetcher.close();
    }
    progress.tick(++done, `${byGun.size} repositories${parsed.values['with-images'] ? `, ${bundle.images!.length} images` : ''}`);
  }
  progress.finish(done, `${byGun.size} repositories${parsed.values['with-images'] ? `, ${bundle.images!.length} images` : ''}, writing ${out}`);
  if (!parsed.values['with-images']) delete bundle.images;
  await writeFile(out, JSON.stringify(bundle));
  io.stdout(JSON.stringify({ ok: true, out, repositories: bundle.repositories.map((r) => ({ gun: r.gun, versions: r.index.versions })), images: bundle.images?.length ?? 0 }));
  return EXIT_OK;
}

/** Monolithic uploads of a verified bundled image into an internal registry. */
async function pushImage(registryUrl: string, img: BundleImage): Promise<void> {
  for (const [digest, b64] of Object.entries(img.blobs)) {
    const bytes = Buffer.from(b64, 'base64');
    if (sha256(bytes) !== digest) throw fail('DIGEST_MISMATCH', `bundled blob ${digest} does not match its digest`);
    const start = await request(`${registryUrl}/v2/${img.repo}/blobs/uploads/`, { method: 'POST' });
    await start.body.dump();
    const loc = new URL(String(start.headers.location), registryUrl);
    loc.searchParams.set('digest', digest);
    const put = await request(loc, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    await put.body.dump();
    if (put.statusCode !== 201) throw fail('UPSTREAM_UNAVAILABLE', `pushing blob ${digest}: ${put.statusCode}`);
  }
  // Children before the index, the tagged manifest last.
  const order = Object.keys(img.manifests).reverse();
  for (const digest of order) {
    const m = img.manifests[digest]!;
    const bytes = Buffer.from(m.data, 'base64');
    if (sha256(bytes) !== digest) throw fail('DIGEST_MISMATCH', `bundled manifest ${digest} does not match its digest`);
    const ref = digest === img.digest ? img.tag : digest;
    const put = await request(`${registryUrl}/v2/${img.repo}/manifests/${ref}`, { method: 'PUT', body: bytes, headers: { 'content-type': m.mediaType } });
    await put.body.dump();
    if (put.statusCode !== 201) throw fail('UPSTREAM_UNAVAILABLE', `pushing manifest ${digest}: ${put.statusCode}`);
  }
}

async function runImport(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { now: { type: 'string' }, 'push-to': { type: 'string' }, config: { type: 'string' } } });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const [file, ...extra] = parsed.positionals;
  if (!file || extra.length) throw new UsageError('import needs exactly one FILE');
  const now = parseNow(parsed.values.now);
  const config = loadConfig(parsed.values.config ?? env.TRUSTGATE_CONFIG ?? DEFAULT_CONFIG_FILE, env);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const bundle = parseBundle(bytes);
  const kv = buildKv(config);
  const clock = { now: () => now ?? new Date() };
  const results: Array<{ gun: string; ok: boolean; code?: string; message?: string; versions?: Record<string, number>; frozen?: string }> = [];
  try {
    const index = await readBundleIndex(kv);
    for (const repo of bundle.repositories) {
      // The same verification the proxy does online — site pinning, rollback floors from this store,
      // expiry at `now` — over the bundle's bytes, which land in the store only once they verified.
      const frozen = frozenUpstreamOf(config, repo.gun, env);
      const fetcher = new CachingFetcher(new BundleFetcher(repo, frozen?.source), kv, { freshSeconds: 0, staleIfError: false, retainSeconds: frozen ? 0 : undefined });
      // A frozen upstream: the bundle must have been made at or before the freeze, and its timestamp and
      // snapshot are checked at the freeze, as the proxy checks them (TrustedSet.frozenAt).
      const client = new TrustClient({ fetcher, state: new KvTrustState(kv), clock, pinning: pinningOf(config), frozen: frozen ? { at: frozen.at, fetcher } : undefined });
      try {
        const createdAt = new Date(bundle.createdAt);
        if (frozen && !(createdAt <= frozen.at)) {
          throw fail('FROZEN_NO_STATE', `DCT trust of upstream ${frozen.upstream} is frozen at ${frozen.at.toISOString()}; this bundle was created at ${bundle.createdAt}, after the freeze, and is not accepted`);
        }
        const set = await client.update(repo.gun);
        // What the proxy's frozen trust resolves from: this set, as of the bundle's making, its files
        // written once, by the record (durable, kept until evicted), as TrustService.stored does.
        const records = frozen ? new VerifiedRecords(kv, frozen.source) : undefined;
        const files = records?.filesOf(repo.gun, set, true);
        await fetcher.commit(repo.gun, files);
        await records?.write(repo.gun, set, createdAt, true, files);
        const d = describeSet(set);
        index[repo.gun] = { importedAt: clock.now().toISOString(), ...d, ...(frozen ? { frozenAt: frozen.at.toISOString() } : {}) };
        results.push({ gun: repo.gun, ok: true, versions: d.versions, ...(frozen ? { frozen: frozen.at.toISOString() } : {}) });
      } catch (err) {
        fetcher.discard(repo.gun);
        if (!isTrustgateError(err)) throw err;
        results.push({ gun: repo.gun, ok: false, code: err.code, message: `bundle ${repo.gun}: ${err.message}` });
      }
    }
    // A refused import leaves the store exactly as it was: the index is rewritten only for a success.
    if (results.some((r) => r.ok)) await kv.set(BUNDLE_INDEX_KEY, Buffer.from(JSON.stringify(index)));
    const pushTo = parsed.values['push-to'];
    let pushed = 0;
    if (pushTo) {
      for (const img of bundle.images ?? []) {
        if (!results.find((r) => r.gun === img.gun)?.ok) continue; // never fill a registry from data that did not verify
        await pushImage(pushTo.replace(/\/+$/, ''), img);
        pushed++;
      }
    }
    const failed = results.filter((r) => !r.ok);
    io.stdout(JSON.stringify(failed.length ? { error: failed[0]!.code, message: failed.map((f) => f.message).join('; '), repositories: results } : { ok: true, repositories: results, imagesPushed: pushed }));
    return failed.length ? EXIT_REFUSED : EXIT_OK;
  } finally {
    await kv.close();
  }
}

/** Repositories of frozen upstreams and when their state was verified (prefetched or imported). */
async function frozenStatus(config: Config, kv: KvStore): Promise<Array<{ gun: string; upstream: string; verifiedAt: string; frozenAt: string; usable: boolean }>> {
  const out = [];
  for (const u of config.upstreams) {
    const at = u.notary?.frozenAt;
    if (!at) continue;
    for (const [gun, verifiedAt] of await new VerifiedRecords(kv, notarySourceOf(u)!).index()) {
      out.push({ gun, upstream: u.name, verifiedAt: verifiedAt.toISOString(), frozenAt: at.toISOString(), usable: verifiedAt <= at });
    }
  }
  return out;
}

async function runStatus(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { json: { type: 'boolean' }, now: { type: 'string' }, config: { type: 'string' } } });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const now = parseNow(parsed.values.now) ?? new Date();
  const config = loadConfig(parsed.values.config ?? env.TRUSTGATE_CONFIG ?? DEFAULT_CONFIG_FILE, env);
  const kv = buildKv(config);
  try {
    const index = await readBundleIndex(kv);
    const rows = Object.entries(index).map(([gun, e]) => ({ gun, importedAt: e.importedAt, versions: e.versions, earliestExpiry: new Date(now.getTime() + secondsLeft(e, now) * 1000).toISOString(), secondsLeft: secondsLeft(e, now), ...(e.frozenAt ? { frozen: e.frozenAt } : {}) }));
    const frozen = await frozenStatus(config, kv);
    if (parsed.values.json) io.stdout(JSON.stringify({ repositories: rows, ...(frozen.length ? { frozen } : {}) }));
    else {
      io.stdout(rows.length ? 'REPOSITORY\tTIMESTAMP\tSNAPSHOT\tTARGETS\tEARLIEST EXPIRY\tLEFT' : 'no bundles imported');
      for (const r of rows) {
        const left = r.secondsLeft < 0 ? 'EXPIRED' : `${Math.floor(r.secondsLeft / 86400)}d ${Math.floor((r.secondsLeft % 86400) / 3600)}h`;
        io.stdout(`${r.gun}\tv${r.versions.timestamp}\tv${r.versions.snapshot}\tv${r.versions.targets}\t${r.earliestExpiry}\t${left}${r.frozen ? `\tfrozen ${r.frozen}` : ''}`);
      }
      if (frozen.length) io.stdout('FROZEN REPOSITORY\tUPSTREAM\tVERIFIED AT\tSTATE');
      for (const f of frozen) io.stdout(`${f.gun}\t${f.upstream}\t${f.verifiedAt}\t${f.usable ? `frozen ${f.frozenAt}` : `verified after the freeze at ${f.frozenAt}: not used`}`);
    }
    return EXIT_OK;
  } finally {
    await kv.close();
  }
}

export async function runBundle(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  try {
    const [sub, ...rest] = argv;
    if (sub === 'export') return await runExport(rest, io, env);
    if (sub === 'import') return await runImport(rest, io, env);
    if (sub === 'status') return await runStatus(rest, io, env);
    throw new UsageError('bundle needs export, import or status');
  } catch (err) {
    return reportError(io, err, USAGE);
  }
}
