// Role names and GUNs. Pure.
import { posix } from 'node:path';

/** tuf/data/roles.go IsDelegation: `targets/` prefix, [-a-z0-9_/], < 256 chars, already clean. */
export function isDelegationName(name: string): boolean {
  return (
    name.startsWith('targets/') &&
    name.length < 256 &&
    /^[-a-z0-9_/]+$/.test(name) &&
    posix.normalize(name) === name &&
    !name.endsWith('/')
  );
}

/** path.Dir of a role name: the role that must declare it. */
export function parentRoleOf(name: string): string {
  return posix.dirname(name);
}

/** Delegation depth below `targets` (targets/releases = 1). */
export function delegationDepth(name: string): number {
  return name.split('/').length - 1;
}

// A GUN is a docker reference name: registry host[:port] then path components of
// [a-z0-9] separated by . _ __ or -+ (distribution/reference grammar). We also use it to build URL
// paths and file names, so anything outside the grammar is refused before any I/O.
const HOST = String.raw`(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]{1,5})?`;
const COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`;
const GUN_RE = new RegExp(`^(?:${HOST}/)?${COMPONENT}(?:/${COMPONENT})*$`);

export function isValidGun(gun: string): boolean {
  return gun.length <= 255 && GUN_RE.test(gun);
}

/** Docker's tag grammar; also what a notary target name must look like for a tag lookup. */
export function isValidTag(tag: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag);
}
