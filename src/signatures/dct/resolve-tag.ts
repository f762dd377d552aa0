// Tag → signed target, as the docker CLI (pre-v29 cli/command/image/trust.go) resolved it over
// notary's client/reader.go GetTargetByName("targets/releases", "targets"). Pure over a loaded set.
import { fail } from '../../errors.js';
import type { FileMeta, RoleName } from './model/metadata.js';
import type { LoadedTargets, SkippedRole } from './trusted-set.js';

export interface SignedTarget {
  gun: string;
  tag: string;
  /** "sha256:<hex>" of the manifest: hex of the base64-decoded hashes.sha256. */
  digest: string;
  length: number;
  role: RoleName;
}

export const PRIORITY_ROLES = ['targets/releases', 'targets'] as const;

function isAncestorRole(child: string, ancestor: string): boolean {
  return child === ancestor || child.startsWith(ancestor + '/');
}

// Loaded roles carry their paths already restricted to their parent's (TrustedSet.childrenOf).
function childNames(r: LoadedTargets): RoleName[] {
  return r.targets.delegations.map((d) => d.name);
}

/**
 * tuf/tuf.go WalkTargets: breadth-first from `targets`; a role is visited when it is `rolePath` or
 * below it, one of its (restricted) paths is a prefix of the name, and it is not skipped.
 */
function walk(
  roles: ReadonlyMap<RoleName, LoadedTargets>,
  name: string,
  rolePath: string,
  skip: readonly string[],
): { role: RoleName; meta: FileMeta } | undefined {
  const queue: RoleName[] = ['targets'];
  for (let guard = 0; queue.length > 0 && guard < 10_000; guard++) {
    const loaded = roles.get(queue.shift()!);
    if (!loaded) continue; // absent from the snapshot, skipped as invalid, or never loaded
    const roleName = loaded.role.name;
    if (rolePath.startsWith(roleName + '/')) {
      queue.push(...childNames(loaded));
      continue;
    }
    if (loaded.role.paths.some((p) => name.startsWith(p)) && isAncestorRole(roleName, rolePath) && !skip.includes(roleName)) {
      const meta = loaded.targets.targets.get(name);
      if (meta) return { role: roleName, meta };
    }
    if (isAncestorRole(roleName, rolePath)) queue.push(...childNames(loaded));
  }
  return undefined;
}

/**
 * Docker's rule: look in targets/releases (and its subtree), then targets (and the rest), and accept
 * only a hit in targets/releases or targets — a tag signed only by another delegation is not trusted.
 */
export function resolveTag(
  gun: string,
  tag: string,
  roles: ReadonlyMap<RoleName, LoadedTargets>,
  skipped: readonly SkippedRole[] = [],
): SignedTarget {
  for (const rolePath of PRIORITY_ROLES) {
    const hit = walk(roles, tag, rolePath, PRIORITY_ROLES.filter((r) => r !== rolePath));
    if (!hit) continue;
    if (hit.role !== 'targets/releases' && hit.role !== 'targets') {
      throw fail('TAG_NOT_SIGNED', `no valid trust data for ${tag}: it is signed only by ${hit.role}, which docker does not trust for pulls`);
    }
    const sha = hit.meta.hashes.sha256;
    if (!sha || sha.length !== 32) throw fail('TAG_NOT_SIGNED', `no valid trust data for ${tag}: no valid hash, expecting sha256`);
    return { gun, tag, digest: `sha256:${sha.toString('hex')}`, length: hit.meta.length, role: hit.role };
  }
  const why = skipped.length ? ` (ignored: ${skipped.map((s) => s.reason).join('; ')})` : '';
  throw fail('TAG_NOT_SIGNED', `no valid trust data for ${tag} in ${gun}${why}`);
}
