// HEAD|GET /v2/<name>/manifests/<reference>. A tag is resolved through trust to its signed digest and
// the manifest is fetched BY THAT DIGEST, checked against the signed sha256 and length, then served
// with Docker-Content-Digest = the signed digest. A digest reference is served content-addressed.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CODES, fail, isTrustgateError, TrustgateError, type ErrorCode } from '../../errors.js';
import { audit, type AuditDecision } from '../../observe/logger.js';
import { effectivePolicy, type EffectivePolicy } from '../../policy/effective.js';
import type { SignedTarget } from '../../trust/resolve-tag.js';
import { dctLabel, type ResolvedTarget } from '../../trust/trust-service.js';
import { MANIFEST_MEDIA_TYPES } from '../../registry/registry-client.js';
import type { CachedManifest } from '../../store/manifest-cache.js';
import { missingSourceRefusal, type SignatureProof, type ServerDeps, type UpstreamDeps } from '../deps.js';
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

/** A refusal that is not a trust decision's: the upstream has no such manifest. */
const decisionOf = (err: TrustgateError): AuditDecision => (err.code === 'MANIFEST_UNKNOWN' ? 'not-found' : 'deny');

/**
 * What a client is told: what it asked for and the rule it broke, nothing more. The refusal's own
 * message (the upstream's digest for the tag, trust-server addresses, file paths, verifier detail) goes
 * to the audit line's `reason` and stays the cause.
 */
function refusalFor(code: ErrorCode, asked: string, cause: unknown, rules?: readonly TrustgateError[]): TrustgateError {
  const said = [...new Set((rules ?? []).map((r) => CODES[r.code].summary))];
  const rule = said.length > 0 ? said.join('; ') : CODES[code].summary;
  return new TrustgateError(code, `${asked}: ${rule}`, { cause });
}

/** The manifest a tag points at upstream now, with the digest of the bytes we actually got. */
async function fetchByTag(up: UpstreamDeps, repo: string, tag: string, req: IncomingMessage): Promise<{ m: CachedManifest; digest: string }> {
  const fetched = await up.registry.fetchManifest(repo, tag, acceptList(req));
  if (!fetched) throw fail('MANIFEST_UNKNOWN', `manifest ${repo}:${tag} is not in the upstream ${up.config.name}`);
  return { m: { bytes: fetched.bytes, mediaType: mediaTypeOf(fetched.bytes, fetched.mediaType) }, digest: sha256Digest(fetched.bytes) };
}

const UNAVAILABLE: ReadonlySet<string> = new Set(['NOTARY_UNAVAILABLE', 'TIMEOUT', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT']);

function loggedFields(proofs: readonly SignatureProof[]): Record<string, readonly string[]> {
  const out: Record<string, readonly string[]> = {};
  for (const p of proofs) if (p.logged && p.logged.length > 0) out[`${p.kind}Logged`] = p.logged;
  return out;
}

/** Refusals are collected per kind (they decide deny, audit-allow or the next `any-of` kind). */
class Refusals {
  readonly list: TrustgateError[] = [];
  /** Only TrustgateErrors are refusals; anything else is a bug and propagates. */
  readonly catch = (err: unknown): undefined => {
    if (!isTrustgateError(err)) throw err;
    this.list.push(err);
    return undefined;
  };
  get last(): TrustgateError {
    return this.list[this.list.length - 1] ?? new TrustgateError('TAG_NOT_SIGNED', 'no signature requirement was met');
  }
  get reason(): string {
    return this.list.map((r) => `${r.code}: ${r.message}`).join(' | ');
  }
}

interface Satisfied {
  served: { m: CachedManifest; digest: string };
  dct?: ResolvedTarget | undefined;
  proofs: SignatureProof[];
}

/**
 * Check one manifest digest against the digest-signing kinds (notation, cosign) of the requirement.
 * `any-of`: the first kind whose verifier accepts; `all-of`: every kind. Refusals go to `refusals`.
 */
async function proveDigest(up: UpstreamDeps, gun: string, repo: string, kinds: readonly ('notation' | 'cosign')[], mode: 'any-of' | 'all-of', m: { digest: string; size: number; mediaType: string }, refusals: Refusals): Promise<SignatureProof[] | undefined> {
  const proofs: SignatureProof[] = [];
  for (const kind of kinds) {
    // missingSourceRefusal has run: every kind the requirement names has its verifier.
    const proof = await up.signatures![kind]!.verify(up.registry, gun, repo, m).catch(refusals.catch);
    if (proof) {
      proofs.push(proof);
      if (mode === 'any-of') return proofs;
    } else if (mode === 'all-of') return undefined;
  }
  return mode === 'all-of' && proofs.length === kinds.length ? proofs : undefined;
}

/** Resolve a tag under the effective requirement: the bytes to serve and what proved them, or undefined. */
async function satisfyTag(deps: ServerDeps, up: UpstreamDeps, eff: EffectivePolicy, gun: string, repo: string, tag: string, req: IncomingMessage, refusals: Refusals, seen: { dct?: SignedTarget }): Promise<Satisfied | undefined> {
  const { mode, of } = eff.require;
  const digestKinds = of.filter((k): k is 'notation' | 'cosign' => k !== 'dct');
  const resolveDct = async () => {
    const dct = await up.trust!.resolve(gun, tag).catch(refusals.catch);
    if (dct) seen.dct = dct;
    return dct;
  };
  const dctServed = async (dct: ResolvedTarget) => ({
    m: await verifiedManifest(deps, up, repo, dct.digest, dct.length, req, `signed for ${tag} by ${dct.role}`),
    digest: dct.digest,
  });
  // Notation and cosign sign digests, not tags: take the digest the upstream's tag points at now, and
  // serve exactly those bytes only if a signature of that digest satisfies the policy.
  let byTag: { m: CachedManifest; digest: string } | undefined;
  const tagDigest = async () => (byTag ??= await fetchByTag(up, repo, tag, req));
  const proofOf = async (served: { m: CachedManifest; digest: string }, kinds: readonly ('notation' | 'cosign')[], how: 'any-of' | 'all-of') =>
    proveDigest(up, gun, repo, kinds, how, { digest: served.digest, size: served.m.bytes.length, mediaType: served.m.mediaType }, refusals);

  if (mode === 'any-of') {
    if (of.includes('dct')) {
      const dct = await resolveDct();
      if (dct) return { served: await dctServed(dct), dct, proofs: [] };
    }
    if (digestKinds.length === 0) return undefined;
    const served = await tagDigest();
    const proofs = await proofOf(served, digestKinds, 'any-of');
    if (!proofs) return undefined;
    deps.manifests.set(`${up.config.name}/${repo}@${served.digest}`, served.m);
    return { served, proofs };
  }
  // all-of: every kind over the same digest; with dct in the list the digest is the signed one.
  let dct: ResolvedTarget | undefined;
  let served: { m: CachedManifest; digest: string };
  if (of.includes('dct')) {
    dct = await resolveDct();
    if (!dct) return undefined;
    served = await dctServed(dct);
  } else served = await tagDigest();
  const proofs = digestKinds.length === 0 ? [] : await proofOf(served, digestKinds, 'all-of');
  if (!proofs) return undefined;
  if (!dct) deps.manifests.set(`${up.config.name}/${repo}@${served.digest}`, served.m);
  return { served, dct, proofs };
}

/**
 * `digestPulls: signed`: a digest is served only when a signed tag maps to it now (dct) or a signature
 * of it satisfies the policy (notation, cosign), as the requirement's mode combines them.
 */
async function satisfyDigest(deps: ServerDeps, up: UpstreamDeps, eff: EffectivePolicy, gun: string, repo: string, m: CachedManifest, digest: string, refusals: Refusals): Promise<string | undefined> {
  const { mode, of } = eff.require;
  const by: string[] = [];
  for (const kind of of) {
    let ok: string | undefined;
    if (kind === 'dct') {
      const before = refusals.list.length;
      const t = await up.trust!.signedTagForDigest(gun, digest).catch(refusals.catch);
      if (t) ok = `dct ${t.role} tag ${t.tag}`;
      else if (refusals.list.length === before) refusals.catch(fail('DIGEST_NOT_SIGNED', `no tag signed in targets/releases or targets of ${gun} maps to ${digest}`));
    } else {
      const proofs = await proveDigest(up, gun, repo, [kind], 'any-of', { digest, size: m.bytes.length, mediaType: m.mediaType }, refusals);
      ok = proofs?.[0]?.by;
    }
    if (ok) {
      by.push(ok);
      if (mode === 'any-of') return ok;
    } else if (mode === 'all-of') return undefined;
  }
  return mode === 'all-of' && by.length === of.length ? by.join(' + ') : undefined;
}

async function handleDigest(deps: ServerDeps, up: UpstreamDeps, repo: string, digest: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const eff = effectivePolicy(up.config, repo);
  const gun = `${up.config.gun}/${repo}`;
  const t0 = performance.now();
  const base = { upstream: up.config.name, gun, repo, ref: digest, digest, policy: eff.policy, require: eff.require.label, digestPulls: eff.digestPulls };
  const ms = () => Math.round((performance.now() - t0) * 10) / 10;
  const asked = `${repo}@${digest}`;
  /** The one audit line of a refusal that came as an error, and the error the client is told. */
  const refused = (err: unknown): unknown => {
    if (!isTrustgateError(err)) return err;
    audit(deps, { ...base, decision: decisionOf(err), code: err.code, reason: err.message, durationMs: ms() });
    return refusalFor(err.code, asked, err);
  };
  const load = async () => {
    const m = await verifiedManifest(deps, up, repo, digest, undefined, req, 'pulled by digest');
    return { m, stale: await revalidate(deps, up, repo, digest, m) };
  };
  if (eff.digestPulls === 'allow' || eff.policy === 'off') {
    // Content-addressed: Docker Content Trust lets digest pulls through; the bytes are still checked,
    // and the pull is audited like any other manifest served (`pass` where the policy is off).
    let got: { m: CachedManifest; stale: boolean };
    try {
      got = await load();
    } catch (err) {
      throw refused(err);
    }
    audit(deps, { ...base, decision: eff.policy === 'off' ? 'pass' : 'allow-digest', ...(got.stale ? { stale: true } : {}), durationMs: ms() });
    writeManifest(req, res, got.m, digest);
    return;
  }
  const missing = missingSourceRefusal(up, eff, asked);
  if (missing) throw refused(missing);
  const refusals = new Refusals();
  let by: string | undefined;
  let got: { m: CachedManifest; stale: boolean };
  try {
    got = await load();
    by = await satisfyDigest(deps, up, eff, gun, repo, got.m, digest, refusals);
  } catch (err) {
    throw refused(err);
  }
  const stale = got.stale ? { stale: true } : {};
  if (!by) {
    // A digest nothing covers is DIGEST_NOT_SIGNED whatever each kind said; only when every kind failed
    // for want of a reachable server does the availability code stand (503, retry later).
    const unavailable = refusals.list.length > 0 && refusals.list.every((r) => UNAVAILABLE.has(r.code));
    const code = unavailable ? refusals.last.code : 'DIGEST_NOT_SIGNED';
    if (eff.policy === 'audit') {
      audit(deps, { ...base, decision: 'audit-allow', code, reason: refusals.reason, ...stale, durationMs: ms() });
      writeManifest(req, res, got.m, digest);
      return;
    }
    audit(deps, { ...base, decision: 'deny', code, reason: refusals.reason, durationMs: ms() });
    throw refusalFor(code, `digest ${asked} is not covered by a signature (digestPulls: signed, require ${eff.require.label})`, refusals.last, refusals.list);
  }
  audit(deps, { ...base, decision: 'allow', satisfiedBy: by, ...stale, durationMs: ms() });
  writeManifest(req, res, got.m, digest, by);
}

export async function handleManifest(route: ManifestRoute, req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  const up = deps.upstreams.get(route.upstream.name)!;
  const { repo, ref } = route;
  if (ref.digest !== undefined) return handleDigest(deps, up, repo, ref.digest, req, res);
  const tag = ref.tag;
  const gun = `${up.config.gun}/${repo}`;
  const eff = effectivePolicy(up.config, repo);
  const t0 = performance.now();
  const base = { upstream: up.config.name, gun, repo, ref: tag, policy: eff.policy, require: eff.require.label };
  const ms = () => Math.round((performance.now() - t0) * 10) / 10;
  const asked = `${repo}:${tag}`;
  // Audit lines are written once the outcome is known and before the client has its answer: a tag the
  // upstream does not have is `not-found`, whatever the policy would have said about it.
  const refused = (err: unknown, known?: { digest?: string | undefined; role?: string | undefined }): unknown => {
    if (!isTrustgateError(err)) return err;
    audit(deps, { ...base, digest: known?.digest, role: known?.role, decision: decisionOf(err), code: err.code, reason: err.message, durationMs: ms() });
    return refusalFor(err.code, asked, err);
  };

  if (eff.policy === 'off') {
    // `pass` is written only here: the effective policy verifies nothing.
    let got: { m: CachedManifest; digest: string };
    try {
      got = await fetchByTag(up, repo, tag, req);
    } catch (err) {
      throw refused(err);
    }
    audit(deps, { ...base, digest: got.digest, decision: 'pass', durationMs: ms() });
    writeManifest(req, res, got.m, got.digest);
    return;
  }
  const missing = missingSourceRefusal(up, eff, asked);
  // A refusal under audit too, never a pass.
  if (missing) throw refused(missing);
  // Trust refusals are collected (they decide deny vs audit-allow); errors serving the manifest
  // (MANIFEST_UNKNOWN, DIGEST_MISMATCH, upstream trouble) propagate as they are, audited.
  const refusals = new Refusals();
  const seen: { dct?: SignedTarget } = {};
  let ok: Satisfied | undefined;
  try {
    ok = await satisfyTag(deps, up, eff, gun, repo, tag, req, refusals, seen);
  } catch (err) {
    throw refused(err, { digest: seen.dct?.digest, role: seen.dct?.role });
  }
  if (!ok) {
    const last = refusals.last;
    if (eff.policy === 'audit') {
      // Served although refused: the line says what was served (its digest), or that nothing was.
      let got: { m: CachedManifest; digest: string };
      try {
        got = await fetchByTag(up, repo, tag, req);
      } catch (err) {
        throw refused(err);
      }
      audit(deps, { ...base, digest: got.digest, decision: 'audit-allow', code: last.code, reason: refusals.reason, durationMs: ms() });
      writeManifest(req, res, got.m, got.digest);
      return;
    }
    audit(deps, { ...base, decision: 'deny', code: last.code, reason: refusals.reason, durationMs: ms() });
    throw refusalFor(last.code, `no valid trust data for ${asked} (require ${eff.require.label})`, last, refusals.list);
  }
  const { served, dct, proofs } = ok;
  const by = [dct ? dctLabel(dct) : undefined, ...proofs.map((p) => p.by)].filter(Boolean).join(' + ');
  audit(deps, { ...base, digest: served.digest, role: dct?.role, decision: 'allow', satisfiedBy: by, ...loggedFields(proofs), ...(dct?.stale ? { stale: true } : {}), ...(dct?.frozen ? { frozen: dct.frozen } : {}), durationMs: ms() });
  writeManifest(req, res, served.m, served.digest, by);
}
