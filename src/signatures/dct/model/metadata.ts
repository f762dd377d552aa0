// Notary v1 metadata models (tuf/data/*.go) parsed from bytes. Pure; structure rules only — signatures,
// expiry and versions are checked by the trusted set. Notary's formats differ from the TUF spec that
// tuf-js implements (keys carry x509 chains, snapshot meta has no versions, no path_hash_prefixes,
// canonical JSON is docker/go's), which is why this is not built on tuf-js.
import { fail } from '../../../errors.js';
import { canonicalBytes, parseJson, type JsonValue } from '../verify/canonical-json.js';
import { makeKey, type PublicKey } from '../verify/keys.js';
import type { Signature } from '../verify/signatures.js';
import { arr, b64, bool, int, obj, optObj, str, strArr, time, type JsonObject } from './json-fields.js';
import { isDelegationName, parentRoleOf } from './names.js';

export type RoleName = string; // 'root' | 'targets' | 'snapshot' | 'timestamp' | 'targets/…'
export const BASE_ROLES = ['root', 'targets', 'snapshot', 'timestamp'] as const;

export interface Envelope {
  /** The `signed` object as parsed; signatures cover its canonical form, not the wire bytes. */
  signed: JsonObject;
  canonical: Buffer;
  signatures: Signature[];
  /** Bytes as downloaded: what parent metadata hashes (raw-bytes hashing, not canonical). */
  raw: Uint8Array;
}

export interface Common {
  type: 'Root' | 'Targets' | 'Snapshot' | 'Timestamp';
  version: number;
  expires: Date;
}

export interface RoleKeys {
  keyids: string[];
  threshold: number;
}

export interface Root extends Common {
  type: 'Root';
  keys: Map<string, PublicKey>;
  roles: Record<'root' | 'targets' | 'snapshot' | 'timestamp', RoleKeys>;
  consistentSnapshot: boolean;
}

export interface FileMeta {
  length: number;
  hashes: { sha256?: Buffer; sha512?: Buffer; [alg: string]: Buffer | undefined };
  custom?: JsonValue;
}

export interface DelegatedRole extends RoleKeys {
  name: RoleName;
  /** Path prefixes; an absent list signs nothing (notary has no path_hash_prefixes). */
  paths: string[];
}

export interface Targets extends Common {
  type: 'Targets';
  targets: Map<string, FileMeta>;
  delegationKeys: Map<string, PublicKey>;
  delegations: DelegatedRole[];
}

export interface Snapshot extends Common {
  type: 'Snapshot';
  meta: Map<RoleName, FileMeta>;
}

export interface Timestamp extends Common {
  type: 'Timestamp';
  meta: Map<'snapshot', FileMeta>;
}

export function parseEnvelope(raw: Uint8Array, what: string): Envelope {
  const top = obj(parseJson(raw, what), what);
  const signed = obj(top.signed, `${what}.signed`);
  const signatures = arr(top.signatures, `${what}.signatures`).map((s, i) => {
    const o = obj(s, `${what}.signatures[${i}]`);
    return {
      keyid: str(o.keyid, `${what}.signatures[${i}].keyid`),
      method: str(o.method, `${what}.signatures[${i}].method`).toLowerCase(),
      sig: b64(o.sig, `${what}.signatures[${i}].sig`),
    };
  });
  return { signed, canonical: canonicalBytes(signed), signatures, raw };
}

function parseCommon<T extends Common['type']>(s: JsonObject, type: T, what: string): Common & { type: T } {
  if (s._type !== type) throw fail('MALFORMED', `${what}: _type must be "${type}", got ${JSON.stringify(s._type)}`);
  const version = int(s.version, `${what}.version`);
  if (version < 1) throw fail('MALFORMED', `${what}: version must be at least 1`);
  return { type, version, expires: time(s.expires, `${what}.expires`) };
}

function parseKeys(v: JsonValue | undefined, what: string): Map<string, PublicKey> {
  const keys = new Map<string, PublicKey>();
  for (const [id, k] of Object.entries(optObj(v, what))) {
    const ko = obj(k, `${what}.${id}`);
    const keyval = obj(ko.keyval, `${what}.${id}.keyval`);
    const pub = b64(keyval.public, `${what}.${id}.keyval.public`).toString('base64');
    // The map key is kept as written: a key that hashes to another ID fails when a signature uses it.
    keys.set(id, makeKey(str(ko.keytype, `${what}.${id}.keytype`), pub));
  }
  return keys;
}

function parseRoleKeys(v: JsonValue | undefined, keys: Map<string, PublicKey>, what: string): RoleKeys {
  const o = obj(v, what);
  const keyids = strArr(o.keyids, `${what}.keyids`);
  const threshold = int(o.threshold, `${what}.threshold`);
  if (threshold < 1) throw fail('MALFORMED', `${what}: threshold must be at least 1`);
  for (const id of keyids) if (!keys.has(id)) throw fail('MALFORMED', `${what}: key ${id} is not in keys`);
  return { keyids, threshold };
}

/** tuf/data/root.go isValidRootStructure. */
export function parseRoot(env: Envelope, what = 'root'): Root {
  const s = env.signed;
  const common = parseCommon(s, 'Root', what);
  const keys = parseKeys(s.keys, `${what}.keys`);
  const roles = obj(s.roles, `${what}.roles`);
  const r = (name: (typeof BASE_ROLES)[number]) => {
    if (roles[name] === undefined) throw fail('MALFORMED', `${what}: roles.${name} is missing`);
    return parseRoleKeys(roles[name], keys, `${what}.roles.${name}`);
  };
  return {
    ...common,
    keys,
    roles: { root: r('root'), targets: r('targets'), snapshot: r('snapshot'), timestamp: r('timestamp') },
    consistentSnapshot: bool(s.consistent_snapshot, `${what}.consistent_snapshot`),
  };
}

export function parseFileMeta(v: JsonValue | undefined, what: string): FileMeta {
  const o = obj(v, what);
  const length = int(o.length, `${what}.length`);
  if (length < 0) throw fail('MALFORMED', `${what}: negative length`);
  const hashes: FileMeta['hashes'] = {};
  for (const [alg, h] of Object.entries(optObj(o.hashes, `${what}.hashes`))) hashes[alg] = b64(h, `${what}.hashes.${alg}`);
  return o.custom === undefined ? { length, hashes } : { length, hashes, custom: o.custom };
}

/** tuf/data/types.go CheckValidHashStructures: sha256 required (32 bytes), sha512 if present 64. */
function requireHashes(m: FileMeta, what: string): void {
  if (m.hashes.sha256?.length !== 32) throw fail('MALFORMED', `${what}: sha256 hash missing or not 32 bytes`);
  if (m.hashes.sha512 !== undefined && m.hashes.sha512.length !== 64) throw fail('MALFORMED', `${what}: sha512 hash not 64 bytes`);
}

/** tuf/data/targets.go isValidTargetsStructure; `role` is the role this file is for. */
export function parseTargets(env: Envelope, role: RoleName): Targets {
  const s = env.signed;
  const common = parseCommon(s, 'Targets', role);
  const targets = new Map<string, FileMeta>();
  for (const [name, m] of Object.entries(optObj(s.targets, `${role}.targets`))) {
    targets.set(name, parseFileMeta(m, `${role}.targets[${JSON.stringify(name)}]`));
  }
  const d = optObj(s.delegations, `${role}.delegations`);
  const delegationKeys = parseKeys(d.keys, `${role}.delegations.keys`);
  const delegations = arr(d.roles, `${role}.delegations.roles`).map((r, i) => {
    const w = `${role}.delegations.roles[${i}]`;
    const o = obj(r, w);
    const name = str(o.name, `${w}.name`);
    // A role may only delegate to its direct children: targets → targets/a, never targets/a/b.
    if (!isDelegationName(name) || parentRoleOf(name) !== role) {
      throw fail('MALFORMED', `${role}: ${JSON.stringify(name)} is not a valid delegation of ${role}`);
    }
    return { name, ...parseRoleKeys(o, delegationKeys, w), paths: strArr(o.paths, `${w}.paths`) };
  });
  return { ...common, targets, delegationKeys, delegations };
}

export function parseSnapshot(env: Envelope): Snapshot {
  const s = env.signed;
  const common = parseCommon(s, 'Snapshot', 'snapshot');
  const meta = new Map<RoleName, FileMeta>();
  for (const [name, m] of Object.entries(obj(s.meta, 'snapshot.meta'))) meta.set(name, parseFileMeta(m, `snapshot.meta.${name}`));
  for (const name of ['root', 'targets']) {
    const m = meta.get(name);
    if (!m) throw fail('MALFORMED', `snapshot: meta.${name} is missing`);
    requireHashes(m, `snapshot.meta.${name}`);
  }
  return { ...common, meta };
}

export function parseTimestamp(env: Envelope): Timestamp {
  const s = env.signed;
  const common = parseCommon(s, 'Timestamp', 'timestamp');
  const m = obj(s.meta, 'timestamp.meta');
  if (m.snapshot === undefined) throw fail('MALFORMED', 'timestamp: meta.snapshot is missing');
  const snap = parseFileMeta(m.snapshot, 'timestamp.meta.snapshot');
  requireHashes(snap, 'timestamp.meta.snapshot');
  return { ...common, meta: new Map([['snapshot', snap]]) };
}
