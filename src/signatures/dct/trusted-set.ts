// The pure state machine of one update: accepts metadata strictly in the order
// timestamp → snapshot → targets → delegations (notary client/tufclient.go update, tuf/builder.go),
// checking every link. No I/O and no clock: `now` is fixed once per update (TUF spec 5.1).
import { createHash } from 'node:crypto';
import { fail, type TrustgateError } from '../../errors.js';
import {
  parseEnvelope,
  parseSnapshot,
  parseTargets,
  parseTimestamp,
  type DelegatedRole,
  type Envelope,
  type FileMeta,
  type RoleName,
  type Snapshot,
  type Targets,
  type Timestamp,
} from './model/metadata.js';
import { delegationDepth } from './model/names.js';
import { checkThreshold, verifyThreshold } from './verify/signatures.js';
import type { TrustedRoot } from './verify/root.js';
import { parsePemCertificates, WEAK_SIGNATURE_OIDS } from './verify/x509.js';
import type { PublicKey } from './verify/keys.js';

/** Highest version accepted before, per role: the rollback floor. Persisted by the caller. */
export type VersionFloors = Record<RoleName, number>;

export interface SetLimits {
  /** Delegation depth below targets (targets/releases = 1). notary has none; an endless tree is an attack. */
  maxDelegationDepth: number;
  /** Delegated roles loaded per repository. */
  maxDelegations: number;
}

export const DEFAULT_SET_LIMITS: SetLimits = { maxDelegationDepth: 8, maxDelegations: 64 };

export interface LoadedTargets {
  role: DelegatedRole; // for `targets`: threshold/keys from root, paths [""]
  targets: Targets;
  env: Envelope;
}

/** A delegation notary skips with a warning (expired, threshold unmet) instead of failing. */
export interface SkippedRole {
  role: RoleName;
  code: TrustgateError['code'];
  reason: string;
}

export class TrustedSet {
  timestamp?: { env: Envelope; ts: Timestamp };
  snapshot?: { env: Envelope; snap: Snapshot };
  readonly targets = new Map<RoleName, LoadedTargets>();
  readonly skipped: SkippedRole[] = [];

  constructor(
    readonly gun: string,
    readonly root: TrustedRoot,
    readonly now: Date,
    private readonly floors: Readonly<VersionFloors>,
    readonly limits: SetLimits = DEFAULT_SET_LIMITS,
    /**
     * Frozen DCT trust: the instant of the freeze. Timestamp and snapshot are signed by keys the
     * notary server holds, and nobody renews them once it is gone, so their expiry is checked at the
     * freeze instead of now: the frozen set must have been current when trust was frozen. The signer's
     * own roles (root, targets, delegations) keep their expiry at `now`.
     */
    readonly frozenAt?: Date | undefined,
  ) {}

  /** Versions of everything accepted, merged over the floors we started from (never lowered). */
  versions(): VersionFloors {
    const out: VersionFloors = { ...this.floors };
    const bump = (role: string, v: number) => (out[role] = Math.max(out[role] ?? 0, v));
    bump('root', this.root.root.version);
    if (this.timestamp) bump('timestamp', this.timestamp.ts.version);
    if (this.snapshot) bump('snapshot', this.snapshot.snap.version);
    for (const [name, t] of this.targets) bump(name, t.targets.version);
    return out;
  }

  private roleKeys(role: 'timestamp' | 'snapshot' | 'targets'): Map<string, PublicKey> {
    const r = this.root.root;
    return new Map(r.roles[role].keyids.flatMap((id) => (r.keys.has(id) ? [[id, r.keys.get(id)!]] : [])));
  }

  // TUF 5.4.3 / notary VerifyVersion: rollback attack.
  private checkVersion(role: RoleName, version: number): void {
    const floor = this.floors[role] ?? 0;
    if (version < floor) {
      throw fail('ROLLBACK', `${this.gun} ${role}: version ${version} is lower than current version ${floor}`);
    }
  }

  // TUF 5.4.4: freeze attack. notary IsExpired: expired when expires < now, no grace.
  private checkExpiry(role: RoleName, expires: Date): void {
    const serverManaged = role === 'timestamp' || role === 'snapshot';
    const at = serverManaged && this.frozenAt && this.frozenAt < this.now ? this.frozenAt : this.now;
    if (expires < at) throw fail('EXPIRED', `${this.gun} ${role} expired at ${expires.toISOString()}${at === this.now ? '' : `, before DCT trust was frozen at ${at.toISOString()}`}`);
  }

  /** Step 1: timestamp.json, signed by the root's timestamp keys. */
  loadTimestamp(raw: Uint8Array): void {
    const env = parseEnvelope(raw, 'timestamp');
    const ts = parseTimestamp(env);
    const role = this.root.root.roles.timestamp;
    verifyThreshold('timestamp', env.canonical, env.signatures, this.roleKeys('timestamp'), role.threshold);
    this.checkVersion('timestamp', ts.version);
    this.checkExpiry('timestamp', ts.expires);
    this.timestamp = { env, ts };
  }

  /** What the timestamp says the snapshot must be (hash + length cap). */
  snapshotMeta(): FileMeta {
    if (!this.timestamp) throw new Error('snapshot requested before timestamp');
    return this.timestamp.ts.meta.get('snapshot')!;
  }

  /** Step 2: snapshot, hash-linked from the timestamp (mix-and-match). */
  loadSnapshot(raw: Uint8Array): void {
    checkHashes(raw, this.snapshotMeta(), `${this.gun} snapshot`);
    const env = parseEnvelope(raw, 'snapshot');
    const snap = parseSnapshot(env);
    verifyThreshold('snapshot', env.canonical, env.signatures, this.roleKeys('snapshot'), this.root.root.roles.snapshot.threshold);
    this.checkVersion('snapshot', snap.version);
    this.checkExpiry('snapshot', snap.expires);
    this.snapshot = { env, snap };
  }

  /** Snapshot meta for a role, or undefined when the snapshot does not list it. */
  metaFor(role: RoleName): FileMeta | undefined {
    if (!this.snapshot) throw new Error(`${role} requested before snapshot`);
    return this.snapshot.snap.meta.get(role);
  }

  /**
   * notary validateChecksumsFromSnapshot: the root we trust must be the root the snapshot lists. When it
   * is not, the caller fetches root.<sha256>.json, rotates, and starts the update again.
   */
  rootIsCurrent(): boolean {
    const m = this.metaFor('root');
    return m !== undefined && hashesMatch(this.root.env.raw, m);
  }

  /** Step 3: top-level targets, hash-linked from the snapshot, signed by the root's targets keys. */
  loadTargets(raw: Uint8Array): LoadedTargets {
    const meta = this.metaFor('targets')!;
    checkHashes(raw, meta, `${this.gun} targets`);
    const env = parseEnvelope(raw, 'targets');
    const targets = parseTargets(env, 'targets');
    const keys = this.root.root.roles.targets;
    verifyThreshold('targets', env.canonical, env.signatures, this.roleKeys('targets'), keys.threshold);
    this.checkVersion('targets', targets.version);
    this.checkExpiry('targets', targets.expires);
    const loaded: LoadedTargets = { role: { name: 'targets', ...keys, paths: [''] }, targets, env };
    this.targets.set('targets', loaded);
    return loaded;
  }

  /**
   * The valid children of a loaded role, with paths restricted to the parent's
   * (tuf/data/roles.go Restrict): a child can never sign outside what its parent may sign.
   */
  childrenOf(parent: LoadedTargets): Array<{ role: DelegatedRole; keys: Map<string, PublicKey> }> {
    return parent.targets.delegations.map((d) => ({
      role: { ...d, paths: d.paths.filter((p) => parent.role.paths.some((pp) => p.startsWith(pp))) },
      keys: new Map(d.keyids.flatMap((id) => (parent.targets.delegationKeys.has(id) ? [[id, parent.targets.delegationKeys.get(id)!]] : []))),
    }));
  }

  /**
   * Step 4: one delegation, hash-linked from the snapshot, signed by the keys its parent names.
   * Returns null when notary would skip it with a warning (expired or threshold not met) — its
   * subtree is then not walked. Anything else is fatal, as in notary's downloadTargets.
   */
  loadDelegation(role: DelegatedRole, keys: Map<string, PublicKey>, raw: Uint8Array): LoadedTargets | null {
    const where = `${this.gun} ${role.name}`;
    if (delegationDepth(role.name) > this.limits.maxDelegationDepth) {
      throw fail('TOO_LARGE', `${where}: delegation deeper than ${this.limits.maxDelegationDepth}`);
    }
    if (this.targets.size > this.limits.maxDelegations) {
      throw fail('TOO_LARGE', `${this.gun}: more than ${this.limits.maxDelegations} delegated roles`);
    }
    const meta = this.metaFor(role.name);
    if (!meta) throw new Error(`${role.name} is not in the snapshot`);
    checkHashes(raw, meta, where);
    const env = parseEnvelope(raw, role.name);
    const targets = parseTargets(env, role.name);
    // notary checks a delegation's version before its signatures: a rollback is fatal, not skippable.
    this.checkVersion(role.name, targets.version);
    for (const k of keys.values()) checkDelegationCert(k, where);
    const sig = checkThreshold(role.name, env.canonical, env.signatures, keys, role.threshold);
    if (!sig.ok) {
      if (sig.fatal) throw fail(sig.code, `${this.gun} ${sig.message}`);
      this.skipped.push({ role: role.name, code: sig.code, reason: sig.message });
      return null;
    }
    if (targets.expires < this.now) {
      this.skipped.push({ role: role.name, code: 'EXPIRED', reason: `${role.name} expired at ${targets.expires.toISOString()}` });
      return null;
    }
    const loaded: LoadedTargets = { role, targets, env };
    this.targets.set(role.name, loaded);
    return loaded;
  }
}

/** Delegation certificate keys must pass ValidateCertificate without the expiry check (tuf/tuf.go). */
function checkDelegationCert(key: PublicKey, where: string): void {
  if (key.keytype !== 'ecdsa-x509' && key.keytype !== 'rsa-x509') return;
  const certs = parsePemCertificates(Buffer.from(key.publicB64, 'base64').toString('utf8'));
  const leaf = certs?.[0];
  if (!leaf) throw fail('SIGNATURE_INVALID', `${where}: delegation key ${key.id} does not hold a certificate`);
  if (leaf.notBefore > leaf.notAfter || WEAK_SIGNATURE_OIDS.has(leaf.signatureAlgorithmOid) || (leaf.keyAlgorithm === 'rsa' && (leaf.rsaBits ?? 0) < 2048)) {
    throw fail('SIGNATURE_INVALID', `${where}: delegation key ${key.id} has an unusable certificate`);
  }
}

function digestOf(alg: 'sha256' | 'sha512', data: Uint8Array): Buffer {
  return createHash(alg).update(data).digest();
}

/** True when every known hash listed matches and at least one is known. */
export function hashesMatch(raw: Uint8Array, meta: FileMeta): boolean {
  let known = 0;
  for (const alg of ['sha256', 'sha512'] as const) {
    const want = meta.hashes[alg];
    if (!want) continue;
    known++;
    if (!digestOf(alg, raw).equals(want)) return false;
  }
  return known > 0;
}

/**
 * tuf/data/types.go CheckHashes over the raw bytes as downloaded (never re-serialized): mix-and-match
 * and tampering. `length` is a cap in notary; longer is refused before hashing.
 */
export function checkHashes(raw: Uint8Array, meta: FileMeta, what: string): void {
  if (raw.length > meta.length) throw fail('TOO_LARGE', `${what}: ${raw.length} bytes, more than the ${meta.length} its parent lists`);
  if (!meta.hashes.sha256 && !meta.hashes.sha512) throw fail('HASH_MISMATCH', `${what}: no checksums for supported algorithms`);
  if (!hashesMatch(raw, meta)) throw fail('HASH_MISMATCH', `${what}: content does not match the hash its parent signed`);
}
