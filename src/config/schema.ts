// The configuration contract (DESIGN.md "Config"): types, defaults and validation in one place.
// Validation collects every problem, each naming the key, the value and what is expected, and the
// result is deep-frozen: bad config fails at start, never on the first request.
import { readFileSync } from 'node:fs';
import { fail } from '../errors.js';
import { candidatePolicies, missingSources, trustSourcesOf } from '../policy/effective.js';
import { DEFAULT_REQUIRE, DIGEST_PULLS, POLICY_MODES, REQUIRE_WORDS, SIGNATURE_KINDS, type DigestPulls, type PolicyMode, type RequireSpec, type SignatureKind } from '../policy/vocabulary.js';
import { parseRedisUrl } from '../store/redis-url.js';
import { parseRfc3339 } from './rfc3339.js';

/** `log.format`: one JSON object per line (collectors, `jq`), or pino-pretty's lines for a person. */
export type LogFormat = 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

// The policy vocabulary is policy's (src/policy/vocabulary.ts); re-exported for config's readers.
export { POLICY_MODES, SIGNATURE_KINDS, DEFAULT_REQUIRE, DIGEST_PULLS } from '../policy/vocabulary.js';
export type { PolicyMode, SignatureKind, RequireSpec, DigestPulls } from '../policy/vocabulary.js';

export interface CosignIdentity {
  issuer: string;
  subject?: string | undefined;
  subjectRegExp?: string | undefined;
}
/** A cosign public key: its PEM file, and the name responses and audit lines call it by (else its fingerprint). */
export interface CosignKeyConfig {
  path: string;
  name?: string | undefined;
}

export interface CosignConfig {
  /** PEM public key files (keyed signatures), written `FILE` or `{ path: FILE, name: NAME }`. */
  keys: readonly CosignKeyConfig[];
  /** Sigstore trusted_root.json (keyless): Fulcio CAs, Rekor, CT logs, TSAs. Read from disk only. */
  trustedRoot?: string | undefined;
  identities: readonly CosignIdentity[];
  /**
   * Keyed signatures and the transparency log: `required` refuses one without a Rekor entry that
   * verifies against the trusted root (what `cosign verify --key` does); `optional` takes the key as the
   * only anchor (`--insecure-ignore-tlog`, what offline re-signed signatures need). Default: required
   * with a trustedRoot, optional with keys alone. Keyless signatures always need their log entry.
   */
  tlog: CosignTlog;
  /** Signature repository (COSIGN_REPOSITORY): REGISTRY_HOST/REPOSITORY holding every image's signatures. */
  repository?: string | undefined;
}
export type CosignTlog = 'required' | 'optional';
export const COSIGN_TLOG: readonly CosignTlog[] = ['required', 'optional'];

export interface NotationConfig {
  trustPolicy: string;
  trustStore: string;
  /** Signature repository: REGISTRY_HOST/REPOSITORY whose referrers of a digest are its signatures. */
  repository?: string | undefined;
}

export interface NotaryConfig {
  url: string;
  /** PEM CA bundle file for the notary server's TLS. */
  ca?: string | undefined;
  username?: string | undefined;
  /** Name of the environment variable holding the password (never the password itself). */
  passwordEnv?: string | undefined;
  /** Origins allowed as token realm; default the notary server's own origin. */
  realms?: readonly string[] | undefined;
  timeoutMs: number;
  /**
   * From this instant on the notary server is never contacted again: tags resolve only from state
   * verified at or before it (docs/migration.md, "Frozen DCT trust (`notary.frozenAt`)"). Absent: live trust.
   */
  frozenAt?: Date | undefined;
}

export interface RepositoryPolicy {
  /** Glob over the repository name: `*` matches within a path segment, `**` across segments. */
  match: string;
  policy: PolicyMode;
  require?: RequireSpec | undefined;
  digestPulls?: DigestPulls | undefined;
  /** Cosign keys/identities for these repositories instead of the upstream's (which must exist). */
  cosign?: CosignConfig | undefined;
  /** Where these repositories' Notation signatures are (the trust policy stays the upstream's). */
  notation?: { repository: string } | undefined;
}

export interface UpstreamConfig {
  name: string;
  registry: string;
  /** GUN prefix: GUN = gun + "/" + repository. Also the host `?ns=` selects. */
  gun: string;
  notary?: NotaryConfig | undefined;
  /** No notary server: tags resolve only from trust bundles imported with `trustgate bundle import`. */
  bundle: boolean;
  policy: PolicyMode;
  require: RequireSpec;
  digestPulls: DigestPulls;
  /** notation's own files: trustpolicy.json and the trust store directory (x509/<type>/<name>/). */
  notation?: NotationConfig | undefined;
  cosign?: CosignConfig | undefined;
  /** Credentials may travel over plain http (registry or token realm) only when this says so. */
  insecure: boolean;
  repositories: readonly RepositoryPolicy[];
  username?: string | undefined;
  passwordEnv?: string | undefined;
  realms?: readonly string[] | undefined;
  /** PEM CA bundle file for the registry's TLS. */
  ca?: string | undefined;
  /** Where the registry may redirect us besides its own host (blob storage on a private network). */
  redirects: RedirectsConfig;
}

export interface RedirectsConfig {
  /** Hostnames (or host:port) followed even when they resolve to loopback, link-local or private addresses. */
  allowHosts: readonly string[];
  /** Follow redirects to any private address (never to trustgate's own). */
  allowPrivate: boolean;
}

export interface TrustPinningConfig {
  certs: Readonly<Record<string, readonly string[]>>;
  /** GUN prefix → CA bundle file. */
  ca: Readonly<Record<string, string>>;
  disableTofu: boolean;
}

export interface Config {
  listen: { host: string; port: number };
  /** file: `maxBytes` caps the disk the values occupy (default 1 GiB, least recently used evicted). */
  /**
   * redis: `localPath` is this replica's own directory for what it trusts itself (roots it trusted first,
   * rollback floors): the shared store is not a root of trust. With the file store, the store is local.
   */
  store: { kind: 'file'; path: string; maxBytes: number } | { kind: 'redis'; url: string; prefix: string; localPath: string };
  upstreams: readonly UpstreamConfig[];
  default?: string | undefined;
  trustPinning: TrustPinningConfig;
  limits: {
    /** distribution refuses manifests over 4 MiB; so do we. */
    manifestBytes: number;
    /** Headers and each body read from an upstream registry. */
    upstreamTimeoutMs: number;
    /** How long verified metadata is used before the timestamp is re-checked (notary-server advertises 300 s). */
    trustCacheSeconds: number;
    /** On SIGTERM, how long in-flight requests (blob streams) may take to finish. */
    shutdownGraceSeconds: number;
    /**
     * Once in-flight requests are done (at most shutdownGraceSeconds), how long writing out waiting
     * audit lines and closing the store may take: then the process exits whatever the audit
     * destination does, and says on stderr how many lines were lost. SIGTERM with nothing in flight
     * ends within this.
     */
    shutdownSeconds: number;
    /** Warn (log and metric) when an imported trust bundle expires within this many days. */
    bundleWarnDays: number;
    /**
     * Hash every full blob on the way through and cut the response on a mismatch. Clients verify blob
     * digests themselves; this is defence in depth that costs throughput (docs/benchmarks.md,
     * "Dependency choices (measured)").
     */
    verifyBlobDigests: boolean;
    /**
     * Signature candidates (cosign or Notation) without a cached verdict fetched per verification:
     * the budget of one request. Candidates filtered by type, or with a cached verdict, do not spend
     * it; those that cannot be valid get what is left (docs/signatures.md, "Discovery with a budget").
     */
    maxSignatures: number;
    /** Bytes of signature material (signature manifests, payloads, envelopes, bundles) fetched per verification. */
    signatureBytes: number;
    /** At most this many signature verifications per tags/list (cosign, Notation); the rest through the Link header. */
    maxTagsListed: number;
    /** A response whose client has read nothing for this long is cut, freeing its upstream connection. */
    clientStallSeconds: number;
    /** Concurrent blob streams one client address may have; more are answered 429. */
    perClientStreams: number;
    /** Client connections in total; past it the longest-idle one is closed, or the newcomer answered 503. */
    maxConnections: number;
    /** Client connections per remote address, the same way. */
    perClientConnections: number;
    /** One budget for the read buffers of every blob send in flight (slow readers share it). */
    sendBufferBytes: number;
    /** Upstream connections per registry for blob streams. */
    upstreamBlobConnections: number;
    /** Upstream connections per registry for manifests, tags and tokens (never behind blob streams). */
    upstreamMetadataConnections: number;
    /** Upstream connections per registry for signature discovery (never in front of manifest pulls). */
    upstreamSignatureConnections: number;
  };
  /** `format`: json or pretty; unset, pretty when stdout is a terminal and json otherwise (observe/logger.ts logFormatFor). */
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'; format?: LogFormat | undefined };
  /** Verified blob cache on local disk (src/blobcache), or false. */
  blobCache: BlobCacheConfig | false;
  /**
   * Audit lines: always written whatever `log.level`; to stdout, or appended to `path` (reopened on
   * SIGHUP). Lines the destination does not take wait, in order, in up to `bufferBytes` (default
   * 64 MiB); when that is full, `onFailure` says what happens: `refuse` (default) refuses trust
   * decisions with AUDIT_UNAVAILABLE, `serve` serves and drops (and counts) the lines.
   */
  audit: { path?: string | undefined; bufferBytes: number; onFailure: 'refuse' | 'serve' };
  /** Server processes sharing the listen socket (node:cluster); `auto`: one per available core. */
  workers: number | 'auto';
  /** Cached manifests (src/store/manifest-cache.ts). */
  cache: {
    /** A manifest cached longer than this is checked with a HEAD upstream before it is served by digest. */
    digestRevalidateSeconds: number;
    /**
     * Notation/cosign sign digests, so a tag is resolved upstream: that resolution (tag → digest, and
     * the manifest bytes) is reused this long, and so is a tags/list answer (docs/signatures.md,
     * "Warm answers and freshness"). A moved tag is seen within it; 0 resolves on every request.
     */
    tagTtlSeconds: number;
  };
}

export interface BlobCacheConfig {
  /** Directory; default `<store.path>/blobcache` (`./data/blobcache` with a Redis store). */
  path: string;
  /** Least recently used blobs are evicted to stay under this; default 10 GiB. */
  maxBytes: number;
  /** Hash every read from disk, not only the first after start. */
  verifyOnRead: boolean;
  /**
   * Filling stops (misses are relayed from the upstream, uncached) while the filesystem has less free
   * than this; undefined: min(1 GiB, 5% of the filesystem), measured at start.
   */
  minFreeBytes?: number | undefined;
}

/** audit.bufferBytes when not set: 64 MiB of lines (~150 000 decisions) may wait for a failing destination. */
export const DEFAULT_AUDIT_BUFFER_BYTES = 64 * 1024 * 1024;

/** The file store's disk cap when `store.maxBytes` is not set: 1 GiB. */
export const DEFAULT_STORE_MAX_BYTES = 1024 ** 3;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Problems {
  readonly list: string[] = [];
  add(key: string, value: unknown, expected: string): undefined {
    const shown = value === undefined ? 'nothing' : JSON.stringify(value)?.slice(0, 80);
    this.list.push(`${key}: got ${shown}, expected ${expected}`);
    return undefined;
  }
}

function str(p: Problems, o: Obj, key: string, path: string, required: boolean): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return required ? p.add(`${path}${key}`, v, 'a string') : undefined;
  if (typeof v !== 'string' || v === '') return p.add(`${path}${key}`, v, 'a non-empty string');
  return v;
}

function url(p: Problems, o: Obj, key: string, path: string, protocols: string[], required = true): string | undefined {
  const v = str(p, o, key, path, required);
  if (v === undefined) return undefined;
  try {
    const u = new URL(v);
    if (!protocols.includes(u.protocol)) return p.add(`${path}${key}`, v, `a URL with scheme ${protocols.join(' or ')}`);
    return v.replace(/\/+$/, '');
  } catch {
    return p.add(`${path}${key}`, v, 'a URL');
  }
}

function int(p: Problems, o: Obj, key: string, path: string, def: number, min: number, max: number): number {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return p.add(`${path}${key}`, v, `an integer from ${min} to ${max}`) ?? def;
  return v;
}

function oneOf<T extends string>(p: Problems, o: Obj, key: string, path: string, values: readonly T[], def: T): T {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'string' || !values.includes(v as T)) return p.add(`${path}${key}`, v, `one of ${values.join(', ')}`) ?? def;
  return v as T;
}

function strList(p: Problems, o: Obj, key: string, path: string): string[] | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) return p.add(`${path}${key}`, v, 'a list of strings');
  return v as string[];
}

function unknownKeys(p: Problems, o: Obj, path: string, known: string[]): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) p.add(`${path}${k}`, o[k], `no such key (known: ${known.join(', ')})`);
}

/** store.url in any of its three forms (one server, Cluster node list, Sentinel): src/store/redis-url.ts. */
function redisUrl(p: Problems, o: Obj): string | undefined {
  const v = str(p, o, 'url', 'store.', true);
  if (v === undefined) return undefined;
  const r = parseRedisUrl(v);
  return r.ok ? v.trim() : p.add('store.url', v, r.expected);
}

const GUN_PREFIX = /^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::\d{1,5})?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const NAME = /^[a-z0-9][a-z0-9_-]*$/;

function parseNotary(p: Problems, v: unknown, path: string): NotaryConfig | undefined {
  if (v === undefined) return undefined;
  if (!isObj(v)) return p.add(path.slice(0, -1), v, 'a mapping with url (and ca, username, passwordEnv, realms, timeoutMs)');
  unknownKeys(p, v, path, ['url', 'ca', 'username', 'passwordEnv', 'realms', 'timeoutMs', 'frozenAt']);
  const u = url(p, v, 'url', path, ['https:']);
  let frozenAt: Date | undefined;
  if (v.frozenAt !== undefined) {
    // A YAML 1.1 loader may hand over a Date already; ours (YAML 1.2 core) gives the string.
    frozenAt = v.frozenAt instanceof Date ? v.frozenAt : typeof v.frozenAt === 'string' ? parseRfc3339(v.frozenAt) : undefined;
    if (!frozenAt || Number.isNaN(frozenAt.getTime())) p.add(`${path}frozenAt`, v.frozenAt, 'an RFC 3339 date-time with a time zone offset, e.g. 2026-12-08T00:00:00Z');
  }
  const username = str(p, v, 'username', path, false);
  const passwordEnv = str(p, v, 'passwordEnv', path, false);
  if ((username === undefined) !== (passwordEnv === undefined)) p.add(`${path}passwordEnv`, v.passwordEnv, 'username and passwordEnv together');
  const realms = strList(p, v, 'realms', path);
  for (const r of realms ?? []) if (!/^https:\/\//.test(r)) p.add(`${path}realms`, r, 'https origins');
  return u === undefined
    ? undefined
    : { url: u, ca: str(p, v, 'ca', path, false), username, passwordEnv, realms, timeoutMs: int(p, v, 'timeoutMs', path, 15_000, 100, 600_000), ...(frozenAt ? { frozenAt } : {}) };
}

/** `require`: one of the words, or `{ any-of: [kinds] }` / `{ all-of: [kinds] }`. */
function parseRequire(p: Problems, o: Obj, path: string): RequireSpec | undefined {
  const v = o.require;
  if (v === undefined) return undefined;
  const expected = `one of ${Object.keys(REQUIRE_WORDS).join(', ')}, or { any-of: [...] } / { all-of: [...] } over ${SIGNATURE_KINDS.join(', ')}`;
  if (typeof v === 'string') {
    const w = REQUIRE_WORDS[v];
    return w ? { ...w, label: v } : p.add(`${path}require`, v, expected);
  }
  if (!isObj(v) || Object.keys(v).length !== 1) return p.add(`${path}require`, v, expected);
  const mode = Object.keys(v)[0]!;
  const list = v[mode];
  if ((mode !== 'any-of' && mode !== 'all-of') || !Array.isArray(list) || list.length === 0) return p.add(`${path}require`, v, expected);
  const of: SignatureKind[] = [];
  for (const k of list) {
    if (typeof k !== 'string' || !SIGNATURE_KINDS.includes(k as SignatureKind) || of.includes(k as SignatureKind)) {
      return p.add(`${path}require.${mode}`, k, `distinct signature kinds from ${SIGNATURE_KINDS.join(', ')}`);
    }
    of.push(k as SignatureKind);
  }
  return { mode, of, label: `${mode}: [${of.join(', ')}]` };
}

// A key's name goes into a response header (X-Trustgate-Verified-By): a token, no spaces, no path.
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function cosignKeys(p: Problems, v: unknown, path: string): CosignKeyConfig[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) return p.add(path, v, 'a list of PEM files or { path, name }') ?? [];
  const out: CosignKeyConfig[] = [];
  v.forEach((k, i) => {
    if (typeof k === 'string') return void out.push({ path: k });
    if (!isObj(k)) return p.add(`${path}[${i}]`, k, 'a PEM file or { path, name }');
    unknownKeys(p, k, `${path}[${i}].`, ['path', 'name']);
    const file = str(p, k, 'path', `${path}[${i}].`, true);
    const name = str(p, k, 'name', `${path}[${i}].`, false);
    if (name !== undefined && !KEY_NAME.test(name)) p.add(`${path}[${i}].name`, name, 'letters, digits, . _ - (at most 64, no spaces)');
    if (file !== undefined) out.push({ path: file, ...(name !== undefined ? { name } : {}) });
  });
  return out;
}

function parseCosign(p: Problems, v: unknown, path: string): CosignConfig | undefined {
  if (v === undefined) return undefined;
  if (!isObj(v)) return p.add(path.slice(0, -1), v, 'a mapping with keys, trustedRoot, identities');
  unknownKeys(p, v, path, ['keys', 'trustedRoot', 'identities', 'tlog', 'repository']);
  const keys = cosignKeys(p, v.keys, `${path}keys`);
  const trustedRoot = str(p, v, 'trustedRoot', path, false);
  const identities: CosignIdentity[] = [];
  if (v.identities !== undefined) {
    if (!Array.isArray(v.identities)) p.add(`${path}identities`, v.identities, 'a list of { issuer, subject | subjectRegExp }');
    else
      v.identities.forEach((id, j) => {
        const ip = `${path}identities[${j}].`;
        if (!isObj(id)) return p.add(`${path}identities[${j}]`, id, 'a mapping { issuer, subject | subjectRegExp }');
        unknownKeys(p, id, ip, ['issuer', 'subject', 'subjectRegExp']);
        const issuer = str(p, id, 'issuer', ip, true);
        const subject = str(p, id, 'subject', ip, false);
        const subjectRegExp = str(p, id, 'subjectRegExp', ip, false);
        if ((subject === undefined) === (subjectRegExp === undefined)) p.add(`${ip}subject`, id.subject, 'exactly one of subject or subjectRegExp');
        if (subjectRegExp !== undefined) {
          try {
            new RegExp(subjectRegExp);
          } catch {
            p.add(`${ip}subjectRegExp`, subjectRegExp, 'a valid regular expression');
          }
        }
        if (issuer !== undefined) identities.push({ issuer, subject, subjectRegExp });
      });
  }
  if (keys.length === 0 && trustedRoot === undefined) return p.add(path.slice(0, -1), v, 'keys (PEM public key files) or trustedRoot (keyless)');
  if (trustedRoot !== undefined && identities.length === 0) p.add(`${path}identities`, v.identities, 'at least one { issuer, subject | subjectRegExp } for keyless signatures (trustedRoot)');
  // What `cosign verify --key` does unless told --insecure-ignore-tlog; keys alone have no Rekor keys to check against.
  const tlog = oneOf(p, v, 'tlog', path, COSIGN_TLOG, trustedRoot !== undefined ? 'required' : 'optional');
  if (tlog === 'required' && trustedRoot === undefined) p.add(`${path}tlog`, v.tlog, 'optional, or a trustedRoot (its Rekor keys are what a transparency-log entry is checked against)');
  const repository = signatureRepository(p, v, path);
  return { keys, trustedRoot, identities, tlog, ...(repository ? { repository } : {}) };
}

// REGISTRY_HOST[:PORT]/REPOSITORY, as COSIGN_REPOSITORY names it: a host and at least one path segment.
const SIGNATURE_REPOSITORY = /^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::\d{1,5})?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$/;

function signatureRepository(p: Problems, o: Obj, path: string): string | undefined {
  const r = str(p, o, 'repository', path, false);
  if (r !== undefined && !SIGNATURE_REPOSITORY.test(r)) return p.add(`${path}repository`, r, 'REGISTRY_HOST/REPOSITORY, e.g. registry.example.com/sigs/store');
  return r;
}

/** `notation:` on a repository entry: only where its signatures are; the trust policy is the upstream's. */
function parseRepositoryNotation(p: Problems, v: unknown, path: string): { repository: string } | undefined {
  if (v === undefined) return undefined;
  if (!isObj(v)) return p.add(path.slice(0, -1), v, 'a mapping { repository: REGISTRY_HOST/REPOSITORY }');
  unknownKeys(p, v, path, ['repository']);
  if (v.repository === undefined) return p.add(`${path}repository`, undefined, 'REGISTRY_HOST/REPOSITORY');
  const repository = signatureRepository(p, v, path);
  return repository ? { repository } : undefined;
}

/**
 * Every signature repository must be served by an upstream (the one whose gun is the longest prefix
 * of it, as src/app/select-upstream.ts picks): its URL, TLS and credentials are used for the look-ups.
 * A host no upstream serves would have nowhere to go, so it is a config error, not a refusal per pull.
 */
function checkSignatureRepositories(p: Problems, upstreams: readonly UpstreamConfig[], at: readonly number[]): void {
  const guns = upstreams.map((u) => u.gun);
  const check = (key: string, repository: string | undefined) => {
    if (repository !== undefined && !guns.some((g) => repository.startsWith(`${g}/`))) {
      p.add(key, repository, `a repository under the gun of an upstream (${guns.join(', ')}): its registry, TLS and credentials are used to read the signatures`);
    }
  };
  upstreams.forEach((u, k) => {
    const i = at[k];
    check(`upstreams[${i}].cosign.repository`, u.cosign?.repository);
    check(`upstreams[${i}].notation.repository`, u.notation?.repository);
    u.repositories.forEach((r, j) => {
      check(`upstreams[${i}].repositories[${j}].cosign.repository`, r.cosign?.repository);
      check(`upstreams[${i}].repositories[${j}].notation.repository`, r.notation?.repository);
    });
  });
}

const SOURCE_NEEDED: Readonly<Record<SignatureKind, string>> = {
  dct: 'a notary server (notary:) or bundle: true',
  notation: 'notation: { trustPolicy, trustStore }',
  cosign: 'cosign: { keys | trustedRoot }',
};

/**
 * Every repository entry's effective requirement against the upstream's trust sources. A repository
 * whose first matching entry is j takes j's policy; its `require` is j's, else the first later
 * matching entry's that sets one, else the upstream's. Every candidate is checked, so no accepted
 * configuration can reach a requirement the upstream cannot verify. The candidates come from
 * policy/effective.ts (candidatePolicies), the same first-match rule the request path applies.
 */
function checkEffectiveSources(p: Problems, path: string, u: Pick<UpstreamConfig, 'policy' | 'require' | 'digestPulls' | 'repositories' | 'notary' | 'bundle' | 'notation' | 'cosign'>): void {
  const sources = trustSourcesOf(u);
  for (const c of candidatePolicies(u)) {
    const { eff } = c;
    const missing = missingSources(eff, sources);
    if (missing.length === 0) continue;
    const rp = `${path}repositories[${c.entry}].`;
    const [key, value, why] =
      c.entry === undefined
        ? u.require === DEFAULT_REQUIRE
          ? [`${path}notary`, undefined, '']
          : [`${path}require`, u.require.label, '']
        : u.repositories[c.entry]!.require
          ? [`${rp}require`, eff.require.label, '']
          : c.requireFrom === undefined
            ? [`${rp}policy`, eff.policy, ` (the upstream's require)`]
            : [`${rp}policy`, eff.policy, ` (require of repositories[${c.requireFrom}], which a repository matching both would take)`];
    for (const k of missing) {
      p.add(key, value, `${SOURCE_NEEDED[k]} on the upstream (policy ${eff.policy} with require ${eff.require.label} needs ${k}${why}; or policy: off to serve unverified)`);
    }
  }
}

function parseUpstream(p: Problems, v: unknown, i: number): UpstreamConfig | undefined {
  const path = `upstreams[${i}].`;
  if (!isObj(v)) return p.add(`upstreams[${i}]`, v, 'a mapping with name, registry, gun, notary, policy');
  unknownKeys(p, v, path, ['name', 'registry', 'gun', 'notary', 'bundle', 'policy', 'require', 'digestPulls', 'notation', 'cosign', 'repositories', 'username', 'passwordEnv', 'realms', 'ca', 'insecure', 'redirects']);
  const name = str(p, v, 'name', path, true);
  if (name !== undefined && !NAME.test(name)) p.add(`${path}name`, name, 'lower-case letters, digits, - and _');
  const registry = url(p, v, 'registry', path, ['http:', 'https:']);
  const gun = str(p, v, 'gun', path, true);
  if (gun !== undefined && !GUN_PREFIX.test(gun)) p.add(`${path}gun`, gun, 'a registry host[:port] optionally followed by /path');
  const policy = oneOf(p, v, 'policy', path, POLICY_MODES, 'enforce');
  const require = parseRequire(p, v, path) ?? DEFAULT_REQUIRE;
  const digestPulls = oneOf(p, v, 'digestPulls', path, DIGEST_PULLS, 'allow');
  const notary = parseNotary(p, v.notary, `${path}notary.`);
  let notation: UpstreamConfig['notation'];
  if (v.notation !== undefined) {
    const n = v.notation;
    if (typeof n !== 'object' || n === null || Array.isArray(n)) p.add(`${path}notation`, n, 'a mapping with trustPolicy and trustStore');
    else {
      unknownKeys(p, n as Obj, `${path}notation.`, ['trustPolicy', 'trustStore', 'repository']);
      const tp = str(p, n as Obj, 'trustPolicy', `${path}notation.`, true);
      const ts = str(p, n as Obj, 'trustStore', `${path}notation.`, true);
      const repository = signatureRepository(p, n as Obj, `${path}notation.`);
      if (tp && ts) notation = { trustPolicy: tp, trustStore: ts, ...(repository ? { repository } : {}) };
    }
  }
  const cosign = parseCosign(p, v.cosign, `${path}cosign.`);
  if (v.bundle !== undefined && typeof v.bundle !== 'boolean') p.add(`${path}bundle`, v.bundle, 'true or false');
  const bundle = v.bundle === true;
  if (bundle && v.notary !== undefined) p.add(`${path}bundle`, v.bundle, 'either a notary server or bundle: true, not both');
  if (v.insecure !== undefined && typeof v.insecure !== 'boolean') p.add(`${path}insecure`, v.insecure, 'true or false');
  const insecure = v.insecure === true;
  const repositories: RepositoryPolicy[] = [];
  if (v.repositories !== undefined) {
    if (!Array.isArray(v.repositories)) p.add(`${path}repositories`, v.repositories, 'a list of {match, policy}');
    else
      v.repositories.forEach((r, j) => {
        const rp = `${path}repositories[${j}].`;
        if (!isObj(r)) return p.add(`${path}repositories[${j}]`, r, 'a mapping {match, policy}');
        unknownKeys(p, r, rp, ['match', 'policy', 'require', 'digestPulls', 'cosign', 'notation']);
        const match = str(p, r, 'match', rp, true);
        const pol = oneOf(p, r, 'policy', rp, POLICY_MODES, 'enforce');
        if (r.policy === undefined) p.add(`${rp}policy`, undefined, `one of ${POLICY_MODES.join(', ')}`);
        const req = parseRequire(p, r, rp);
        const dp = r.digestPulls === undefined ? undefined : oneOf(p, r, 'digestPulls', rp, DIGEST_PULLS, 'signed');
        const rc = parseCosign(p, r.cosign, `${rp}cosign.`);
        // The upstream's cosign: is the default and what config check counts as the trust source.
        if (rc && !cosign) p.add(`${rp}cosign`, '(set)', 'only on an upstream that has cosign: too');
        const rn = parseRepositoryNotation(p, r.notation, `${rp}notation.`);
        if (rn && !notation) p.add(`${rp}notation`, '(set)', 'only on an upstream that has notation: too (its trust policy applies)');
        if (match !== undefined) repositories.push({ match, policy: pol, require: req, digestPulls: dp, ...(rc ? { cosign: rc } : {}), ...(rn ? { notation: rn } : {}) });
      });
  }
  checkEffectiveSources(p, path, { policy, require, digestPulls, repositories, notary, bundle, notation, cosign });
  const username = str(p, v, 'username', path, false);
  const passwordEnv = str(p, v, 'passwordEnv', path, false);
  if ((username === undefined) !== (passwordEnv === undefined)) p.add(`${path}passwordEnv`, v.passwordEnv, 'username and passwordEnv together');
  const realms = strList(p, v, 'realms', path);
  // Token realms are origins (scheme://host[:port]); credentials go to them, so they are checked here.
  for (const r of realms ?? []) {
    let ok = false;
    try {
      const u = new URL(r);
      ok = (u.protocol === 'https:' || u.protocol === 'http:') && (u.pathname === '/' || u.pathname === '') && !u.search && !u.username;
      if (ok && u.protocol === 'http:' && username !== undefined && !insecure) {
        p.add(`${path}realms`, r, 'an https origin: credentials are never sent in clear text (or insecure: true on the upstream)');
      }
    } catch {
      /* reported below */
    }
    if (!ok) p.add(`${path}realms`, r, 'an origin URL such as https://auth.example.com');
  }
  if (username !== undefined && registry?.startsWith('http:') && !insecure) {
    p.add(`${path}username`, username, `credentials only over https: the registry ${registry} is plain http (set insecure: true on the upstream to send them in clear text anyway)`);
  }
  if (name === undefined || registry === undefined || gun === undefined) return undefined;
  const redirects = parseRedirects(p, v.redirects, `${path}redirects`);
  return { name, registry, gun, notary, bundle, policy, require, digestPulls, notation, cosign, insecure, repositories, username, passwordEnv, realms, ca: str(p, v, 'ca', path, false), redirects };
}

function parseRedirects(p: Problems, v: unknown, path: string): RedirectsConfig {
  const none: RedirectsConfig = { allowHosts: [], allowPrivate: false };
  if (v === undefined) return none;
  if (!isObj(v)) return p.add(path, v, 'a mapping { allowHosts: [host, …], allowPrivate: false }') ?? none;
  unknownKeys(p, v, `${path}.`, ['allowHosts', 'allowPrivate']);
  const allowHosts = strList(p, v, 'allowHosts', `${path}.`) ?? [];
  for (const h of allowHosts) if (!/^[a-zA-Z0-9.:[\]-]+$/.test(h)) p.add(`${path}.allowHosts`, h, 'host names or host:port, no scheme or path');
  if (v.allowPrivate !== undefined && typeof v.allowPrivate !== 'boolean') p.add(`${path}.allowPrivate`, v.allowPrivate, 'true or false');
  return { allowHosts, allowPrivate: v.allowPrivate === true };
}

function parsePinning(p: Problems, v: unknown): TrustPinningConfig {
  const empty: TrustPinningConfig = { certs: {}, ca: {}, disableTofu: false };
  if (v === undefined) return empty;
  if (!isObj(v)) return p.add('trust_pinning', v, 'a mapping with certs, ca, disable_tofu') ?? empty;
  unknownKeys(p, v, 'trust_pinning.', ['certs', 'ca', 'disable_tofu']);
  const certs: Record<string, string[]> = {};
  if (v.certs !== undefined) {
    if (!isObj(v.certs)) p.add('trust_pinning.certs', v.certs, 'a mapping GUN → list of certificate key IDs');
    else
      for (const [gun, ids] of Object.entries(v.certs)) {
        if (!Array.isArray(ids) || ids.some((x) => typeof x !== 'string' || !/^[0-9a-f]{64}$/.test(x))) {
          p.add(`trust_pinning.certs.${gun}`, ids, 'a list of 64-hex-digit key IDs');
        } else certs[gun] = ids;
      }
  }
  const ca: Record<string, string> = {};
  if (v.ca !== undefined) {
    if (!isObj(v.ca)) p.add('trust_pinning.ca', v.ca, 'a mapping GUN prefix → CA bundle file');
    else for (const [prefix, file] of Object.entries(v.ca)) typeof file === 'string' ? (ca[prefix] = file) : p.add(`trust_pinning.ca.${prefix}`, file, 'a file path');
  }
  const d = v.disable_tofu;
  if (d !== undefined && typeof d !== 'boolean') p.add('trust_pinning.disable_tofu', d, 'true or false');
  return { certs, ca, disableTofu: d === true };
}

const CLIENT_LIMIT_KEYS = ['clientStallSeconds', 'perClientStreams', 'upstreamBlobConnections', 'upstreamMetadataConnections', 'upstreamSignatureConnections', 'maxConnections', 'perClientConnections', 'sendBufferBytes'];

/**
 * limits.maxConnections when not set: half the process's open-file limit (the other half stays for
 * upstream connections, files and the store), at most 10,000; 4,096 where the limit cannot be read.
 */
export function defaultMaxConnections(limitsText?: string): number {
  const soft = openFileLimit(limitsText);
  if (soft === undefined) return 4096;
  return Math.max(16, Math.min(10_000, Math.floor(soft / 2)));
}

/** The process's soft open-file limit from /proc/self/limits (Infinity when unlimited, undefined when unreadable). */
export function openFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  try {
    text ??= readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** Descriptors kept for files, the store, the audit destination and logs, beyond the upstream pools. */
const SPARE_DESCRIPTORS = 64;

/**
 * Client connections are capped (limits.maxConnections) so that the upstream pools always have their
 * descriptors: a flood of client sockets used to end in `connect EMFILE` on upstream connects. The
 * default cap leaves half the limit; a cap set by hand may not. A warning (config check, start) when
 * the cap plus every upstream's pools plus SPARE_DESCRIPTORS exceed the open-file limit.
 */
export function descriptorWarning(config: Pick<Config, 'limits' | 'upstreams'>, limit = openFileLimit()): string | undefined {
  if (limit === undefined || limit === Infinity) return undefined;
  const l = config.limits;
  const pools = config.upstreams.length * (l.upstreamBlobConnections + l.upstreamMetadataConnections + l.upstreamSignatureConnections);
  const need = l.maxConnections + pools + SPARE_DESCRIPTORS;
  if (need <= limit) return undefined;
  return `limits.maxConnections (${l.maxConnections}) plus the upstream pools (${pools} connections for ${config.upstreams.length} upstream(s)) and ${SPARE_DESCRIPTORS} for files need ${need} descriptors, over this process's open-file limit of ${limit}: a flood of client connections can make upstream connects fail with EMFILE; lower limits.maxConnections to ${Math.max(1, limit - pools - SPARE_DESCRIPTORS)} or less, or raise the limit (ulimit -n, LimitNOFILE=)`;
}

/** Slow clients and pools (issue 13): defaults documented in docs/configuration.md and docs/http.md, "HTTP". */
function parseClientLimits(p: Problems, d: Obj) {
  const maxConnections = int(p, d, 'maxConnections', 'limits.', defaultMaxConnections(), 1, 1_000_000);
  return {
    clientStallSeconds: int(p, d, 'clientStallSeconds', 'limits.', 30, 1, 3600),
    perClientStreams: int(p, d, 'perClientStreams', 'limits.', 32, 1, 100_000),
    upstreamBlobConnections: int(p, d, 'upstreamBlobConnections', 'limits.', 64, 1, 10_000),
    upstreamMetadataConnections: int(p, d, 'upstreamMetadataConnections', 'limits.', 32, 1, 10_000),
    upstreamSignatureConnections: int(p, d, 'upstreamSignatureConnections', 'limits.', 8, 1, 10_000),
    maxConnections,
    // A quarter of the total by default: one address (or a NAT, a load balancer) cannot take them all,
    // and a busy client behind one still has room (the integration tests open 1,000 from 127.0.0.1).
    perClientConnections: int(p, d, 'perClientConnections', 'limits.', Math.max(64, Math.floor(maxConnections / 4)), 1, 1_000_000),
    sendBufferBytes: int(p, d, 'sendBufferBytes', 'limits.', 64 * 1024 * 1024, 1024 * 1024, Number.MAX_SAFE_INTEGER),
  };
}

function parseAuditAndWorkers(p: Problems, doc: Obj): Pick<Config, 'audit' | 'workers'> {
  const a = doc.audit;
  let audit: Config['audit'] = { bufferBytes: DEFAULT_AUDIT_BUFFER_BYTES, onFailure: 'refuse' };
  if (a !== undefined) {
    if (!isObj(a)) p.add('audit', a, 'a mapping with path, bufferBytes, onFailure');
    else {
      unknownKeys(p, a, 'audit.', ['path', 'bufferBytes', 'onFailure']);
      const bufferBytes = int(p, a, 'bufferBytes', 'audit.', DEFAULT_AUDIT_BUFFER_BYTES, 4096, 4 * 1024 ** 3);
      const onFailure = oneOf(p, a, 'onFailure', 'audit.', ['refuse', 'serve'] as const, 'refuse');
      if (a.path !== undefined && (typeof a.path !== 'string' || a.path === '')) p.add('audit.path', a.path, 'a file path');
      else audit = { path: a.path as string | undefined, bufferBytes, onFailure };
    }
  }
  const w = doc.workers;
  let workers: Config['workers'] = 1;
  if (w !== undefined) {
    if (w === 'auto' || (typeof w === 'number' && Number.isInteger(w) && w >= 1 && w <= 256)) workers = w;
    else p.add('workers', w, 'an integer from 1 to 256, or auto');
  }
  return { audit, workers };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function parseBlobCache(p: Problems, v: unknown, store: Config['store']): BlobCacheConfig | false {
  const path = store.kind === 'file' ? `${store.path.replace(/\/+$/, '')}/blobcache` : './data/blobcache';
  const def: BlobCacheConfig = { path, maxBytes: 10 * 1024 ** 3, verifyOnRead: false };
  if (v === undefined || v === true) return def;
  if (v === false) return false;
  if (!isObj(v)) return p.add('blobCache', v, 'false, or a mapping with path, maxBytes, verifyOnRead, minFreeBytes') ?? def;
  unknownKeys(p, v, 'blobCache.', ['path', 'maxBytes', 'verifyOnRead', 'minFreeBytes']);
  if (v.verifyOnRead !== undefined && typeof v.verifyOnRead !== 'boolean') p.add('blobCache.verifyOnRead', v.verifyOnRead, 'true or false');
  return {
    path: str(p, v, 'path', 'blobCache.', false) ?? path,
    maxBytes: int(p, v, 'maxBytes', 'blobCache.', def.maxBytes, 1024 * 1024, Number.MAX_SAFE_INTEGER),
    verifyOnRead: v.verifyOnRead === true,
    ...(v.minFreeBytes !== undefined ? { minFreeBytes: int(p, v, 'minFreeBytes', 'blobCache.', 0, 0, Number.MAX_SAFE_INTEGER) } : {}),
  };
}

/** Validate a parsed YAML document; throws CONFIG_INVALID listing every problem. */
export function validateConfig(doc: unknown, source: string): Config {
  const p = new Problems();
  if (!isObj(doc)) throw fail('CONFIG_INVALID', `${source}: the top level must be a mapping`);
  unknownKeys(p, doc, '', ['listen', 'store', 'upstreams', 'default', 'trust_pinning', 'limits', 'log', 'blobCache', 'audit', 'workers', 'cache']);

  let listen = { host: '127.0.0.1', port: 5050 };
  const l = doc.listen;
  const lm = typeof l === 'string' ? /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(l) : null;
  if (l !== undefined) {
    if (!lm || Number(lm[2]) > 65535) p.add('listen', l, 'HOST:PORT, e.g. 127.0.0.1:5050');
    else listen = { host: lm[1]!.replace(/^\[|\]$/g, ''), port: Number(lm[2]) };
  }

  let store: Config['store'] = { kind: 'file', path: './data', maxBytes: DEFAULT_STORE_MAX_BYTES };
  const s = doc.store;
  if (s !== undefined) {
    if (!isObj(s)) p.add('store', s, '{ kind: file, path: DIR } or { kind: redis, url: redis://… }');
    else {
      const kind = oneOf(p, s, 'kind', 'store.', ['file', 'redis'] as const, 'file');
      if (kind === 'file') {
        unknownKeys(p, s, 'store.', ['kind', 'path', 'maxBytes']);
        store = { kind, path: str(p, s, 'path', 'store.', false) ?? './data', maxBytes: int(p, s, 'maxBytes', 'store.', DEFAULT_STORE_MAX_BYTES, 64 * 1024, Number.MAX_SAFE_INTEGER) };
      } else {
        unknownKeys(p, s, 'store.', ['kind', 'url', 'prefix', 'localPath']);
        store = { kind, url: redisUrl(p, s) ?? '', prefix: str(p, s, 'prefix', 'store.', false) ?? 'trustgate:', localPath: str(p, s, 'localPath', 'store.', false) ?? './data/replica' };
      }
    }
  }

  const upstreams: UpstreamConfig[] = [];
  /** upstreams[k] is doc.upstreams[upstreamAt[k]]: an entry that failed to parse leaves a gap. */
  const upstreamAt: number[] = [];
  if (!Array.isArray(doc.upstreams) || doc.upstreams.length === 0) p.add('upstreams', doc.upstreams, 'a non-empty list of upstream registries');
  else doc.upstreams.forEach((u, i) => { const x = parseUpstream(p, u, i); if (x) upstreams.push(x); if (x) upstreamAt.push(i); });
  const names = upstreams.map((u) => u.name);
  for (const n of names) if (names.indexOf(n) !== names.lastIndexOf(n)) p.add('upstreams', n, 'unique upstream names');
  checkSignatureRepositories(p, upstreams, upstreamAt);

  const def = doc.default;
  if (def !== undefined && (typeof def !== 'string' || !names.includes(def))) p.add('default', def, `the name of an upstream (${names.join(', ')})`);

  const limitsDoc = isObj(doc.limits) ? doc.limits : {};
  if (doc.limits !== undefined && !isObj(doc.limits)) p.add('limits', doc.limits, 'a mapping');
  unknownKeys(p, limitsDoc, 'limits.', ['manifestBytes', 'upstreamTimeoutMs', 'trustCacheSeconds', 'shutdownGraceSeconds', 'shutdownSeconds', 'verifyBlobDigests', 'bundleWarnDays', 'maxSignatures', 'signatureBytes', 'maxTagsListed', ...CLIENT_LIMIT_KEYS]);
  const vbd = limitsDoc.verifyBlobDigests;
  if (vbd !== undefined && typeof vbd !== 'boolean') p.add('limits.verifyBlobDigests', vbd, 'true or false');
  const limits = {
    manifestBytes: int(p, limitsDoc, 'manifestBytes', 'limits.', 4 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    upstreamTimeoutMs: int(p, limitsDoc, 'upstreamTimeoutMs', 'limits.', 30_000, 100, 600_000),
    trustCacheSeconds: int(p, limitsDoc, 'trustCacheSeconds', 'limits.', 300, 0, 86_400),
    shutdownGraceSeconds: int(p, limitsDoc, 'shutdownGraceSeconds', 'limits.', 30, 0, 3600),
    shutdownSeconds: int(p, limitsDoc, 'shutdownSeconds', 'limits.', 10, 1, 3600),
    verifyBlobDigests: vbd !== false,
    bundleWarnDays: int(p, limitsDoc, 'bundleWarnDays', 'limits.', 7, 0, 3650),
    // Signature discovery (issue 27): a budget per verification, docs/signatures.md, "Discovery with a budget".
    maxSignatures: int(p, limitsDoc, 'maxSignatures', 'limits.', 128, 1, 4096),
    signatureBytes: int(p, limitsDoc, 'signatureBytes', 'limits.', 4 * 1024 * 1024, 64 * 1024, 256 * 1024 * 1024),
    maxTagsListed: int(p, limitsDoc, 'maxTagsListed', 'limits.', 1000, 1, 100_000),
    ...parseClientLimits(p, limitsDoc),
  };

  const logDoc = isObj(doc.log) ? doc.log : {};
  if (doc.log !== undefined && !isObj(doc.log)) p.add('log', doc.log, 'a mapping with level, format');
  unknownKeys(p, logDoc, 'log.', ['level', 'format']);
  const log = {
    level: oneOf(p, logDoc, 'level', 'log.', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    format: logDoc.format === undefined ? undefined : oneOf(p, logDoc, 'format', 'log.', LOG_FORMATS, 'json'),
  };

  const { audit, workers } = parseAuditAndWorkers(p, doc);
  const trustPinning = parsePinning(p, doc.trust_pinning);
  const blobCache = parseBlobCache(p, doc.blobCache, store);
  const cacheDoc = isObj(doc.cache) ? doc.cache : {};
  if (doc.cache !== undefined && !isObj(doc.cache)) p.add('cache', doc.cache, 'a mapping');
  unknownKeys(p, cacheDoc, 'cache.', ['digestRevalidateSeconds', 'tagTtlSeconds']);
  const cache = {
    digestRevalidateSeconds: int(p, cacheDoc, 'digestRevalidateSeconds', 'cache.', 3600, 0, 30 * 86_400),
    tagTtlSeconds: int(p, cacheDoc, 'tagTtlSeconds', 'cache.', 10, 0, 3600),
  };
  if (p.list.length > 0) throw fail('CONFIG_INVALID', `${source} is invalid:\n  - ${p.list.join('\n  - ')}`);
  return deepFreeze({ listen, store, upstreams, default: def as string | undefined, trustPinning, limits, log, blobCache, audit, workers, cache });
}
