// HEAD|GET /v2/<name>/manifests/<reference>. A tag is resolved through trust to its signed digest and
// the manifest is fetched BY THAT DIGEST, checked against the signed sha256 and length, then served
// with Docker-Content-Digest = the signed digest. A digest reference is served content-addressed.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fail } from '../../errors.js';
import { audit } from '../../observe/logger.js';
import { decideDigest, decideTag, type DecidePorts, type Decision } from '../../policy/decide.js';
import { effectivePolicy, type EffectivePolicy } from '../../policy/effective.js';
import { dctLabel, type ResolvedTarget } from '../../signatures/dct/trust-service.js';
import { MANIFEST_MEDIA_TYPES } from '../../registry/registry-client.js';
import type { CachedManifest } from '../../store/manifest-cache.js';
import { missingSourceRefusal, tagResolutionsOf, type ServerDeps, type UpstreamDeps } from '../deps.js';
import type { Expiring } from '../../store/expiring-lru.js';
import type { TagResolution } from '../../registry/tag-resolutions.js';
import type { Route } from '../route.js';
import { coveredByParents, noteServedIndex } from './index-parents.js';

type ManifestRoute = Extract<Route, { kind: 'manifest' }>;

function acceptList(req: IncomingMessage): string[] {
  const fromClient = (req.headers.accept ?? '')
    .split(',')
    .map((s) => s.split(';')[0]!.trim())
    .filter((s) => s.length > 0 && s !== '*/*');
  // Ask for everything a client might want; the signed digest decides what is served, not Accept.
  return [...new Set([...fromClient, ...MANIFEST_MEDIA_TYPES])];
}

/**
 * The Content-Type served: the manifest's own `mediaType` when the verified bytes carry one (what the
 * signature covers), else the upstream's header, else Docker's schema 2 type.
 */
export function mediaTypeOf(bytes: Buffer, header: string | undefined): string {
  try {
    const mt = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof mt === 'string' && /^[\w.+-]+\/[\w.+-]+$/.test(mt)) return mt;
  } catch {
    /* not JSON: fall through */
  }
  if (header && header !== 'application/octet-stream' && header !== 'text/plain') return header;
  return header ?? 'application/vnd.docker.distribution.manifest.v2+json';
}

function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The response headers of a verified manifest. */
export function manifestHeaders(m: CachedManifest, digest: string, verifiedBy?: string): Readonly<Record<string, string | number>> {
  return {
    'content-type': m.mediaType,
    'content-length': m.bytes.length,
    'docker-content-digest': digest,
    etag: `"${digest}"`,
    'docker-distribution-api-version': 'registry/2.0',
    // Which signature satisfied the policy, for people and tooling (the audit line says the same).
    ...(verifiedBy ? { 'x-trustgate-verified-by': verifiedBy } : {}),
  };
}

function writeManifest(req: IncomingMessage, res: ServerResponse, m: CachedManifest, digest: string, verifiedBy?: string): void {
  // The headers of a cached manifest are the same on every warm request: built once and kept with it
  // (the object was rebuilt, etag string included, per response; docs/benchmarks.md, "Audit at line rate").
  const key = verifiedBy === undefined ? digest : `${digest} ${verifiedBy}`;
  let h = m.headers;
  if (h?.key !== key) {
    h = { key, value: manifestHeaders(m, digest, verifiedBy) };
    m.headers = h;
  }
  res.writeHead(200, h.value);
  res.end(req.method === 'HEAD' ? undefined : m.bytes);
}

/** Fetch (or reuse) the manifest by digest and prove it is the one asked for. */
export async function verifiedManifest(
  deps: ServerDeps,
  up: UpstreamDeps,
  repo: string,
  digest: string,
  expectedLength: number | undefined,
  accept: readonly string[],
  what: string,
): Promise<CachedManifest> {
  const key = `${up.config.name}/${repo}@${digest}`;
  const m = await deps.manifests.getOrLoad(key, async () => {
    const maxBytes = expectedLength !== undefined ? Math.min(expectedLength, deps.config.limits.manifestBytes) : undefined;
    const fetched = await up.registry.fetchManifest(repo, digest, accept, maxBytes);
    if (!fetched) throw fail('MANIFEST_UNKNOWN', `manifest ${digest} (${what}) is not in the upstream ${up.config.name}`);
    // The registry is not trusted: its bytes must hash to the digest asked for (and, for a signed
    // tag, have the signed length) before anything is served or cached.
    const got = sha256Digest(fetched.bytes);
    if (got !== digest || (expectedLength !== undefined && fetched.bytes.length !== expectedLength)) {
      throw fail(
        'DIGEST_MISMATCH',
        `upstream ${up.config.name} served ${fetched.bytes.length} bytes hashing to ${got} for ${digest}` +
          (expectedLength !== undefined ? ` (signed length ${expectedLength})` : ''),
      );
    }
    return { bytes: fetched.bytes, mediaType: mediaTypeOf(fetched.bytes, fetched.mediaType), checkedAt: nowMs(deps) };
  });
  if (expectedLength !== undefined && m.bytes.length !== expectedLength) {
    throw fail('DIGEST_MISMATCH', `cached manifest ${digest} does not have the signed length ${expectedLength}`);
  }
  return m;
}

/** How long a manifest the upstream could not confirm is served before the upstream is asked again. */
const STALE_RETRY_MS = 10_000;

const nowMs = (deps: ServerDeps): number => deps.clock.nowMs?.() ?? deps.clock.now().getTime();

/**
 * A manifest served by digest is checked with a HEAD upstream once it is older than
 * cache.digestRevalidateSeconds: a 404 removes it from every tier (the operator deleted it upstream) and
 * answers MANIFEST_UNKNOWN; an upstream that cannot answer leaves it served, stale, as distribution's
 * proxy mode does (asked again after at most STALE_RETRY_MS). Returns whether the answer is stale.
 */
async function revalidate(deps: ServerDeps, up: UpstreamDeps, repo: string, digest: string, m: CachedManifest): Promise<boolean> {
  const windowMs = deps.config.cache.digestRevalidateSeconds * 1000;
  if (m.checkedAt !== undefined && nowMs(deps) - m.checkedAt < windowMs) return false;
  const key = `${up.config.name}/${repo}@${digest}`;
  // An upstream that does not answer is asked again after STALE_RETRY_MS, not on every pull: with it
  // down (or timing out) each pull would otherwise wait for its own failed HEAD.
  const retryLater = (): 'stale' => {
    m.checkedAt = nowMs(deps) - windowMs + Math.min(windowMs, STALE_RETRY_MS);
    return 'stale';
  };
  // Concurrent pulls of one manifest due for a check make one HEAD.
  const r = await deps.manifests.checkOnce(key, async (): Promise<'fresh' | 'stale' | 'gone'> => {
    let status: number;
    try {
      const res = await up.registry.send(`/v2/${repo}/manifests/${digest}`, { method: 'HEAD', repo, headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') }, signal: AbortSignal.timeout(deps.config.limits.upstreamTimeoutMs) });
      await res.body.dump().catch(() => {});
      status = res.statusCode;
    } catch (err) {
      deps.log.warn({ upstream: up.config.name, repo, digest, err: (err as Error).message }, 'upstream unreachable: cached manifest served stale');
      return retryLater();
    }
    if (status === 404) {
      await deps.manifests.delete(key);
      return 'gone';
    }
    if (status !== 200) {
      deps.log.warn({ upstream: up.config.name, repo, digest, status }, 'upstream could not confirm a cached manifest: served stale');
      return retryLater();
    }
    m.checkedAt = nowMs(deps);
    return 'fresh';
  });
  if (r === 'gone') throw fail('MANIFEST_UNKNOWN', `manifest ${repo}@${digest} is no longer in the upstream ${up.config.name} (removed from the cache)`);
  return r === 'stale';
}

/** The key of a tag's resolution upstream (registry/tag-resolutions.ts). */
export const tagKey = (up: UpstreamDeps, repo: string, tag: string): string => `${up.config.name}/${repo}:${tag}`;

/** The manifest a tag points at upstream now, with the digest of the bytes we actually got. */
export async function fetchByTag(up: UpstreamDeps, repo: string, tag: string, accept: readonly string[]): Promise<{ m: CachedManifest; digest: string }> {
  const fetched = await up.registry.fetchManifest(repo, tag, accept);
  if (!fetched) throw fail('MANIFEST_UNKNOWN', `manifest ${repo}:${tag} is not in the upstream ${up.config.name}`);
  return { m: { bytes: fetched.bytes, mediaType: mediaTypeOf(fetched.bytes, fetched.mediaType) }, digest: sha256Digest(fetched.bytes) };
}

/** The ports decide() works over for one request: the upstream's trust service and provers, and this handler's manifest loaders. */
export function decidePorts(deps: ServerDeps, up: UpstreamDeps, eff: EffectivePolicy, gun: string, repo: string, req: IncomingMessage): DecidePorts<CachedManifest, ResolvedTarget> {
  const trust = up.trust;
  const tags = tagResolutionsOf(deps, up);
  // The resolution each tag was decided on this request, for refreshTag.
  const used = new Map<string, Expiring<TagResolution>>();
  const fetch = (tag: string) => () => fetchByTag(up, repo, tag, acceptList(req));
  return {
    dct: trust && {
      // A cold tag: the manifest by digest is asked for the moment the trust update has verified, while
      // it still saves its floors; decide() serves nothing before resolve() answers, and then takes the
      // same fetch (single-flight by digest), checked against the signed digest and length as always.
      resolve: (tag) => trust.resolve(gun, tag, (t) => void verifiedManifest(deps, up, repo, t.digest, t.length, acceptList(req), `signed for ${tag} by ${t.role}`).catch(() => undefined)),
      signedTagForDigest: (digest) => trust.signedTagForDigest(gun, digest), label: dctLabel },
    // missingSource has run before any prove: every kind the requirement names has its verifier.
    prove: (kind, d) => up.signatures![kind]!.verify(up.registry, gun, repo, d),
    bySignedDigest: (digest, length, what) => verifiedManifest(deps, up, repo, digest, length, acceptList(req), what),
    byTag: async (tag) => {
      const e = await tags.resolve(tagKey(up, repo, tag), fetch(tag));
      used.set(tag, e);
      return e.value;
    },
    refreshTag: async (tag) => {
      const was = used.get(tag);
      if (!was) return undefined;
      const e = await tags.refresh(tagKey(up, repo, tag), `${up.config.name}/${repo}`, was, fetch(tag));
      if (e) used.set(tag, e);
      return e?.value;
    },
    keep: (digest, m) => deps.manifests.set(`${up.config.name}/${repo}@${digest}`, m),
    missingSource: (what) => missingSourceRefusal(up, eff, what),
  };
}

/** Render a Decision: its audit line (durationMs last, as every line has it), then the bytes or the refusal. */
function enforce(deps: ServerDeps, d: Decision<CachedManifest>, t0: number, req: IncomingMessage, res: ServerResponse): void {
  audit(deps, { ...d.audit, durationMs: Math.round((performance.now() - t0) * 10) / 10 });
  if (d.outcome === 'refuse') throw d.error;
  noteServedIndex(deps, d); // the children of an index served allow, for their pulls by digest
  writeManifest(req, res, d.manifest, d.digest, d.verifiedBy);
}

async function handleDigest(deps: ServerDeps, up: UpstreamDeps, repo: string, digest: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const eff = effectivePolicy(up.config, repo);
  const gun = `${up.config.gun}/${repo}`;
  const t0 = performance.now();
  const load = async () => {
    const m = await verifiedManifest(deps, up, repo, digest, undefined, acceptList(req), 'pulled by digest');
    return { m, stale: await revalidate(deps, up, repo, digest, m) };
  };
  const ports = decidePorts(deps, up, eff, gun, repo, req);
  // A platform manifest of a covered multi-arch index is covered by it (index-parents.ts).
  const coveredBy = coveredByParents(deps, up, eff, gun, repo, digest, ports, (d, length, what) => verifiedManifest(deps, up, repo, d, length, acceptList(req), what));
  const d = await decideDigest({ upstream: up.config.name, gun, repo, tag: digest, digest, load, coveredBy }, eff, ports);
  enforce(deps, d, t0, req, res);
}

export async function handleManifest(route: ManifestRoute, req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  const up = deps.upstreams.get(route.upstream.name)!;
  const { repo, ref } = route;
  if (ref.digest !== undefined) return handleDigest(deps, up, repo, ref.digest, req, res);
  const gun = `${up.config.gun}/${repo}`;
  const eff = effectivePolicy(up.config, repo);
  const t0 = performance.now();
  const d = await decideTag({ upstream: up.config.name, gun, repo, tag: ref.tag }, eff, decidePorts(deps, up, eff, gun, repo, req));
  enforce(deps, d, t0, req, res);
}
