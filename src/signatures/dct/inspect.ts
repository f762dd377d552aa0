// What `docker trust inspect` showed (docker/cli cli/command/trust/inspect.go, common.go), computed
// from a verified set. Pure.
import { canonicalKeyId } from './verify/keys.js';
import type { TrustedSet } from './trusted-set.js';

export interface TrustInspection {
  Name: string;
  SignedTags: Array<{ SignedTag: string; Digest: string; Signers: string[] }>;
  Signers: Array<{ Name: string; Keys: Array<{ ID: string }> }>;
  AdministrativeKeys: Array<{ Name: 'Root' | 'Repository'; Keys: Array<{ ID: string }> }>;
  /** DCT trust is frozen (notary.frozenAt): the instant; the set shown is the one verified before it. */
  Frozen?: string | undefined;
}

const RELEASES = 'targets/releases';

export function inspectTrust(name: string, set: TrustedSet): TrustInspection {
  // Rows: tags signed in targets/releases or targets (releases first, as pulls resolve them).
  const rows = new Map<string, string>();
  for (const role of [RELEASES, 'targets']) {
    for (const [tag, meta] of set.targets.get(role)?.targets.targets ?? []) {
      if (!rows.has(tag) && meta.hashes.sha256) rows.set(tag, meta.hashes.sha256.toString('hex'));
    }
  }
  // Signers: every other delegation; a tag lists those that signed the same digest.
  const signerRoles = [...set.targets.values()].filter((r) => r.role.name !== 'targets' && r.role.name !== RELEASES);
  const SignedTags = [...rows.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([tag, hex]) => {
      const signers = signerRoles.filter((r) => r.targets.targets.get(tag)?.hashes.sha256?.toString('hex') === hex).map((r) => r.role.name.slice('targets/'.length));
      return { SignedTag: tag, Digest: hex, Signers: signers.length ? signers.sort() : ['Repo Admin'] };
    });
  const keysOf = (ids: string[], keys: ReadonlyMap<string, import('./verify/keys.js').PublicKey>) =>
    ids.flatMap((id) => (keys.has(id) ? [{ ID: canonicalKeyId(keys.get(id)!) }] : [])).sort((a, b) => (a.ID < b.ID ? -1 : 1));
  const Signers = signerRoles
    .map((r) => {
      const parent = set.targets.get(r.role.name.slice(0, r.role.name.lastIndexOf('/')));
      return { Name: r.role.name.slice('targets/'.length), Keys: parent ? keysOf(r.role.keyids, parent.targets.delegationKeys) : [] };
    })
    .sort((a, b) => (a.Name < b.Name ? -1 : 1));
  const root = set.root.root;
  return {
    ...(set.frozenAt ? { Frozen: set.frozenAt.toISOString() } : {}),
    Name: name,
    SignedTags,
    Signers,
    AdministrativeKeys: [
      // Root keys by their certificate key ID (as root.json lists them), repository keys canonical.
      { Name: 'Root', Keys: root.roles.root.keyids.map((ID) => ({ ID })).sort((a, b) => (a.ID < b.ID ? -1 : 1)) },
      { Name: 'Repository', Keys: keysOf(root.roles.targets.keyids, root.keys) },
    ],
  };
}

export function formatInspection(i: TrustInspection): string {
  const pad = (rows: string[][]) => {
    const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(w[c]! + 3))).join('')).join('\n');
  };
  const out = [`Signatures for ${i.Name}${i.Frozen ? ` (frozen ${i.Frozen}: trust verified before the notary server was frozen)` : ''}`, ''];
  out.push(i.SignedTags.length ? pad([['SIGNED TAG', 'DIGEST', 'SIGNERS'], ...i.SignedTags.map((t) => [t.SignedTag, t.Digest, t.Signers.join(', ')])]) : `No signatures for ${i.Name}`);
  out.push('');
  if (i.Signers.length) {
    out.push(`List of signers and their keys for ${i.Name}:`, '');
    out.push(pad([['SIGNER', 'KEYS'], ...i.Signers.map((s) => [s.Name, s.Keys.map((k) => k.ID.slice(0, 12)).join(', ')])]), '');
  } else out.push(`No signers for ${i.Name}`, '');
  out.push(`Administrative keys for ${i.Name}:`, '');
  for (const a of [...i.AdministrativeKeys].reverse()) out.push(`  ${a.Name === 'Root' ? 'Root Key' : 'Repository Key'}:\t${a.Keys.map((k) => k.ID).join(', ')}`);
  return out.join('\n');
}
