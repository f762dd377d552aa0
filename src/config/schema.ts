// The configuration contract (DESIGN.md "Config"): types, defaults and validation in one place.
// Validation collects every problem, each naming the key, the value and what is expected, and the
// result is deep-frozen: bad config fails at start, never on the first request.
import { fail } from '../errors.js';
import { parseRedisUrl } from '../store/redis-url.js';

export type PolicyMode = 'enforce' | 'audit' | 'off';
/** Which signatures a tag needs: Docker Content Trust, Notation, either, or both (the migration path). */
export type RequireMode = 'dct' | 'notation' | 'any-of' | 'all-of';
export const REQUIRE_MODES: readonly RequireMode[] = ['dct', 'notation', 'any-of', 'all-of'];
export const POLICY_MODES: readonly PolicyMode[] = ['enforce', 'audit', 'off'];

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
}

export interface RepositoryPolicy {
  /** Glob over the repository name: `*` matches within a path segment, `**` across segments. */
  match: string;
  policy: PolicyMode;
  require?: RequireMode | undefined;
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
  require: RequireMode;
  /** notation's own files: trustpolicy.json and the trust store directory (x509/<type>/<name>/). */
  notation?: { trustPolicy: string; trustStore: string } | undefined;
  repositories: readonly RepositoryPolicy[];
  username?: string | undefined;
  passwordEnv?: string | undefined;
  realms?: readonly string[] | undefined;
  /** PEM CA bundle file for the registry's TLS. */
  ca?: string | undefined;
}

export interface TrustPinningConfig {
  certs: Readonly<Record<string, readonly string[]>>;
  /** GUN prefix → CA bundle file. */
  ca: Readonly<Record<string, string>>;
  disableTofu: boolean;
}

export interface Config {
  listen: { host: string; port: number };
  store: { kind: 'file'; path: string } | { kind: 'redis'; url: string; prefix: string };
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
    /** Warn (log and metric) when an imported trust bundle expires within this many days. */
    bundleWarnDays: number;
    /**
     * Hash every full blob on the way through and cut the response on a mismatch. Clients verify blob
     * digests themselves; this is defence in depth that costs throughput (README benchmarks).
     */
    verifyBlobDigests: boolean;
  };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}

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
  unknownKeys(p, v, path, ['url', 'ca', 'username', 'passwordEnv', 'realms', 'timeoutMs']);
  const u = url(p, v, 'url', path, ['https:']);
  const username = str(p, v, 'username', path, false);
  const passwordEnv = str(p, v, 'passwordEnv', path, false);
  if ((username === undefined) !== (passwordEnv === undefined)) p.add(`${path}passwordEnv`, v.passwordEnv, 'username and passwordEnv together');
  const realms = strList(p, v, 'realms', path);
  for (const r of realms ?? []) if (!/^https:\/\//.test(r)) p.add(`${path}realms`, r, 'https origins');
  return u === undefined
    ? undefined
    : { url: u, ca: str(p, v, 'ca', path, false), username, passwordEnv, realms, timeoutMs: int(p, v, 'timeoutMs', path, 15_000, 100, 600_000) };
}

function parseUpstream(p: Problems, v: unknown, i: number): UpstreamConfig | undefined {
  const path = `upstreams[${i}].`;
  if (!isObj(v)) return p.add(`upstreams[${i}]`, v, 'a mapping with name, registry, gun, notary, policy');
  unknownKeys(p, v, path, ['name', 'registry', 'gun', 'notary', 'bundle', 'policy', 'require', 'notation', 'repositories', 'username', 'passwordEnv', 'realms', 'ca']);
  const name = str(p, v, 'name', path, true);
  if (name !== undefined && !NAME.test(name)) p.add(`${path}name`, name, 'lower-case letters, digits, - and _');
  const registry = url(p, v, 'registry', path, ['http:', 'https:']);
  const gun = str(p, v, 'gun', path, true);
  if (gun !== undefined && !GUN_PREFIX.test(gun)) p.add(`${path}gun`, gun, 'a registry host[:port] optionally followed by /path');
  const policy = oneOf(p, v, 'policy', path, POLICY_MODES, 'enforce');
  const require = oneOf(p, v, 'require', path, REQUIRE_MODES, 'dct');
  const notary = parseNotary(p, v.notary, `${path}notary.`);
  let notation: UpstreamConfig['notation'];
  if (v.notation !== undefined) {
    const n = v.notation;
    if (typeof n !== 'object' || n === null || Array.isArray(n)) p.add(`${path}notation`, n, 'a mapping with trustPolicy and trustStore');
    else {
      unknownKeys(p, n as Obj, `${path}notation.`, ['trustPolicy', 'trustStore']);
      const tp = str(p, n as Obj, 'trustPolicy', `${path}notation.`, true);
      const ts = str(p, n as Obj, 'trustStore', `${path}notation.`, true);
      if (tp && ts) notation = { trustPolicy: tp, trustStore: ts };
    }
  }
  if (v.bundle !== undefined && typeof v.bundle !== 'boolean') p.add(`${path}bundle`, v.bundle, 'true or false');
  const bundle = v.bundle === true;
  if (bundle && v.notary !== undefined) p.add(`${path}bundle`, v.bundle, 'either a notary server or bundle: true, not both');
  const repositoriesNeed: Array<{ require: RequireMode | undefined; policy: unknown }> = Array.isArray(v.repositories)
    ? v.repositories.map((r) => {
        const o = (typeof r === 'object' && r !== null ? r : {}) as Obj;
        return { require: REQUIRE_MODES.includes(o.require as RequireMode) ? (o.require as RequireMode) : undefined, policy: o.policy };
      })
    : [];
  const needsDct = (r: RequireMode) => r !== 'notation';
  const needsNotation = (r: RequireMode) => r !== 'dct';
  if (!notary && !bundle && policy !== 'off' && needsDct(require)) {
    p.add(`${path}notary`, v.notary, `a notary server (policy ${policy} needs one; or bundle: true for imported trust bundles; or policy: off to serve unverified)`);
  }
  if (!notation && policy !== 'off' && needsNotation(require)) p.add(`${path}notation`, v.notation, `trustPolicy and trustStore (require: ${require} needs Notation)`);
  // A repository pattern may ask for more than the upstream's default: what it needs must be configured too.
  repositoriesNeed.forEach(({ require: r, policy: rp }, j) => {
    if (rp === 'off' || r === undefined) return;
    if (needsNotation(r) && !notation) p.add(`${path}repositories[${j}].require`, r, 'notation configured on the upstream (trustPolicy and trustStore)');
    if (needsDct(r) && !notary && !bundle) p.add(`${path}repositories[${j}].require`, r, 'a notary server or bundle: true on the upstream');
  });
  const repositories: RepositoryPolicy[] = [];
  if (v.repositories !== undefined) {
    if (!Array.isArray(v.repositories)) p.add(`${path}repositories`, v.repositories, 'a list of {match, policy}');
    else
      v.repositories.forEach((r, j) => {
        const rp = `${path}repositories[${j}].`;
        if (!isObj(r)) return p.add(`${path}repositories[${j}]`, r, 'a mapping {match, policy}');
        unknownKeys(p, r, rp, ['match', 'policy', 'require']);
        const match = str(p, r, 'match', rp, true);
        const pol = oneOf(p, r, 'policy', rp, POLICY_MODES, 'enforce');
        if (r.policy === undefined) p.add(`${rp}policy`, undefined, `one of ${POLICY_MODES.join(', ')}`);
        const req = r.require === undefined ? undefined : oneOf(p, r, 'require', rp, REQUIRE_MODES, 'dct');
        if (match !== undefined) repositories.push({ match, policy: pol, require: req });
      });
  }
  const username = str(p, v, 'username', path, false);
  const passwordEnv = str(p, v, 'passwordEnv', path, false);
  if ((username === undefined) !== (passwordEnv === undefined)) p.add(`${path}passwordEnv`, v.passwordEnv, 'username and passwordEnv together');
  const realms = strList(p, v, 'realms', path);
  if (name === undefined || registry === undefined || gun === undefined) return undefined;
  return { name, registry, gun, notary, bundle, policy, require, notation, repositories, username, passwordEnv, realms, ca: str(p, v, 'ca', path, false) };
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

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Validate a parsed YAML document; throws CONFIG_INVALID listing every problem. */
export function validateConfig(doc: unknown, source: string): Config {
  const p = new Problems();
  if (!isObj(doc)) throw fail('CONFIG_INVALID', `${source}: the top level must be a mapping`);
  unknownKeys(p, doc, '', ['listen', 'store', 'upstreams', 'default', 'trust_pinning', 'limits', 'log']);

  let listen = { host: '127.0.0.1', port: 5050 };
  const l = doc.listen;
  const lm = typeof l === 'string' ? /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(l) : null;
  if (l !== undefined) {
    if (!lm || Number(lm[2]) > 65535) p.add('listen', l, 'HOST:PORT, e.g. 127.0.0.1:5050');
    else listen = { host: lm[1]!.replace(/^\[|\]$/g, ''), port: Number(lm[2]) };
  }

  let store: Config['store'] = { kind: 'file', path: './data' };
  const s = doc.store;
  if (s !== undefined) {
    if (!isObj(s)) p.add('store', s, '{ kind: file, path: DIR } or { kind: redis, url: redis://… }');
    else {
      const kind = oneOf(p, s, 'kind', 'store.', ['file', 'redis'] as const, 'file');
      if (kind === 'file') {
        unknownKeys(p, s, 'store.', ['kind', 'path']);
        store = { kind, path: str(p, s, 'path', 'store.', false) ?? './data' };
      } else {
        unknownKeys(p, s, 'store.', ['kind', 'url', 'prefix']);
        store = { kind, url: redisUrl(p, s) ?? '', prefix: str(p, s, 'prefix', 'store.', false) ?? 'trustgate:' };
      }
    }
  }

  const upstreams: UpstreamConfig[] = [];
  if (!Array.isArray(doc.upstreams) || doc.upstreams.length === 0) p.add('upstreams', doc.upstreams, 'a non-empty list of upstream registries');
  else doc.upstreams.forEach((u, i) => { const x = parseUpstream(p, u, i); if (x) upstreams.push(x); });
  const names = upstreams.map((u) => u.name);
  for (const n of names) if (names.indexOf(n) !== names.lastIndexOf(n)) p.add('upstreams', n, 'unique upstream names');

  const def = doc.default;
  if (def !== undefined && (typeof def !== 'string' || !names.includes(def))) p.add('default', def, `the name of an upstream (${names.join(', ')})`);

  const limitsDoc = isObj(doc.limits) ? doc.limits : {};
  if (doc.limits !== undefined && !isObj(doc.limits)) p.add('limits', doc.limits, 'a mapping');
  unknownKeys(p, limitsDoc, 'limits.', ['manifestBytes', 'upstreamTimeoutMs', 'trustCacheSeconds', 'shutdownGraceSeconds', 'verifyBlobDigests', 'bundleWarnDays']);
  const vbd = limitsDoc.verifyBlobDigests;
  if (vbd !== undefined && typeof vbd !== 'boolean') p.add('limits.verifyBlobDigests', vbd, 'true or false');
  const limits = {
    manifestBytes: int(p, limitsDoc, 'manifestBytes', 'limits.', 4 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    upstreamTimeoutMs: int(p, limitsDoc, 'upstreamTimeoutMs', 'limits.', 30_000, 100, 600_000),
    trustCacheSeconds: int(p, limitsDoc, 'trustCacheSeconds', 'limits.', 300, 0, 86_400),
    shutdownGraceSeconds: int(p, limitsDoc, 'shutdownGraceSeconds', 'limits.', 30, 0, 3600),
    verifyBlobDigests: vbd !== false,
    bundleWarnDays: int(p, limitsDoc, 'bundleWarnDays', 'limits.', 7, 0, 3650),
  };

  const logDoc = isObj(doc.log) ? doc.log : {};
  const log = { level: oneOf(p, logDoc, 'level', 'log.', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info') };

  const trustPinning = parsePinning(p, doc.trust_pinning);
  if (p.list.length > 0) throw fail('CONFIG_INVALID', `${source} is invalid:\n  - ${p.list.join('\n  - ')}`);
  return deepFreeze({ listen, store, upstreams, default: def as string | undefined, trustPinning, limits, log });
}
