// The one decision (DESIGN.md "One decision"): manifest by tag, manifest by digest and tags/list are
// decided here, over the signature port, and the handlers only turn a Decision into HTTP (the policy
// decision point / enforcement point split of OPA and Envoy's ext_authz; STYLE.md "Anchors for one
// decision"). Nothing here does I/O itself: the ports (signatures/port.ts) and the manifest loaders
// passed in do, so the warm path, tags/list and the full path cannot disagree about what is allowed.
import { CODES, fail, isTrustgateError, TrustgateError, type ErrorCode } from '../errors.js';
import type { AuditDecision, AuditRecord } from '../observe/logger.js';
import type { Descriptor, SignatureProof, TagMapping } from '../signatures/port.js';
import type { EffectivePolicy } from './effective.js';
import type { DigestKind } from './vocabulary.js';

/** A manifest as the decision sees it: its bytes and media type (what is served). */
export interface DecidedManifest {
  bytes: Buffer;
  mediaType: string;
}

/** A DCT mapping as the trust service hands it out (stale: served from cache with notary down; frozen: notary.frozenAt). */
export type DctTarget = TagMapping & { tag?: string; stale?: boolean; frozen?: string | undefined };

/** What decide needs from the world, per request. Refusals are thrown TrustgateErrors; anything else is a bug. */
export interface DecidePorts<M extends DecidedManifest, T extends DctTarget = DctTarget> {
  /** DCT (tag → signed digest + length); absent when the upstream has no notary server or bundle. */
  dct?: {
    resolve(tag: string): Promise<T>;
    signedTagForDigest(digest: string): Promise<{ tag: string; role: string } | undefined>;
    label(t: T): string;
  } | undefined;
  /** Prove a descriptor for a digest-signing kind the requirement names (present where configured). */
  prove(kind: DigestKind, d: Descriptor): Promise<SignatureProof>;
  /** The manifest a signed digest names, checked against its digest and signed length. */
  bySignedDigest(digest: string, length: number, what: string): Promise<M>;
  /** The manifest the upstream's tag points at now, with the digest of the bytes got (a resolution reused for cache.tagTtlSeconds). */
  byTag(tag: string): Promise<{ m: M; digest: string }>;
  /**
   * A refusal rested on a reused resolution: ask the upstream again (at most once a second per
   * repository) and give the new one when the tag names another digest now, else undefined.
   */
  refreshTag?(tag: string): Promise<{ m: M; digest: string } | undefined>;
  /** Keep a manifest proven by a digest signature, for pulls by digest. */
  keep(digest: string, m: M): void;
  /** The request-time guard of missing trust sources (server/deps.ts missingSourceRefusal). */
  missingSource(what: string): TrustgateError | undefined;
}

/** The audit record a decision writes, without its duration (the handler adds it last, as it always did). */
export type DecisionAudit = Omit<AuditRecord, 'durationMs'>;

/**
 * The answer: serve these bytes (allow, audit-allow, allow-digest, pass), or refuse with this error
 * (what the client is told: what it asked for and the rule it broke). Either way one audit record.
 */
export type Decision<M extends DecidedManifest> =
  | { outcome: 'serve'; audit: DecisionAudit; manifest: M; digest: string; verifiedBy?: string | undefined; proofs: readonly SignatureProof[]; dct?: DctTarget | undefined }
  | { outcome: 'refuse'; audit: DecisionAudit; error: TrustgateError };

/** A refusal that is not a trust decision's: the upstream has no such manifest. */
const decisionOf = (err: TrustgateError): AuditDecision => (err.code === 'MANIFEST_UNKNOWN' ? 'not-found' : 'deny');

/**
 * What a client is told: what it asked for and the rule it broke, nothing more. The refusal's own
 * message (the upstream's digest for the tag, trust-server addresses, file paths, verifier detail) goes
 * to the audit line's `reason` and stays the cause.
 */
export function refusalFor(code: ErrorCode, asked: string, cause: unknown, rules?: readonly TrustgateError[]): TrustgateError {
  const said = [...new Set((rules ?? []).map((r) => CODES[r.code].summary))];
  const rule = said.length > 0 ? said.join('; ') : CODES[code].summary;
  return new TrustgateError(code, `${asked}: ${rule}`, { cause });
}

const UNAVAILABLE: ReadonlySet<string> = new Set(['NOTARY_UNAVAILABLE', 'TIMEOUT', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT']);

function loggedFields(proofs: readonly SignatureProof[]): Record<string, readonly string[]> {
  const out: Record<string, readonly string[]> = {};
  for (const p of proofs) if (p.logged && p.logged.length > 0) out[`${p.kind}Logged`] = p.logged;
  return out;
}

/** Refusals are collected per kind (they decide deny, audit-allow or the next `any-of` kind). */
export class Refusals {
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

/**
 * Check one descriptor against the digest-signing kinds (notation, cosign) of the requirement.
 * `any-of`: the first kind whose prover accepts; `all-of`: every kind. Refusals go to `refusals`.
 */
export async function proveDigest(ports: Pick<DecidePorts<DecidedManifest>, 'prove'>, kinds: readonly DigestKind[], mode: 'any-of' | 'all-of', d: Descriptor, refusals: Refusals): Promise<SignatureProof[] | undefined> {
  const proofs: SignatureProof[] = [];
  for (const kind of kinds) {
    const proof = await ports.prove(kind, d).catch(refusals.catch);
    if (proof) {
      proofs.push(proof);
      if (mode === 'any-of') return proofs;
    } else if (mode === 'all-of') return undefined;
  }
  return mode === 'all-of' && proofs.length === kinds.length ? proofs : undefined;
}

interface Satisfied<M, T> {
  served: { m: M; digest: string };
  dct?: T | undefined;
  proofs: SignatureProof[];
}

const descriptorOf = (served: { m: DecidedManifest; digest: string }): Descriptor => ({ digest: served.digest, size: served.m.bytes.length, mediaType: served.m.mediaType });

/** Resolve a tag under the effective requirement: the bytes to serve and what proved them, or undefined. */
async function satisfyTag<M extends DecidedManifest, T extends DctTarget>(ports: DecidePorts<M, T>, eff: EffectivePolicy, tag: string, refusals: Refusals, seen: { dct?: T }): Promise<Satisfied<M, T> | undefined> {
  const { mode, of } = eff.require;
  const digestKinds = of.filter((k): k is DigestKind => k !== 'dct');
  const resolveDct = async () => {
    // missingSource has run: every kind the requirement names has its port.
    const dct = await ports.dct!.resolve(tag).catch(refusals.catch);
    if (dct) seen.dct = dct;
    return dct;
  };
  const dctServed = async (dct: T) => ({ m: await ports.bySignedDigest(dct.digest, dct.length, `signed for ${tag} by ${dct.role}`), digest: dct.digest });
  // Notation and cosign sign digests, not tags: take the digest the upstream's tag points at now, and
  // serve exactly those bytes only if a signature of that digest satisfies the policy.
  let byTag: { m: M; digest: string } | undefined;
  const tagDigest = async () => (byTag ??= await ports.byTag(tag));

  if (mode === 'any-of') {
    if (of.includes('dct')) {
      const dct = await resolveDct();
      if (dct) return { served: await dctServed(dct), dct, proofs: [] };
    }
    if (digestKinds.length === 0) return undefined;
    const got = await proveServed(ports, tag, await tagDigest(), (d) => proveDigest(ports, digestKinds, 'any-of', d, refusals));
    if (!got) return undefined;
    ports.keep(got.served.digest, got.served.m);
    return got;
  }
  // all-of: every kind over the same digest; with dct in the list the digest is the signed one.
  if (of.includes('dct')) {
    const dct = await resolveDct();
    if (!dct) return undefined;
    const served = await dctServed(dct);
    const proofs = digestKinds.length === 0 ? [] : await proveDigest(ports, digestKinds, 'all-of', descriptorOf(served), refusals);
    return proofs ? { served, dct, proofs } : undefined;
  }
  const got = await proveServed(ports, tag, await tagDigest(), (d) => proveDigest(ports, digestKinds, 'all-of', d, refusals));
  if (!got) return undefined;
  ports.keep(got.served.digest, got.served.m);
  return got;
}

/**
 * Prove what a tag names upstream; when that fails, the tag may have moved since the resolution was
 * made (signed and pushed a moment ago): ask again once and prove the new digest (issue 25, freshness).
 */
async function proveServed<M extends DecidedManifest>(ports: Pick<DecidePorts<M>, 'refreshTag'>, tag: string, served: { m: M; digest: string }, prove: (d: Descriptor) => Promise<SignatureProof[] | undefined>): Promise<{ served: { m: M; digest: string }; proofs: SignatureProof[] } | undefined> {
  const proofs = await prove(descriptorOf(served));
  if (proofs) return { served, proofs };
  const again = await ports.refreshTag?.(tag);
  if (!again) return undefined;
  const more = await prove(descriptorOf(again));
  return more ? { served: again, proofs: more } : undefined;
}

/** The fields every audit line of a manifest by tag starts with, in this order (warm-tag.ts writes the same). */
export interface TagQuery {
  upstream: string;
  gun: string;
  repo: string;
  tag: string;
}

/** HEAD|GET of a manifest by tag. */
export async function decideTag<M extends DecidedManifest, T extends DctTarget>(q: TagQuery, eff: EffectivePolicy, ports: DecidePorts<M, T>): Promise<Decision<M>> {
  const { tag } = q;
  const base = tagBase(q, eff);
  const asked = `${q.repo}:${tag}`;
  // Audit lines are written once the outcome is known and before the client has its answer: a tag the
  // upstream does not have is `not-found`, whatever the policy would have said about it.
  const refused = (err: unknown, known?: { digest?: string | undefined; role?: string | undefined }): Decision<M> => {
    if (!isTrustgateError(err)) throw err;
    return { outcome: 'refuse', audit: { ...base, digest: known?.digest, role: known?.role, decision: decisionOf(err), code: err.code, reason: err.message }, error: refusalFor(err.code, asked, err) };
  };

  if (eff.policy === 'off') {
    // `pass` is written only here: the effective policy verifies nothing.
    let got: { m: M; digest: string };
    try {
      got = await ports.byTag(tag);
    } catch (err) {
      return refused(err);
    }
    return { outcome: 'serve', audit: { ...base, digest: got.digest, decision: 'pass' }, manifest: got.m, digest: got.digest, proofs: [] };
  }
  const missing = ports.missingSource(asked);
  // A refusal under audit too, never a pass.
  if (missing) return refused(missing);
  // Trust refusals are collected (they decide deny vs audit-allow); errors serving the manifest
  // (MANIFEST_UNKNOWN, DIGEST_MISMATCH, upstream trouble) are refusals as they are, audited.
  const refusals = new Refusals();
  const seen: { dct?: T } = {};
  let ok: Satisfied<M, T> | undefined;
  try {
    ok = await satisfyTag(ports, eff, tag, refusals, seen);
  } catch (err) {
    return refused(err, { digest: seen.dct?.digest, role: seen.dct?.role });
  }
  if (!ok) {
    const last = refusals.last;
    if (eff.policy === 'audit') {
      // Served although refused: the line says what was served (its digest), or that nothing was.
      let got: { m: M; digest: string };
      try {
        got = await ports.byTag(tag);
      } catch (err) {
        return refused(err);
      }
      return { outcome: 'serve', audit: { ...base, digest: got.digest, decision: 'audit-allow', code: last.code, reason: refusals.reason }, manifest: got.m, digest: got.digest, proofs: [] };
    }
    return {
      outcome: 'refuse',
      audit: { ...base, decision: 'deny', code: last.code, reason: refusals.reason },
      error: refusalFor(last.code, `no valid trust data for ${asked} (require ${eff.require.label})`, last, refusals.list),
    };
  }
  return allowTag(base, ok.served, ok.dct, ok.proofs, ports.dct?.label);
}

/** The fields every audit line of a manifest by tag starts with, in their order. */
const tagBase = (q: TagQuery, eff: EffectivePolicy) => ({ upstream: q.upstream, gun: q.gun, repo: q.repo, ref: q.tag, policy: eff.policy, require: eff.require.label });

/** The allow decision of a tag (the full path and the replay build it here, so their lines are the same bytes). */
function allowTag<M extends DecidedManifest, T extends DctTarget>(base: ReturnType<typeof tagBase>, served: { m: M; digest: string }, dct: T | undefined, proofs: readonly SignatureProof[], label: ((t: T) => string) | undefined): Decision<M> & { outcome: 'serve' } {
  const by = [dct ? label!(dct) : undefined, ...proofs.map((p) => p.by)].filter(Boolean).join(' + ');
  return {
    outcome: 'serve',
    audit: { ...base, digest: served.digest, role: dct?.role, decision: 'allow', satisfiedBy: by, ...loggedFields(proofs), ...(dct?.stale ? { stale: true } : {}), ...(dct?.frozen ? { frozen: dct.frozen } : {}) },
    manifest: served.m,
    digest: served.digest,
    verifiedBy: by,
    proofs,
    dct,
  };
}

/** A verdict as the replay reads it from a cache: a proof, or the refusal that was given. */
export type CachedVerdict = { proof: SignatureProof } | { refusal: TrustgateError };

/**
 * What replayTag reads, all of it in memory and synchronous. The objects returned are the cache
 * entries themselves: the caller keeps them as the basis of the answer and replays it while each is
 * still the live, unexpired one.
 */
export interface ReplayPorts<M extends DecidedManifest, T extends DctTarget> {
  /** The DCT mapping of a tag while the trusted set it comes from is fresh, else undefined. */
  dct?: { now(tag: string): T | undefined; label(t: T): string } | undefined;
  /** The cached manifest of a signed digest with the signed length, else undefined. */
  signedManifest(digest: string, length: number): M | undefined;
  /** The reused resolution of the tag upstream, else undefined. */
  tagNow(tag: string): { value: { m: M; digest: string } } | undefined;
  /** The cached verdict of a kind over a descriptor, else undefined. */
  verdictNow(kind: DigestKind, d: Descriptor): { value: CachedVerdict } | undefined;
  missingSource(what: string): TrustgateError | undefined;
}

/** A replayed allow and the cache entries it rests on (the DCT target, the tag resolution, the verdicts). */
export interface Replay<M extends DecidedManifest, T extends DctTarget> {
  decision: Decision<M> & { outcome: 'serve' };
  target?: T | undefined;
  resolution?: object | undefined;
  verdicts: readonly object[];
}

/**
 * The warm path's decision: the allow decideTag would give for this tag, rebuilt from what is cached
 * and nothing else, or undefined whenever anything it would need is not in memory or the full path
 * could refuse (then the full path decides). It follows satisfyTag step by step: `any-of` takes DCT
 * first where the requirement names it (a DCT mapping not at hand is undefined, since DCT might refuse
 * and the next kind then decides), then the digest kinds in order, a cached refusal passing to the next;
 * `all-of` needs every kind over the one digest.
 */
export function replayTag<M extends DecidedManifest, T extends DctTarget>(q: TagQuery, eff: EffectivePolicy, ports: ReplayPorts<M, T>): Replay<M, T> | undefined {
  if (eff.policy === 'off' || ports.missingSource(`${q.repo}:${q.tag}`)) return undefined;
  const { mode, of } = eff.require;
  const digestKinds = of.filter((k): k is DigestKind => k !== 'dct');
  let dct: T | undefined;
  let served: { m: M; digest: string };
  let resolution: object | undefined;
  if (of.includes('dct')) {
    dct = ports.dct?.now(q.tag);
    if (!dct) return undefined;
    const m = ports.signedManifest(dct.digest, dct.length);
    if (!m) return undefined;
    served = { m, digest: dct.digest };
    if (mode === 'any-of') return { decision: allowTag(tagBase(q, eff), served, dct, [], ports.dct!.label), target: dct, verdicts: [] };
  } else {
    const r = ports.tagNow(q.tag);
    if (!r) return undefined;
    resolution = r;
    served = r.value;
  }
  const d = descriptorOf(served);
  const proofs: SignatureProof[] = [];
  const verdicts: object[] = [];
  for (const kind of digestKinds) {
    const v = ports.verdictNow(kind, d);
    if (!v) return undefined;
    verdicts.push(v);
    if ('proof' in v.value) {
      proofs.push(v.value.proof);
      if (mode === 'any-of') break;
    } else if (mode === 'all-of') return undefined;
  }
  if (mode === 'any-of' ? proofs.length === 0 : proofs.length !== digestKinds.length) return undefined;
  return { decision: allowTag(tagBase(q, eff), served, dct, proofs, ports.dct?.label), target: dct, resolution, verdicts };
}

/** What a pull by digest needs besides the ports: the manifest, checked against its digest (and whether it is served stale). */
export interface DigestQuery<M> extends TagQuery {
  digest: string;
  load(): Promise<{ m: M; stale: boolean }>;
  /**
   * Signed parents of this digest (a multi-arch index a signed tag maps to lists it as a platform
   * manifest): tried when nothing signs the digest itself under `digestPulls: signed`.
   */
  coveredBy?(refusals: Refusals): Promise<string | undefined>;
}

/**
 * `digestPulls: signed`: a digest is served only when a signed tag maps to it now (dct) or a signature
 * of it satisfies the policy (notation, cosign), as the requirement's mode combines them.
 */
export async function satisfyDigest<M extends DecidedManifest>(ports: DecidePorts<M, any>, eff: EffectivePolicy, gun: string, m: M, digest: string, refusals: Refusals): Promise<string | undefined> {
  const { mode, of } = eff.require;
  const by: string[] = [];
  for (const kind of of) {
    let ok: string | undefined;
    if (kind === 'dct') {
      const before = refusals.list.length;
      const t = await ports.dct!.signedTagForDigest(digest).catch(refusals.catch);
      if (t) ok = `dct ${t.role} tag ${t.tag}`;
      else if (refusals.list.length === before) refusals.catch(fail('DIGEST_NOT_SIGNED', `no tag signed in targets/releases or targets of ${gun} maps to ${digest}`));
    } else {
      const proofs = await proveDigest(ports, [kind], 'any-of', { digest, size: m.bytes.length, mediaType: m.mediaType }, refusals);
      ok = proofs?.[0]?.by;
    }
    if (ok) {
      by.push(ok);
      if (mode === 'any-of') return ok;
    } else if (mode === 'all-of') return undefined;
  }
  return mode === 'all-of' && by.length === of.length ? by.join(' + ') : undefined;
}

/** HEAD|GET of a manifest by digest. */
export async function decideDigest<M extends DecidedManifest>(q: DigestQuery<M>, eff: EffectivePolicy, ports: DecidePorts<M, any>): Promise<Decision<M>> {
  const { digest } = q;
  const base = { upstream: q.upstream, gun: q.gun, repo: q.repo, ref: digest, digest, policy: eff.policy, require: eff.require.label, digestPulls: eff.digestPulls };
  const asked = `${q.repo}@${digest}`;
  /** The one audit line of a refusal that came as an error, and the error the client is told. */
  const refused = (err: unknown): Decision<M> => {
    if (!isTrustgateError(err)) throw err;
    return { outcome: 'refuse', audit: { ...base, decision: decisionOf(err), code: err.code, reason: err.message }, error: refusalFor(err.code, asked, err) };
  };
  if (eff.digestPulls === 'allow' || eff.policy === 'off') {
    // Content-addressed: Docker Content Trust lets digest pulls through; the bytes are still checked,
    // and the pull is audited like any other manifest served (`pass` where the policy is off).
    let got: { m: M; stale: boolean };
    try {
      got = await q.load();
    } catch (err) {
      return refused(err);
    }
    return { outcome: 'serve', audit: { ...base, decision: eff.policy === 'off' ? 'pass' : 'allow-digest', ...(got.stale ? { stale: true } : {}) }, manifest: got.m, digest, proofs: [] };
  }
  const missing = ports.missingSource(asked);
  if (missing) return refused(missing);
  const refusals = new Refusals();
  let by: string | undefined;
  let got: { m: M; stale: boolean };
  try {
    got = await q.load();
    by = await satisfyDigest(ports, eff, q.gun, got.m, digest, refusals);
    if (!by && q.coveredBy) by = await q.coveredBy(refusals);
  } catch (err) {
    return refused(err);
  }
  const stale = got.stale ? { stale: true } : {};
  if (!by) {
    // A digest nothing covers is DIGEST_NOT_SIGNED whatever each kind said; only when every kind failed
    // for want of a reachable server does the availability code stand (503, retry later).
    const unavailable = refusals.list.length > 0 && refusals.list.every((r) => UNAVAILABLE.has(r.code));
    const code = unavailable ? refusals.last.code : 'DIGEST_NOT_SIGNED';
    if (eff.policy === 'audit') return { outcome: 'serve', audit: { ...base, decision: 'audit-allow', code, reason: refusals.reason, ...stale }, manifest: got.m, digest, proofs: [] };
    return {
      outcome: 'refuse',
      audit: { ...base, decision: 'deny', code, reason: refusals.reason },
      error: refusalFor(code, `digest ${asked} is not covered by a signature (digestPulls: signed, require ${eff.require.label})`, refusals.last, refusals.list),
    };
  }
  return { outcome: 'serve', audit: { ...base, decision: 'allow', satisfiedBy: by, ...stale }, manifest: got.m, digest, verifiedBy: by, proofs: [] };
}

/** What a tags/list decision needs: the upstream's tags, DCT's signed tags, and the digest a tag names now. */
export interface TagsPorts {
  upstreamTags(): Promise<string[]>;
  /** DCT's signed tags with their signed digest and length (TRUST_DATA_MISSING: none). */
  dctTags(): Promise<readonly { tag: string; digest: string; length: number; role: string }[]>;
  /** Prove a descriptor for a digest-signing kind (through the verdict cache where there is one). */
  prove(kind: DigestKind, d: Descriptor): Promise<SignatureProof>;
  /** The descriptor the upstream's tag names now (through the tag-resolution cache), or undefined when it has none. */
  tagDescriptor(tag: string): Promise<Descriptor | undefined>;
  /** The descriptor of a DCT-signed digest (its manifest, checked against the signed hash and length). */
  signedDescriptor(t: { tag: string; digest: string; length: number; role: string }): Promise<Descriptor>;
  /** At most this many digest verifications per listing (limits.maxTagsListed). */
  maxVerifications: number;
  concurrency?: number;
}

/** The trust view of a repository under enforce, and whether it stopped at the verification budget (the rest are listed on the next page). */
export interface TagsDecision {
  tags: string[];
  /** Tags not yet decided when the budget ran out, sorted; the listing's Link header points past the last decided one. */
  truncatedAfter?: string | undefined;
}

/**
 * GET tags/list under enforce: exactly the tags the manifest path would serve. DCT-signed tags where the
 * requirement includes dct — under `all-of` each also proven by every other kind over its signed digest;
 * under a requirement of digest-signing kinds the tags whose current digest carries satisfying
 * signatures (`any-of` mixing both: the union). A tag counts as "not signed" on every refusal, as the
 * manifest path refuses on every refusal; anything else propagates.
 */
export async function decideTagsList(eff: EffectivePolicy, ports: TagsPorts, after?: string): Promise<TagsDecision> {
  const digestKinds = eff.require.of.filter((k): k is DigestKind => k !== 'dct');
  const withDct = eff.require.of.includes('dct');
  const mode = eff.require.mode;
  const dctTags = async () => {
    try {
      return await ports.dctTags();
    } catch (err) {
      if (isTrustgateError(err) && err.code === 'TRUST_DATA_MISSING') return [];
      throw err;
    }
  };
  if (withDct && digestKinds.length === 0) return { tags: (await dctTags()).map((t) => t.tag) };
  const proves = async (d: Descriptor | undefined, how: 'any-of' | 'all-of') => d !== undefined && (await proveDigest(ports, digestKinds, how, d, new Refusals())) !== undefined;
  // Candidates in sorted order, so a listing cut short by the budget is a prefix and the Link goes on from there.
  type Candidate = { tag: string; descriptor: () => Promise<Descriptor | undefined>; how: 'any-of' | 'all-of' };
  let listed: string[] = [];
  let candidates: Candidate[];
  const orUndefined = async (f: () => Promise<Descriptor | undefined>) => {
    try {
      return await f();
    } catch (err) {
      if (!isTrustgateError(err)) throw err;
      return undefined; // a tag whose manifest cannot be had is not listed, as the manifest path refuses it
    }
  };
  if (withDct && mode === 'all-of') {
    candidates = (await dctTags()).map((t) => ({ tag: t.tag, descriptor: () => orUndefined(() => ports.signedDescriptor(t)), how: 'all-of' as const }));
  } else {
    const dct = withDct ? await dctTags() : [];
    listed = dct.map((t) => t.tag);
    const skip = new Set(listed);
    candidates = (await ports.upstreamTags()).filter((t) => !skip.has(t)).map((tag) => ({ tag, descriptor: () => orUndefined(() => ports.tagDescriptor(tag)), how: mode }));
  }
  // A page after `last` decides only what comes after it: the budget goes to the tags the page can show.
  if (after !== undefined) candidates = candidates.filter((c) => c.tag > after);
  candidates.sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  const budget = Math.min(candidates.length, ports.maxVerifications);
  const ok = new Array<boolean>(budget).fill(false);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < budget; i = next++) ok[i] = await proves(await candidates[i]!.descriptor(), candidates[i]!.how);
  };
  await Promise.all(Array.from({ length: Math.min(ports.concurrency ?? 4, budget) }, worker));
  const tags = [...listed, ...candidates.slice(0, budget).filter((_, i) => ok[i]).map((c) => c.tag)];
  return budget < candidates.length ? { tags, truncatedAfter: candidates[budget - 1]?.tag ?? '' } : { tags };
}
