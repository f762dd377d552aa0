// Test helper: load a builder repository into a TrustedSet the way TrustClient.attempt does
// (timestamp → snapshot → targets → pre-order DFS of delegations), minus the I/O.
import { parseEnvelope } from '../../../src/signatures/dct/model/metadata.js';
import { TrustedSet, type SetLimits, type VersionFloors } from '../../../src/signatures/dct/trusted-set.js';
import { validateRoot } from '../../../src/signatures/dct/verify/root.js';
import type { Repo } from '../../support/notary-builder/index.js';

export function loadSet(repo: Repo, o: { floors?: VersionFloors; now?: Date; limits?: SetLimits } = {}): TrustedSet {
  const now = o.now ?? repo.now;
  const root = validateRoot({ gun: repo.gun, env: parseEnvelope(repo.file('root'), 'root'), now, checkExpiry: true });
  const set = new TrustedSet(repo.gun, root, now, o.floors ?? {}, o.limits);
  set.loadTimestamp(repo.file('timestamp'));
  set.loadSnapshot(repo.file('snapshot'));
  const top = set.loadTargets(repo.file('targets'));
  const pending = set.childrenOf(top);
  while (pending.length > 0) {
    const { role, keys } = pending.shift()!;
    if (!set.metaFor(role.name)) continue;
    const loaded = set.loadDelegation(role, keys, repo.file(role.name));
    if (loaded) pending.unshift(...set.childrenOf(loaded));
  }
  return set;
}
