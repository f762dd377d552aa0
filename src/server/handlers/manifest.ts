// HEAD|GET /v2/<name>/manifests/<reference>. A tag is resolved through trust to its signed digest and
// the manifest is fetched BY THAT DIGEST, checked against the signed sha256 and length, then served
// with Docker-Content-Digest = the signed digest. A digest reference is served content-addressed.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fail, isTrustgateError, TrustgateError } from '../../errors.js';
import { audit } from '../../observe/logger.js';
import type { NotationResult } from '../../notation/notation-verifier.js';
import { policyFor, requireFor } from '../../policy/policy.js';
import type { SignedTarget } from '../../trust/resolve-tag.js';
import { MANIFEST_MEDIA_TYPES } from '../../registry/registry-client.js';
import type { CachedManifest } from '../../store/manifest-cache.js';
import type { ServerDeps, UpstreamDeps } from '../deps.js';
import type { Route } from '../route.js';

type ManifestRoute = Extract<Route, { kind: 'manifest' }>;

function acceptList(req: IncomingMessage): string[] {
  const fromClient = (req.headers.accept ?? '')
    .split(',')
    .map((s) => s.split(';')[0]!.trim())
    .filter((s) => s.length > 0 && s !== '*/*');
  // Ask for everything a client might want; the signed digest decides what is served, not Accept.
  return [...new Set([...fromClient, ...MANIFEST_MEDIA_TYPES])];
}

function mediaTypeOf(bytes: Buffer, header: string | undefined): string {
  if (header && header !== 'application/octet-stream' && header !== 'text/plain') return header;
  try {
    const mt = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof mt === 'string') return mt;
  } catch {
    /* not JSON: fall through */
  }
  return header ?? 'application/vnd.docker.distribution.manifest.v2+json';
}

function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function writeManifest(req: IncomingMessage, res: ServerResponse, m: CachedManifest, digest: string, verifiedBy?: string): void {
  // The headers of a cached manifest are the same on every warm request: built once and kept with it
  // (the object was rebuilt, etag string included, per response; README profile of the tag path).
  const key = verifiedBy === undefined ? digest : `${digest} ${verifiedBy}`;
  let h = m.headers;
  if (h?.key !== key) {
    h = {
      key,
      value: {
        'content-type': m.mediaType,
        'content-length': m.bytes.length,
        'docker-content-digest': digest,
        etag: `"${digest}"`,
        'docker-distribution-api-version': 'registry/2.0',
        // Which signature satisfied the policy, for people and tooling (the audit line says the same).
        ...(verifiedBy ? { 'x-trustgate-verified-by': verifiedBy } : {}),
      },
    };
    m.headers = h;
  }
  res.writeHead(200, h.value);
  res.end(req.method === 'HEAD' ? undefined : m.bytes);
}

/** Fetch (or reuse) the manifest by digest and prove it is the one asked for. */
async function verifiedManifest(
  deps: ServerDeps,
  up: UpstreamDeps,
  repo: string,
  digest: string,
  expectedLength: number | undefined,
  req: IncomingMessage,
  what: string,
): Promise<CachedManifest> {
  const key = `${up.config.name}/${repo}@${digest}`;
  const m = await deps.manifests.getOrLoad(key, async () => {
    const maxBytes = expectedLength !== undefined ? Math.min(expectedLength, deps.config.limits.manifestBytes) : undefined;
    const fetched = await up.registry.fetchManifest(repo, digest, acceptList(req), maxBytes);
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
    return { bytes: fetched.bytes, mediaType: mediaTypeOf(fetched.bytes, fetched.mediaType) };
  });
  if (expectedLength !== undefined && m.bytes.length !== expectedLength) {
    throw fail('DIGEST_MISMATCH', `cached manifest ${digest} does not have the signed length ${expectedLength}`);
  }
  return m;
}

/** The manifest a tag points at upstream now, with the digest of the bytes we actually got. */
async function fetchByTag(up: UpstreamDeps, repo: string, tag: string, req: IncomingMessage): Promise<{ m: CachedManifest; digest: string }> {
  const fetched = await up.registry.fetchManifest(repo, tag, acceptList(req));
  if (!fetched) throw fail('MANIFEST_UNKNOWN', `manifest ${repo}:${tag} is not in the upstream ${up.config.name}`);
  return { m: { bytes: fetched.bytes, mediaType: mediaTypeOf(fetched.bytes, fetched.mediaType) }, digest: sha256Digest(fetched.bytes) };
}

/** Policy off, or audit after a refusal: serve the upstream's tag, still checked against its own digest. */
async function passThroughTag(_deps: ServerDeps, up: UpstreamDeps, repo: string, tag: string, req: IncomingMessage, res: ServerResponse): Promise<string> {
  const { m, digest } = await fetchByTag(up, repo, tag, req);
  writeManifest(req, res, m, digest);
  return digest;
}

export async function handleManifest(route: ManifestRoute, req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  const up = deps.upstreams.get(route.upstream.name)!;
  const { repo, ref } = route;
  if (ref.digest !== undefined) {
    // Content-addressed: Docker Content Trust lets digest pulls through; the bytes are still checked.
    writeManifest(req, res, await verifiedManifest(deps, up, repo, ref.digest, undefined, req, 'pulled by digest'), ref.digest);
    return;
  }
  const tag = ref.tag;
  const gun = `${up.config.gun}/${repo}`;
  const policy = policyFor(up.config, repo);
  const t0 = performance.now();
  const base = { upstream: up.config.name, gun, repo, ref: tag, policy };
  const ms = () => Math.round((performance.now() - t0) * 10) / 10;

  if (policy === 'off' || (!up.trust && !up.notation)) {
    // Audit before answering: once the client has its response, the line must already be written.
    const { m, digest } = await fetchByTag(up, repo, tag, req);
    audit(deps, { ...base, digest, decision: 'pass', durationMs: ms() });
    writeManifest(req, res, m, digest);
    return;
  }
  const need = requireFor(up.config, repo);
  // Trust refusals are collected (they decide deny vs audit-allow); errors serving the manifest
  // (MANIFEST_UNKNOWN, DIGEST_MISMATCH, upstream trouble) propagate as they are.
  const refusals: TrustgateError[] = [];
  const refused = (err: unknown) => {
    if (!isTrustgateError(err)) throw err;
    refusals.push(err);
    return undefined;
  };
  let dct: (SignedTarget & { stale: boolean }) | undefined;
  let notation: NotationResult | undefined;
  let served: { m: CachedManifest; digest: string } | undefined;
  try {
    if (need !== 'notation') dct = await up.trust!.resolve(gun, tag).catch(refused);
    if (dct) {
      served = { m: await verifiedManifest(deps, up, repo, dct.digest, dct.length, req, `signed for ${tag} by ${dct.role}`), digest: dct.digest };
      if (need === 'all-of') {
        notation = await up.notation!.verify(up.registry, gun, repo, { digest: dct.digest, size: served.m.bytes.length }).catch(refused);
        if (!notation) served = undefined;
      }
    } else if (need === 'notation' || need === 'any-of') {
      // Notation signs digests, not tags: take the digest the upstream's tag points at now, and serve
      // exactly those bytes only if a signature of that digest satisfies the trust policy.
      const byTag = await fetchByTag(up, repo, tag, req);
      notation = await up.notation!.verify(up.registry, gun, repo, { digest: byTag.digest, size: byTag.m.bytes.length }).catch(refused);
      if (notation) {
        deps.manifests.set(`${up.config.name}/${repo}@${byTag.digest}`, byTag.m);
        served = byTag;
      }
    }
  } catch (err) {
    if (isTrustgateError(err)) {
      audit(deps, { ...base, digest: dct?.digest, role: dct?.role, decision: 'deny', code: err.code, reason: err.message, durationMs: ms() });
    }
    throw err;
  }
  if (!served) {
    const last = refusals[refusals.length - 1] ?? new TrustgateError('TAG_NOT_SIGNED', 'no signature requirement was met');
    const reason = refusals.map((r) => `${r.code}: ${r.message}`).join(' | ');
    if (policy === 'audit') {
      audit(deps, { ...base, decision: 'audit-allow', code: last.code, reason, durationMs: ms() });
      await passThroughTag(deps, up, repo, tag, req, res);
      return;
    }
    audit(deps, { ...base, decision: 'deny', code: last.code, reason, durationMs: ms() });
    throw new TrustgateError(last.code, `no valid trust data for ${repo}:${tag} (require ${need}): ${refusals.map((r) => r.message).join(' | ')}`, { cause: last });
  }
  const by = [dct ? `dct ${dct.role}` : undefined, notation ? `notation ${notation.signature ?? '(skip policy)'} policy ${notation.policy}` : undefined].filter(Boolean).join(' + ');
  audit(deps, { ...base, digest: served.digest, role: dct?.role, decision: 'allow', satisfiedBy: by, ...(dct?.stale ? { stale: true } : {}), durationMs: ms() });
  writeManifest(req, res, served.m, served.digest, by);
}
