// docs/upstreams.md (issue 24): every YAML block marked `config-check` passes `trustgate config check`
// (the built CLI), with the files it names created under a temp dir in place of /etc/trustgate/ —
// real PEM certificates and cosign keys, a structurally real Sigstore trusted_root.json — and its
// passwordEnv variables set. No example is skipped: one that config check refuses fails here.
// The Notation example's trustpolicy.json block is also read by trustgate's own parser, and its trust
// store layout by the loader `start` uses. (docker-hub-frozen needs notary.frozenAt, issue 22: it
// fails on a tree without that key, by design — the example is what operators will copy.)
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTrustPolicy, selectPolicy } from '../../src/signatures/notation/trust-policy.js';
import { loadTrustStore } from '../../src/signatures/notation/trust-store.js';
import { makeCosignKey } from '../support/cosign-sign.js';
import { makePki, type Pki } from '../support/pki.js';
import { startFulcio, startRekor, trustedRootJson, type FulcioStandIn, type RekorStandIn } from '../support/sigstore-lab.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { runCli } from '../support/trustgate-process.js';

const DOC = readFileSync(fileURLToPath(new URL('../../docs/upstreams.md', import.meta.url)), 'utf8');

/** The fenced block right after each `<!-- KIND: name -->` marker. */
function blocks(kind: string): Array<{ name: string; text: string }> {
  return [...DOC.matchAll(new RegExp(`<!-- ${kind}: ([\\w-]+) -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\\n\`\`\``, 'g'))].map((m) => ({ name: m[1]!, text: m[2]! }));
}

let dir: string;
let pki: Pki;
let fulcio: FulcioStandIn;
let rekor: RekorStandIn;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-upstreams-doc-'));
  pki = await makePki(dir);
  [fulcio, rekor] = await Promise.all([startFulcio(), startRekor()]);
});
afterAll(async () => {
  for (const s of [fulcio?.server, rekor?.server]) await new Promise((r) => (s ? s.close(() => r(undefined)) : r(undefined)));
  await stopAndRemove(dir);
});

/** Creates what each /etc/trustgate/ path names, by the key it is under. */
function createFiles(node: unknown, key: string, root: string): void {
  if (Array.isArray(node)) return node.forEach((n) => createFiles(n, key, root));
  if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) createFiles(v, k, root);
    return;
  }
  if (typeof node !== 'string' || !node.startsWith(root)) return;
  mkdirSync(key === 'trustStore' ? node : dirname(node), { recursive: true });
  if (key === 'ca') copyFileSync(pki.caFile, node);
  else if (key === 'keys') writeFileSync(node, makeCosignKey().publicPem);
  else if (key === 'trustedRoot') writeFileSync(node, trustedRootJson([fulcio], [rekor]));
  else if (key === 'trustPolicy') writeFileSync(node, blocks('trust-policy')[0]!.text);
  else if (key === 'trustStore') {
    // The named store the trust policy refers to, with the certificate `az keyvault certificate download` gives.
    for (const ref of parseTrustPolicy(blocks('trust-policy')[0]!.text).trustPolicies.flatMap((p) => p.trustStores)) {
      mkdirSync(join(node, 'x509', ref.type, ref.name), { recursive: true });
      copyFileSync(pki.caFile, join(node, 'x509', ref.type, ref.name, 'wabbit-networks-io.pem'));
    }
  } else throw new Error(`the test does not know what file ${key}: ${node} is`);
}

describe('docs/upstreams.md', () => {
  const examples = blocks('config-check');

  it('has the worked configurations the issue asks for', () => {
    expect(examples.map((e) => e.name)).toEqual(['docker-hub', 'docker-hub-frozen', 'acr-dct', 'acr-notation', 'harbor-cosign', 'ghcr-cosign-keyless']);
    const hub = parse(examples[0]!.text) as { upstreams: Array<Record<string, any>> };
    expect(hub.upstreams[0]).toMatchObject({ registry: 'https://registry-1.docker.io', gun: 'docker.io', realms: ['https://auth.docker.io'], notary: { url: 'https://notary.docker.io' } });
    const frozen = parse(examples[1]!.text) as { upstreams: Array<Record<string, any>> };
    expect(Date.parse(frozen.upstreams[0]!.notary.frozenAt)).toBeGreaterThanOrEqual(Date.parse('2026-12-08T00:00:00Z'));
    const acr = parse(examples[2]!.text) as { upstreams: Array<Record<string, any>> };
    expect(new URL(acr.upstreams[0]!.notary.url).origin).toBe(new URL(acr.upstreams[0]!.registry).origin); // ACR: notary at the registry's host
  });

  it.each(blocks('config-check').map((e) => [e.name, e.text] as const))('%s passes trustgate config check', async (name, text) => {
    const root = join(dir, name, 'etc/trustgate/');
    const doc = parse(text.replaceAll('/etc/trustgate/', root));
    createFiles(doc, '', root);
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, stringify(doc));
    const env = Object.fromEntries([...text.matchAll(/passwordEnv: (\w+)/g)].map((m) => [m[1]!, 'not-a-real-secret']));
    const r = await runCli(['config', 'check', file], env);
    expect(r.out, r.stdout).toMatchObject({ ok: true, upstreams: (doc as { upstreams: Array<{ name: string }> }).upstreams.map((u) => u.name) });
    expect(r.code).toBe(0);
  });

  it("the ACR/AKV trustpolicy.json is read by trustgate's parser, covers the repository, and its store loads", async () => {
    const policy = parseTrustPolicy(blocks('trust-policy')[0]!.text);
    const p = selectPolicy(policy, 'myregistry.azurecr.io/net-monitor');
    expect(p?.name).toBe('wabbit-networks-images');
    expect(selectPolicy(policy, 'myregistry.azurecr.io/other')).toBeUndefined();
    const store = join(dir, 'acr-notation', 'etc/trustgate/notation/truststore');
    for (const ref of p!.trustStores) expect((await loadTrustStore(store, ref)).length).toBe(1);
  });
});
