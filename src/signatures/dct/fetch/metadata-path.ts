// File names of Notary v1 metadata, as notary-server routes them (server/server.go RootHandler).
import { fail } from '../../../errors.js';
import type { MetadataRequest } from '../client.js';
import { isDelegationName } from '../model/names.js';

const BASE = new Set(['root', 'targets', 'snapshot', 'timestamp']);

/** Role names become path segments: anything but a base role or a clean delegation name is refused. */
export function checkRoleName(role: string): void {
  if (!BASE.has(role) && !isDelegationName(role)) throw fail('MALFORMED', `invalid role name ${JSON.stringify(role)}`);
}

/** `<role>.json`, `<role>.<sha256>.json` or `<version>.root.json`, relative to …/_trust/tuf/. */
export function metadataFileName(req: Pick<MetadataRequest, 'role' | 'sha256' | 'version'>): string {
  checkRoleName(req.role);
  if (req.version !== undefined) {
    if (!Number.isSafeInteger(req.version) || req.version < 1) throw fail('MALFORMED', `invalid version ${req.version}`);
    return `${req.version}.${req.role}.json`;
  }
  if (req.sha256 !== undefined) {
    if (!/^[0-9a-f]{64}$/.test(req.sha256)) throw fail('MALFORMED', `invalid checksum ${req.sha256}`);
    return `${req.role}.${req.sha256}.json`;
  }
  return `${req.role}.json`;
}
