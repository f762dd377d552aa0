// What a re-signed signature records about the Docker Content Trust verdict it carries forward:
// which role signed the tag, with which keys, and when trustgate verified that. Written as
// annotations on the signature manifest (docs/resign.md) and as the report's `dct` field. Pure.
import type { SignedTarget } from '../signatures/dct/resolve-tag.js';
import type { TrustedSet } from '../signatures/dct/trusted-set.js';
import { verifySignature } from '../signatures/dct/verify/signatures.js';
import type { PublicKey } from '../signatures/dct/verify/keys.js';

export const ANNOTATION_ROLE = 'io.trustgate.dct.role';
export const ANNOTATION_KEYIDS = 'io.trustgate.dct.keyids';
export const ANNOTATION_VERIFIED_AT = 'io.trustgate.dct.verifiedAt';
export const ANNOTATION_GUN = 'io.trustgate.dct.gun';
export const ANNOTATION_TAG = 'io.trustgate.dct.tag';

export interface DctProvenance {
  gun: string;
  tag: string;
  role: string;
  /** Key IDs of the role's keys whose signature over the role's metadata verifies. */
  keyIds: string[];
  /** When the verified set the tag resolved from was verified (RFC 3339). */
  verifiedAt: string;
}

/** The keys a role is allowed to sign with: the root's for `targets`, the parent's delegation keys below it. */
function roleKeys(set: TrustedSet, role: string): ReadonlyMap<string, PublicKey> {
  if (role === 'targets') return set.root.root.keys;
  const parent = set.targets.get(role.slice(0, role.lastIndexOf('/')));
  return parent?.targets.delegationKeys ?? new Map();
}

export function dctProvenance(set: TrustedSet, target: SignedTarget): DctProvenance {
  const loaded = set.targets.get(target.role);
  const keys = roleKeys(set, target.role);
  const ids = new Set<string>();
  for (const s of loaded?.env.signatures ?? []) {
    const key = loaded!.role.keyids.includes(s.keyid) ? keys.get(s.keyid) : undefined;
    // The set was verified against its threshold already; this names which keys made it.
    if (key && verifySignature(key, s.method, loaded!.env.canonical, s.sig)) ids.add(s.keyid);
  }
  return { gun: target.gun, tag: target.tag, role: target.role, keyIds: [...ids].sort(), verifiedAt: set.now.toISOString() };
}

export function provenanceAnnotations(p: DctProvenance): Record<string, string> {
  return { [ANNOTATION_GUN]: p.gun, [ANNOTATION_TAG]: p.tag, [ANNOTATION_ROLE]: p.role, [ANNOTATION_KEYIDS]: p.keyIds.join(','), [ANNOTATION_VERIFIED_AT]: p.verifiedAt };
}
