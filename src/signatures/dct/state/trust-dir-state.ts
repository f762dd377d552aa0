// Seed state from metadata verified earlier, laid out as notary's trust dir keeps it
// (<trust_dir>/tuf/<GUN>/metadata/*.json, or any dir with root.json and the role files): its root is
// the anchor and the versions it holds are the rollback floors.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fail } from '../../../errors.js';
import type { TrustState } from '../client.js';
import { parseJson } from '../verify/canonical-json.js';
import { isObject } from '../model/json-fields.js';

async function listJson(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.json')) out.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  }
  return out;
}

export async function loadTrustDirState(dir: string): Promise<TrustState> {
  let root: Buffer;
  try {
    root = await readFile(join(dir, 'root.json'));
  } catch (err) {
    throw fail('USAGE', `--trusted-dir ${dir} has no readable root.json`, err);
  }
  const versions: Record<string, number> = {};
  for (const file of await listJson(dir)) {
    const rel = relative(dir, file).replace(/\\/g, '/');
    const m = /^((?:root|targets|snapshot|timestamp)(?:\/[-a-z0-9_/]+)?)\.json$/.exec(rel);
    if (!m) continue; // N.root.json and checksum names carry no floor of their own
    const doc = parseJson(await readFile(file), rel);
    const signed = isObject(doc) ? doc.signed : undefined;
    const v = isObject(signed) ? signed.version : undefined;
    if (typeof v === 'number' && Number.isSafeInteger(v)) versions[m[1]!] = v;
  }
  return { root, versions };
}
