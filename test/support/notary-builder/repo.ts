// A signed mock Notary v1 repository (in the spirit of tuf-js's repo-mock): root, targets, snapshot,
// timestamp and delegations, signed over the builder's own canonical JSON, as the files a notary
// server serves for one GUN. Every file stays editable: re-sign it, tamper with it without re-signing,
// re-serialize it, relink the snapshot/timestamp hashes, rotate the root.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { canonicalJson, wireJson, type Json, type WireOptions } from './canonical-json.js';
import { keyJson, makeKey, sha256B64, signBytes, type SignOptions, type TestKey } from './keys.js';
import { makeCertKey } from './x509.js';

/** A clock far from any real date, so no test passes by accident of when it runs. */
export const DEFAULT_NOW = new Date('2030-01-01T00:00:00Z');
const YEAR = 365 * 24 * 3600 * 1000;

/** A signer: a key (with its default method), or a key with a changed keyid/method/encoding. */
export type Signer = TestKey | ({ key: TestKey; keyid?: string; mangle?: (sig: Buffer) => Buffer } & SignOptions);

/** Target meta: manifest bytes (hashed here) or a literal FileMeta object. */
export type TargetValue = string | Buffer | { [key: string]: Json };

export interface RoleOptions {
  keys?: TestKey[];
  threshold?: number;
  /** Who signs (default: all the role's keys). */
  signers?: Signer[];
  version?: number;
  expires?: Date | string;
}

export interface DelegationOptions extends RoleOptions {
  /** `targets/releases`, `targets/releases/ci`, …; declared in its parent's file. */
  name: string;
  /** Path prefixes (default [""]); null leaves `paths` out. */
  paths?: string[] | null;
  tags?: Record<string, TargetValue>;
  /** false: declared by the parent but left out of snapshot meta. */
  inSnapshot?: boolean;
  /** Extra fields of the role entry in the parent (e.g. `path_hash_prefixes`). */
  extra?: { [key: string]: Json };
}

export interface BuildOptions {
  gun: string;
  /** The clock the repository is made for: default expiries are a year after it. */
  now?: Date;
  /** Default `expires` of every role. */
  expires?: Date | string;
  /** Root certificate keys (default: one ecdsa-x509 key with CN = GUN). */
  rootKeys?: TestKey[];
  /** Root role threshold. */
  threshold?: number;
  root?: RoleOptions;
  targets?: RoleOptions;
  snapshot?: RoleOptions;
  timestamp?: RoleOptions;
  tags?: Record<string, TargetValue>;
  delegations?: DelegationOptions[];
  /** Wire form of every file (default: compact, canonical key order, HTML escapes: as notary). */
  wire?: WireOptions;
  /** Change a role's `signed` object before it is signed (structure attacks), by file name. */
  edit?: Record<string, (signed: Signed) => void>;
}

export type Signed = { [key: string]: Json };
export interface EnvelopeJson {
  signed: Signed;
  signatures: Array<{ keyid: string; method: string; sig: string }>;
  [extra: string]: Json;
}

export const toDate = (d: Date | string): string => (typeof d === 'string' ? d : d.toISOString().replace(/\.000Z$/, 'Z'));

/** `{"hashes":{"sha256":B64},"length":N}` over exact bytes, as snapshot/timestamp meta lists them. */
export function fileMeta(bytes: Uint8Array, opts: { sha512?: boolean } = {}): { hashes: { [alg: string]: string }; length: number } {
  const hashes: { [alg: string]: string } = { sha256: sha256B64(bytes) };
  if (opts.sha512) hashes.sha512 = createHash('sha512').update(bytes).digest('base64');
  return { hashes, length: bytes.length };
}

/** The digest docker pulls for a tag whose manifest is `content`. */
export function digestOf(content: string | Buffer): string {
  return 'sha256:' + createHash('sha256').update(content).digest('hex');
}

function targetMeta(v: TargetValue): Json {
  if (typeof v === 'string' || Buffer.isBuffer(v)) return fileMeta(Buffer.from(v));
  return v;
}

/** File name of a role: `targets/releases` → `targets/releases.json`. */
export const fileOf = (role: string): string => (role.endsWith('.json') ? role : `${role}.json`);

/** The signatures list for `signed`, over the builder's canonical form. */
export function signaturesFor(signed: Json, signers: readonly Signer[]): EnvelopeJson['signatures'] {
  const msg = canonicalJson(signed);
  return signers.map((s) => {
    const { key, keyid, mangle, ...opts } = 'key' in s ? s : { key: s };
    let sig = signBytes(key, msg, opts);
    if (mangle) sig = mangle(sig);
    return { keyid: keyid ?? key.id, method: opts.method ?? key.method, sig: sig.toString('base64') };
  });
}

export class Repo {
  readonly gun: string;
  readonly now: Date;
  /** File name → bytes as served: root.json, timestamp.json, snapshot.json, targets.json, targets/<x>.json, N.root.json. */
  readonly files = new Map<string, Buffer>();
  /** Keys per role name (root, targets, snapshot, timestamp, targets/…). */
  readonly keys = new Map<string, TestKey[]>();
  /** Default signers per file. */
  readonly signers = new Map<string, Signer[]>();
  /** Wire options per file (default: the repository's). */
  readonly wire = new Map<string, WireOptions>();
  readonly defaultWire: WireOptions;

  constructor(gun: string, now: Date, wire: WireOptions = {}) {
    this.gun = gun;
    this.now = now;
    this.defaultWire = wire;
  }

  /** Bytes of a file (throws when absent). */
  file(name: string): Buffer {
    const b = this.files.get(fileOf(name));
    if (!b) throw new Error(`no ${fileOf(name)} in the repository`);
    return b;
  }

  envelope(name: string): EnvelopeJson {
    return JSON.parse(this.file(name).toString('utf8')) as EnvelopeJson;
  }

  signed(name: string): Signed {
    return this.envelope(name).signed;
  }

  version(name: string): number {
    return this.signed(name).version as number;
  }

  /** Replace a file's bytes (e.g. with an older copy). */
  setFile(name: string, bytes: Uint8Array | string): this {
    this.files.set(fileOf(name), Buffer.from(bytes));
    return this;
  }

  /** Write an envelope (signed + signatures, + extra top-level fields) in the file's wire form. */
  writeEnvelope(name: string, env: EnvelopeJson): this {
    const file = fileOf(name);
    const { signed, signatures, ...extra } = env;
    return this.setFile(file, wireJson({ signed, signatures, ...extra } as Json, this.wire.get(file) ?? this.defaultWire));
  }

  /** Sign `signed` for a file with its default signers (or `signers`) and store it. */
  sign(name: string, signed: Signed, signers?: readonly Signer[]): this {
    const file = fileOf(name);
    return this.writeEnvelope(file, { signed, signatures: signaturesFor(signed, signers ?? this.signers.get(file) ?? []) });
  }

  /** Change a file's `signed` and sign it again (no relink: call relink() when parents must follow). */
  resign(name: string, mutate?: (signed: Signed) => void, opts: { signers?: readonly Signer[] } = {}): this {
    const signed = this.signed(name);
    mutate?.(signed);
    return this.sign(name, signed, opts.signers);
  }

  /** Change a file's `signed` but keep the old signatures (they no longer match). */
  tamper(name: string, mutate: (signed: Signed) => void): this {
    const env = this.envelope(name);
    mutate(env.signed);
    return this.writeEnvelope(name, env);
  }

  /** Change anything in the envelope (signatures, extra fields) without signing. */
  editEnvelope(name: string, mutate: (env: EnvelopeJson) => void): this {
    const env = this.envelope(name);
    mutate(env);
    return this.writeEnvelope(name, env);
  }

  /** Same JSON value, other bytes: signatures stay valid, parent hashes no longer match. */
  reserialize(name: string, wire: WireOptions): this {
    this.wire.set(fileOf(name), wire);
    return this.writeEnvelope(name, this.envelope(name));
  }

  /** Add 1 to a file's version and re-sign it. */
  bump(name: string): this {
    return this.resign(name, (s) => void (s.version = (s.version as number) + 1));
  }

  /**
   * Recompute snapshot meta (root, targets, every delegation it lists) over the current bytes and the
   * timestamp's meta.snapshot, and re-sign both. `bump` raises their versions as a publish does;
   * `timestampOnly` leaves the snapshot as it is (to serve an old one under a new timestamp).
   */
  relink(opts: { bump?: boolean; timestampOnly?: boolean } = {}): this {
    const bump = (s: Signed) => {
      if (opts.bump) s.version = (s.version as number) + 1;
    };
    if (!opts.timestampOnly) {
      this.resign('snapshot', (s) => {
        const meta = s.meta as { [role: string]: Json };
        for (const role of Object.keys(meta)) {
          const bytes = this.files.get(fileOf(role));
          if (bytes) meta[role] = { ...(meta[role] as object), ...fileMeta(bytes, { sha512: hasSha512(meta[role]) }) };
        }
        bump(s);
      });
    }
    return this.resign('timestamp', (s) => {
      const meta = s.meta as { snapshot: Json };
      meta.snapshot = { ...(meta.snapshot as object), ...fileMeta(this.file('snapshot'), { sha512: hasSha512(meta.snapshot) }) };
      bump(s);
    });
  }

  /**
   * Publish root version N+1 whose root role is `newKeys`, signed by the current root keys
   * (signWithOld) and/or the new ones (signWithNew) plus `extraSigners`. Keeps `N.root.json` for every
   * version, as notary-server does, and (unless relink: false) relinks with bumped versions.
   */
  rotateRoot(
    newKeys: TestKey[],
    opts: { signWithOld?: boolean; signWithNew?: boolean; extraSigners?: Signer[]; threshold?: number; expires?: Date | string; relink?: boolean } = {},
  ): this {
    const old = this.signed('root');
    const oldKeys = this.keys.get('root') ?? [];
    const version = (old.version as number) + 1;
    const roles = old.roles as { [role: string]: { keyids: string[]; threshold: number } };
    const keys = old.keys as { [id: string]: Json };
    for (const k of oldKeys) if (!newKeys.some((n) => n.id === k.id)) delete keys[k.id];
    for (const k of newKeys) keys[k.id] = keyJson(k);
    roles.root = { keyids: newKeys.map((k) => k.id), threshold: opts.threshold ?? roles.root!.threshold };
    const signed: Signed = { ...old, version, ...(opts.expires ? { expires: toDate(opts.expires) } : {}) };
    const signers = [...(opts.signWithOld ?? true ? oldKeys : []), ...(opts.signWithNew ?? true ? newKeys : []), ...(opts.extraSigners ?? [])];
    this.keys.set('root', newKeys);
    this.signers.set('root.json', newKeys);
    this.sign('root', signed, signers);
    this.files.set(`${version}.root.json`, this.file('root'));
    return opts.relink === false ? this : this.relink({ bump: true });
  }

  /** An independent copy (files, keys, signers, wire options). */
  copy(): Repo {
    const r = new Repo(this.gun, this.now, this.defaultWire);
    for (const [k, v] of this.files) r.files.set(k, Buffer.from(v));
    for (const [k, v] of this.keys) r.keys.set(k, [...v]);
    for (const [k, v] of this.signers) r.signers.set(k, [...v]);
    for (const [k, v] of this.wire) r.wire.set(k, { ...v });
    return r;
  }

  /** Lay the files out as notary-server serves a GUN (and as DirectoryFetcher reads them). */
  async writeTo(dir: string): Promise<void> {
    for (const [name, bytes] of this.files) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), bytes);
    }
  }
}

function hasSha512(meta: Json | undefined): boolean {
  return typeof meta === 'object' && meta !== null && !Array.isArray(meta) && typeof meta.hashes === 'object' && meta.hashes !== null && 'sha512' in meta.hashes;
}

const defaultKeys = new Map<string, TestKey>();
function defaultKey(role: string): TestKey {
  let k = defaultKeys.get(role);
  if (!k) {
    k = makeKey('ecdsa', `default ${role}`);
    defaultKeys.set(role, k);
  }
  return k;
}

/**
 * A complete signed repository. Defaults: a root ecdsa-x509 key with CN = GUN; ecdsa targets,
 * snapshot and timestamp keys; thresholds 1; versions 1; every role expiring a year after `now`;
 * delegations with one ecdsa key each and paths [""]. Synchronous (openssl runs via execFileSync);
 * `await buildRepo(…)` works too.
 */
export function buildRepo(opts: BuildOptions): Repo {
  const now = opts.now ?? DEFAULT_NOW;
  const repo = new Repo(opts.gun, now, opts.wire);
  const expires = toDate(opts.expires ?? new Date(now.getTime() + YEAR));
  const rootKeys = opts.rootKeys ?? opts.root?.keys ?? [makeCertKey({ cn: opts.gun, label: 'default root' })];
  const roleKeys = (role: 'targets' | 'snapshot' | 'timestamp') => opts[role]?.keys ?? [defaultKey(role)];
  const base = { root: rootKeys, targets: roleKeys('targets'), snapshot: roleKeys('snapshot'), timestamp: roleKeys('timestamp') };
  const roleOpts: Record<string, RoleOptions | undefined> = { root: { threshold: opts.threshold, ...opts.root }, targets: opts.targets, snapshot: opts.snapshot, timestamp: opts.timestamp };
  for (const [role, keys] of Object.entries(base)) {
    repo.keys.set(role, keys);
    repo.signers.set(fileOf(role), roleOpts[role]?.signers ?? keys);
  }
  const edit = (file: string, s: Signed) => {
    opts.edit?.[file]?.(s);
    return s;
  };
  const common = (type: string, o: RoleOptions | undefined) => ({ _type: type, expires: o?.expires ? toDate(o.expires) : expires, version: o?.version ?? 1 });

  const allKeys = new Map<string, TestKey>();
  for (const k of Object.values(base).flat()) allKeys.set(k.id, k);
  const rootSigned: Signed = {
    ...common('Root', opts.root),
    consistent_snapshot: false,
    keys: Object.fromEntries([...allKeys.values()].map((k) => [k.id, keyJson(k)])),
    roles: Object.fromEntries(
      Object.entries(base).map(([role, keys]) => [role, { keyids: keys.map((k) => k.id), threshold: roleOpts[role]?.threshold ?? 1 }]),
    ),
  };
  repo.sign('root', edit('root.json', rootSigned));
  repo.files.set(`${rootSigned.version as number}.root.json`, repo.file('root'));

  const delegations = opts.delegations ?? [];
  const delegationKeys = new Map(delegations.map((d) => [d.name, d.keys ?? [makeKey('ecdsa', `delegation ${d.name}`)]]));
  const targetsSigned = (role: string, tags: Record<string, TargetValue>, o: RoleOptions | undefined): Signed => {
    const children = delegations.filter((d) => d.name.slice(0, d.name.lastIndexOf('/')) === role);
    const keys = new Map(children.flatMap((c) => delegationKeys.get(c.name)!.map((k) => [k.id, keyJson(k)] as const)));
    return edit(fileOf(role), {
      ...common('Targets', o),
      delegations: {
        keys: Object.fromEntries(keys),
        roles: children.map((c) => ({
          name: c.name,
          keyids: delegationKeys.get(c.name)!.map((k) => k.id),
          threshold: c.threshold ?? 1,
          ...(c.paths === null ? {} : { paths: c.paths ?? [''] }),
          ...c.extra,
        })),
      },
      targets: Object.fromEntries(Object.entries(tags).map(([t, v]) => [t, targetMeta(v)])),
    });
  };
  repo.sign('targets', targetsSigned('targets', opts.tags ?? {}, opts.targets));
  for (const d of delegations) {
    const keys = delegationKeys.get(d.name)!;
    repo.keys.set(d.name, keys);
    repo.signers.set(fileOf(d.name), d.signers ?? keys);
    repo.sign(d.name, targetsSigned(d.name, d.tags ?? {}, d));
  }

  const snapMeta: { [role: string]: Json } = { root: fileMeta(repo.file('root')), targets: fileMeta(repo.file('targets')) };
  for (const d of delegations) if (d.inSnapshot !== false) snapMeta[d.name] = fileMeta(repo.file(d.name));
  repo.sign('snapshot', edit('snapshot.json', { ...common('Snapshot', opts.snapshot), meta: snapMeta }));
  repo.sign('timestamp', edit('timestamp.json', { ...common('Timestamp', opts.timestamp), meta: { snapshot: fileMeta(repo.file('snapshot')) } }));
  return repo;
}


