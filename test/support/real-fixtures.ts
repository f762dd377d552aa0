// Metadata sets signed by the real notary CLI and notary-server at each step of a repository's life
// (test/support/generate-real-notary.sh, run afresh per test run), and the client-held keys to
// re-sign tampered copies with.
import { execFile } from 'node:child_process';
import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { canonicalBytes, type JsonValue } from '../../src/signatures/dct/verify/canonical-json.js';
import { makeKey, nodeKeyOf } from '../../src/signatures/dct/verify/keys.js';

const GENERATE = fileURLToPath(new URL('./generate-real-notary.sh', import.meta.url));

export interface RealManifest {
  generatedAt: string;
  now: string;
  gun: string;
  gunOther: string;
  passphrases: Record<string, string>;
  files: Record<string, { digest: string; length: number }>;
  ca: string;
}

/** A metadata set as a map: 'root', 'timestamp', 'targets/releases', '2.root' → bytes. */
export type MetadataSet = Map<string, Buffer>;

export interface RealFixtures {
  dir: string;
  manifest: RealManifest;
  loadSet(name: string): MetadataSet;
  setDir(name: string): string;
  loadKeys(): Map<string, KeyObject[]>;
}

/** Run the generator into `dir` (a real notary-server and CLI, ~10 s) and open what it wrote. */
export async function generateRealFixtures(dir: string): Promise<RealFixtures> {
  await promisify(execFile)('bash', [GENERATE, dir], { timeout: 120_000 });
  const manifest: RealManifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  return {
    dir,
    manifest,
    loadSet: (name) => loadSet(join(dir, name)),
    setDir: (name) => join(dir, name),
    loadKeys: () => loadKeys(join(dir, 'keys'), manifest),
  };
}

function loadSet(dir: string): MetadataSet {
  const out: MetadataSet = new Map();
  const walk = (d: string, prefix: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p, `${prefix}${f}/`);
      else if (f.endsWith('.json')) out.set(prefix + f.slice(0, -5), readFileSync(p));
    }
  };
  walk(dir, '');
  return out;
}

/** Client-held private keys by role, decrypted (notary writes encrypted PKCS#8 with a `role:` header). */
function loadKeys(dir: string, manifest: RealManifest): Map<string, KeyObject[]> {
  const out = new Map<string, KeyObject[]>();
  for (const f of readdirSync(dir)) {
    const text = readFileSync(join(dir, f), 'utf8');
    const role = /^role: (.+)$/m.exec(text)?.[1];
    if (!role) continue;
    const pem = text.replace(/^[a-z]+: .*\n/gm, '').replace(/-----\n\n/, '-----\n');
    const key = createPrivateKey({ key: pem, passphrase: manifest.passphrases[role] ?? '' });
    out.set(role, [...(out.get(role) ?? []), key]);
  }
  return out;
}

type Doc = { signed: Record<string, JsonValue>; signatures: Array<{ keyid: string; method: string; sig: string }> };

export function parseDoc(b: Buffer): Doc {
  return JSON.parse(b.toString('utf8'));
}

export function writeDoc(d: Doc): Buffer {
  return Buffer.from(JSON.stringify(d));
}

/** Edit `signed` and replace the signatures with ones by `keys` under the given key IDs (ecdsa, r‖s). */
export function resign(b: Buffer, edit: (signed: Record<string, JsonValue>) => void, signers: Array<{ keyid: string; key: KeyObject }>): Buffer {
  const d = parseDoc(b);
  edit(d.signed);
  const msg = canonicalBytes(d.signed);
  d.signatures = signers.map(({ keyid, key }) => ({
    keyid,
    method: 'ecdsa',
    sig: sign('sha256', msg, { key, dsaEncoding: 'ieee-p1363' }).toString('base64'),
  }));
  return writeDoc(d);
}

/** The private key (among the fixture's client-held keys) for `role` as listed in a root, with its key ID there. */
export function signerFor(rootBytes: Buffer, role: string, keys: Map<string, KeyObject[]>): { keyid: string; key: KeyObject } {
  const root = parseDoc(rootBytes).signed as unknown as {
    keys: Record<string, { keytype: string; keyval: { public: string } }>;
    roles: Record<string, { keyids: string[] }>;
  };
  for (const keyid of root.roles[role]?.keyids ?? []) {
    const k = root.keys[keyid]!;
    const pub = nodeKeyOf(makeKey(k.keytype, k.keyval.public))?.export({ format: 'der', type: 'spki' });
    for (const priv of keys.get(role) ?? []) {
      if (pub && createPublicKey(priv).export({ format: 'der', type: 'spki' }).equals(pub)) return { keyid, key: priv };
    }
  }
  throw new Error(`no fixture private key for ${role}`);
}
