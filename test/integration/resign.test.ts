// `trustgate resign` with real parts: images in a real docker-registry, tags signed with Docker Content
// Trust by the real notary CLI against a real notary-server, the built CLI re-signing them, and the
// results read back by independent means: openssl over the cosign payload, and a running trustgate
// with `require: cosign` / `require: notation` serving the tags (trustgate's own verifiers).
import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encryptedCosignKey } from '../support/cosign-key.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli, pushSignedImage } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { makeCa, makeLeaf, writeNotationTrust, type KeyPair } from '../support/notation-sign.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { startTokenServer, type TokenServer } from '../support/token-server.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const MAIN = new URL('../../dist/main.js', import.meta.url).pathname;

let dir: string;
let registry: Registry;
/** A second registry behind token authentication: the signature repository of the --into test. */
let sigRegistry: Registry;
let tokens: TokenServer;
let notary: NotaryLab;
let proxy: Trustgate;
let configFile: string;
let cosignKey: string;
let cosignPub: string;
let leaf: KeyPair;
let chainFile: string;
const images: Record<string, PushedImage> = {};

interface Line {
  image: string;
  tag: string | null;
  digest: string | null;
  dct: { role: string; keyIds: string[]; verifiedAt: string } | null;
  signature: { kind: string; digest: string | null; repository: string } | null;
  result: string;
  code: string | null;
}

/** The built CLI as an operator runs it: exit code, stdout, stderr. */
function resign(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string; lines: Line[] }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MAIN, 'resign', '--config', configFile, ...args], { env: { ...process.env, COSIGN_PASSWORD: undefined, ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      if (typeof code !== 'number') return reject(err);
      const lines = stdout.split('\n').filter((l) => l.startsWith('{"image"')).map((l) => JSON.parse(l) as Line);
      resolve({ code, stdout, stderr, lines });
    });
  });
}

const host = () => registry.host;
const sigTag = (digest: string) => `sha256-${digest.slice(7)}.sig`;

async function manifest(repo: string, ref: string, accept = 'application/vnd.oci.image.manifest.v1+json'): Promise<{ status: number; bytes: Buffer }> {
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${ref}`, { headers: { accept } });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
}

async function blob(repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-resign-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  tokens = await startTokenServer({ dir, pki, username: 'pusher', password: 'push-secret' });
  sigRegistry = await startRegistry(dir, { tokenAuth: { realm: tokens.realm, service: 'registry.test', issuer: tokens.issuer, rootCertBundle: tokens.certFile } });
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  // One repository per scenario, each with two DCT-signed tags and one pushed but never signed.
  for (const repo of ['c/app', 'e/app', 'n/app', 'o/app', 'd/app']) {
    images[`${repo}:v1`] = await pushSignedImage(cli, dir, host(), repo, 'v1');
    images[`${repo}:v2`] = await pushSignedImage(cli, dir, host(), repo, 'v2', false);
    images[`${repo}:unsigned`] = await pushImage(dir, host(), repo, 'unsigned');
  }
  // x/none: no trust data at all; x/empty: a DCT repository with no signed tag.
  images['x/none:v1'] = await pushImage(dir, host(), 'x/none', 'v1');
  await cli.initRepo(`${host()}/x/empty`);
  configFile = join(dir, 'resign.yaml');
  writeFileSync(
    configFile,
    stringify({
      listen: '127.0.0.1:1',
      store: { kind: 'file', path: join(dir, 'resign-data') },
      upstreams: [
        { name: 'lab', registry: registry.url, gun: host(), notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' },
        // Only a place to write signatures: its URL, CA (of the token realm), credentials and realms are
        // what --into uses. The lab registry is plain http, its realm https: `insecure` allows that.
        { name: 'sigs', registry: sigRegistry.url, gun: sigRegistry.host, policy: 'off', username: 'pusher', passwordEnv: 'PUSH_SECRET', realms: [new URL(tokens.realm).origin], ca: pki.caFile, insecure: true },
      ],
      default: 'lab',
    }),
  );
  // The site's cosign key, as openssl makes it (PKCS#8), and its public half for openssl and trustgate.
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'cosign.key'], { cwd: dir });
  execFileSync('openssl', ['pkey', '-in', 'cosign.key', '-pubout', '-out', 'cosign.pub'], { cwd: dir });
  cosignKey = join(dir, 'cosign.key');
  cosignPub = join(dir, 'cosign.pub');
  // The site's Notation signing certificate, issued by its CA; the chain file holds leaf then CA.
  const ca = makeCa(dir, 'site');
  leaf = makeLeaf(dir, 'signer', ca, '/C=US/ST=WA/O=site/OU=Resign/CN=signer');
  chainFile = join(dir, 'chain.pem');
  writeFileSync(chainFile, readFileSync(leaf.cert, 'utf8') + readFileSync(ca.cert, 'utf8'));
  const notation = writeNotationTrust(dir, [['ca', 'site', ca.cert]], [
    { name: 'site', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:site'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=site, OU=Resign, CN=signer'] },
  ]);
  // No notary server: what is served under require: cosign / notation stands on the re-signed signatures alone.
  proxy = await startTrustgate(dir, {
    upstreams: [
      {
        name: 'lab',
        registry: registry.url,
        gun: host(),
        cosign: { keys: [cosignPub] },
        notation,
        policy: 'enforce',
        require: 'cosign',
        repositories: [{ match: 'n/*', policy: 'enforce', require: 'notation' }],
      },
    ],
    default: 'lab',
  });
});

afterAll(async () => {
  await tokens?.close();
  await stopAndRemove(dir, proxy, notary, registry, sigRegistry);
});

describe('resign --to cosign --into a signature repository', () => {
  const into = () => `${host()}/sigs/cosign`;

  it('signs two DCT-signed tags: exit 0, one report line each with the DCT provenance, progress and a summary on stderr', async () => {
    const report = join(dir, 'c-report.jsonl');
    const r = await resign(['--to', 'cosign', '--key', cosignKey, '--into', into(), '--report', report, `${host()}/c/app:v1`, `${host()}/c/app:v2`]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const lines = readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
    expect(lines).toEqual(
      ['v1', 'v2'].map((tag) => ({
        image: `${host()}/c/app`,
        tag,
        digest: images[`c/app:${tag}`]!.digest,
        dct: { role: 'targets', keyIds: [expect.stringMatching(/^[0-9a-f]{64}$/)], verifiedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
        signature: { kind: 'cosign', digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), repository: into() },
        result: 'signed',
        code: null,
      })),
    );
    expect(r.stderr).toMatch(/resign .*c\/app: 1 tag to cosign .*sigs\/cosign: 1 signed/);
    expect(r.stderr).toMatch(/IMAGE\s+TAG\s+RESULT\s+CODE\s+DIGEST[\s\S]*c\/app\s+v2\s+signed/);
    // Nothing was written next to the image itself.
    expect((await manifest('c/app', sigTag(images['c/app:v1']!.digest))).status).toBe(404);
  });

  it('writes a .sig manifest whose payload names the image and verifies with openssl and the public key', async () => {
    for (const tag of ['v1', 'v2']) {
      const img = images[`c/app:${tag}`]!;
      const m = await manifest('sigs/cosign', sigTag(img.digest));
      expect(m.status).toBe(200);
      const doc = JSON.parse(m.bytes.toString());
      expect(doc.layers).toHaveLength(1);
      const layer = doc.layers[0];
      expect(layer.mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
      expect(layer.annotations).toMatchObject({ 'io.trustgate.dct.role': 'targets', 'io.trustgate.dct.gun': `${host()}/c/app`, 'io.trustgate.dct.tag': tag, 'io.trustgate.dct.keyids': expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(doc.annotations['io.trustgate.dct.verifiedAt']).toMatch(/^\d{4}-/);
      const payload = await blob('sigs/cosign', layer.digest);
      expect(JSON.parse(payload.toString()).critical).toEqual({ identity: { 'docker-reference': `${host()}/c/app` }, image: { 'docker-manifest-digest': img.digest }, type: 'cosign container image signature' });
      writeFileSync(join(dir, 'payload'), payload);
      writeFileSync(join(dir, 'sig.der'), Buffer.from(layer.annotations['dev.cosignproject.cosign/signature'], 'base64'));
      expect(execFileSync('openssl', ['dgst', '-sha256', '-verify', cosignPub, '-signature', 'sig.der', 'payload'], { cwd: dir }).toString()).toMatch(/Verified OK/);
    }
  });

  it('refuses an unsigned tag named to resign: no signature, exit 1, report says refused with the code', async () => {
    const unsigned = images['c/app:unsigned']!;
    const r = await resign(['--to', 'cosign', '--key', cosignKey, '--into', into(), `${host()}/c/app:unsigned`]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.lines).toEqual([expect.objectContaining({ tag: 'unsigned', digest: null, dct: null, result: 'refused', code: 'TAG_NOT_SIGNED' })]);
    expect((await manifest('sigs/cosign', sigTag(unsigned.digest))).status).toBe(404);
    // Even with --dry-run and other flags, and next to a signed tag: the signed one is present, the other refused.
    const both = await resign(['--to', 'cosign', '--key', cosignKey, '--into', into(), `${host()}/c/app:unsigned`, `${host()}/c/app:v1`]);
    expect(both.code).toBe(1);
    expect(both.lines.map((l) => [l.tag, l.result, l.code])).toEqual([
      ['unsigned', 'refused', 'TAG_NOT_SIGNED'],
      ['v1', 'present', null],
    ]);
  });

  it('reports present on a second run over every signed tag of the repository, and changes nothing', async () => {
    const before = await Promise.all(['v1', 'v2'].map(async (t) => (await manifest('sigs/cosign', sigTag(images[`c/app:${t}`]!.digest))).bytes));
    const r = await resign(['--to', 'cosign', '--key', cosignKey, '--into', into(), `${host()}/c/app`]);
    expect(r.code, r.stderr).toBe(0);
    // Without :TAG, every signed tag: v1 and v2, never `unsigned`.
    expect(r.lines.map((l) => [l.tag, l.result])).toEqual([
      ['v1', 'present'],
      ['v2', 'present'],
    ]);
    const after = await Promise.all(['v1', 'v2'].map(async (t) => (await manifest('sigs/cosign', sigTag(images[`c/app:${t}`]!.digest))).bytes));
    expect(after.map((b, i) => b.equals(before[i]!))).toEqual([true, true]);
  });

  it("appends another key's signature to the existing .sig manifest, as cosign does", async () => {
    const other = join(dir, 'other.key');
    writeFileSync(other, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const r = await resign(['--to', 'cosign', '--key', other, '--into', into(), `${host()}/c/app:v1`]);
    expect(r.lines.map((l) => l.result)).toEqual(['signed']);
    const doc = JSON.parse((await manifest('sigs/cosign', sigTag(images['c/app:v1']!.digest))).bytes.toString());
    expect(doc.layers).toHaveLength(2);
    // The site key's signature is still there and still found.
    const again = await resign(['--to', 'cosign', '--key', cosignKey, '--into', into(), `${host()}/c/app:v1`]);
    expect(again.lines.map((l) => l.result)).toEqual(['present']);
  });

  it('signs with an encrypted cosign key made in cosign\'s format, the passphrase from COSIGN_PASSWORD', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const keyFile = join(dir, 'encrypted.key');
    writeFileSync(keyFile, encryptedCosignKey(privateKey, 'correct horse'));
    const pub = join(dir, 'encrypted.pub');
    writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
    const wrong = await resign(['--to', 'cosign', '--key', keyFile, '--into', into(), `${host()}/e/app:v1`], { COSIGN_PASSWORD: 'wrong' });
    expect(wrong.code).toBe(2);
    expect(JSON.parse(wrong.stdout.trim())).toMatchObject({ error: 'USAGE', message: expect.stringMatching(/wrong passphrase/) });
    const r = await resign(['--to', 'cosign', '--key', keyFile, '--into', into(), `${host()}/e/app:v1`], { COSIGN_PASSWORD: 'correct horse' });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.lines.map((l) => l.result)).toEqual(['signed']);
    const doc = JSON.parse((await manifest('sigs/cosign', sigTag(images['e/app:v1']!.digest))).bytes.toString());
    writeFileSync(join(dir, 'payload'), await blob('sigs/cosign', doc.layers[0].digest));
    writeFileSync(join(dir, 'sig.der'), Buffer.from(doc.layers[0].annotations['dev.cosignproject.cosign/signature'], 'base64'));
    expect(execFileSync('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', 'sig.der', 'payload'], { cwd: dir }).toString()).toMatch(/Verified OK/);
  });

  it('--dry-run resolves and verifies, says would-sign, and pushes nothing', async () => {
    const r = await resign(['--dry-run', '--to', 'cosign', '--key', cosignKey, '--into', into(), `${host()}/d/app`, `${host()}/d/app:unsigned`]);
    expect(r.code).toBe(1);
    expect(r.lines.map((l) => [l.tag, l.result, l.code])).toEqual([
      ['v1', 'would-sign', null],
      ['v2', 'would-sign', null],
      ['unsigned', 'refused', 'TAG_NOT_SIGNED'],
    ]);
    for (const t of ['v1', 'v2']) expect((await manifest('sigs/cosign', sigTag(images[`d/app:${t}`]!.digest))).status).toBe(404);
  });
});

describe('resign --into a registry behind token authentication (another upstream)', () => {
  it("pushes with that upstream's credentials and a pull,push token; a second run finds the signature", async () => {
    tokens.requests.length = 0;
    const into = `${sigRegistry.host}/site/signatures`;
    const r = await resign(['--to', 'cosign', '--key', cosignKey, '--into', into, `${host()}/c/app:v2`], { PUSH_SECRET: 'push-secret' });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.lines).toEqual([expect.objectContaining({ tag: 'v2', result: 'signed', signature: expect.objectContaining({ repository: into }) })]);
    expect(new Set(tokens.requests.map((q) => q.scope))).toEqual(new Set(['repository:site/signatures:pull', 'repository:site/signatures:pull,push']));
    expect(tokens.requests.every((q) => q.authorization === `Basic ${Buffer.from('pusher:push-secret').toString('base64')}`)).toBe(true);
    // The registry refuses anonymous reads: the signature is there, behind auth.
    expect((await fetch(`${sigRegistry.url}/v2/site/signatures/manifests/${sigTag(images['c/app:v2']!.digest)}`)).status).toBe(401);
    const again = await resign(['--to', 'cosign', '--key', cosignKey, '--into', into, `${host()}/c/app:v2`], { PUSH_SECRET: 'push-secret' });
    expect(again.lines.map((l) => l.result)).toEqual(['present']);
  });

  it('a refused credential is a failure after verification (failed, the code, exit 1); an unset one is a usage error', async () => {
    const into = `${sigRegistry.host}/site/signatures`;
    const bad = await resign(['--to', 'cosign', '--key', cosignKey, '--into', into, `${host()}/c/app:v1`], { PUSH_SECRET: 'wrong' });
    expect(bad.code).toBe(1);
    expect(bad.lines).toEqual([expect.objectContaining({ tag: 'v1', digest: images['c/app:v1']!.digest, result: 'failed', code: 'UPSTREAM_UNAUTHORIZED' })]);
    const unset = await resign(['--to', 'cosign', '--key', cosignKey, '--into', into, `${host()}/c/app:v1`]);
    expect(unset.code).toBe(2);
    expect(JSON.parse(unset.stdout.trim())).toMatchObject({ error: 'USAGE', message: expect.stringMatching(/PUSH_SECRET/) });
  });
});

describe('resign --to cosign into the image repository, served by trustgate with require: cosign', () => {
  it('signs in place; trustgate with the public key and no notary server serves the tags, and still refuses the unsigned one', async () => {
    const r = await resign(['--to', 'cosign', '--key', cosignKey, `${host()}/o/app`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines.map((l) => [l.tag, l.result, l.signature?.repository])).toEqual([
      ['v1', 'signed', `${host()}/o/app`],
      ['v2', 'signed', `${host()}/o/app`],
    ]);
    for (const tag of ['v1', 'v2']) {
      const img = images[`o/app:${tag}`]!;
      const res = await fetch(`${proxy.url}/v2/o/app/manifests/${tag}`, { headers: { accept: img.mediaType } });
      expect(res.status).toBe(200);
      expect(res.headers.get('docker-content-digest')).toBe(img.digest);
      expect(res.headers.get('x-trustgate-verified-by')).toMatch(/^cosign key sha256:[0-9a-f]{64} sha256:/);
    }
    const refused = await fetch(`${proxy.url}/v2/o/app/manifests/unsigned`);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ errors: [{ detail: { code: 'COSIGN_UNSIGNED' } }] });
  });
});

describe('resign --to notation (JWS and COSE), pushed as referrers, served by trustgate with require: notation', () => {
  const base = () => ['--to', 'notation', '--key', leaf.key, '--cert', chainFile];

  it('signs v1 as JWS and v2 as COSE in the image repository (referrers tag schema), exit 0', async () => {
    const jws = await resign([...base(), `${host()}/n/app:v1`]);
    expect(jws.code, jws.stderr + jws.stdout).toBe(0);
    const cose = await resign([...base(), '--format', 'cose', `${host()}/n/app:v2`]);
    expect(cose.code, cose.stderr + cose.stdout).toBe(0);
    for (const [tag, r, mediaType] of [['v1', jws, 'application/jose+json'], ['v2', cose, 'application/cose']] as const) {
      const img = images[`n/app:${tag}`]!;
      expect(r.lines).toEqual([expect.objectContaining({ tag, digest: img.digest, result: 'signed', signature: { kind: 'notation', digest: expect.stringMatching(/^sha256:/), repository: `${host()}/n/app` }, dct: expect.objectContaining({ role: 'targets' }) })]);
      // distribution 2.8 has no referrers API: the signature is listed in the sha256-<hex> index.
      const index = await manifest('n/app', `sha256-${img.digest.slice(7)}`, 'application/vnd.oci.image.index.v1+json');
      expect(index.status).toBe(200);
      const entries = JSON.parse(index.bytes.toString()).manifests;
      expect(entries).toEqual([expect.objectContaining({ artifactType: 'application/vnd.cncf.notary.signature', digest: r.lines[0]!.signature!.digest })]);
      const sig = JSON.parse((await manifest('n/app', r.lines[0]!.signature!.digest!)).bytes.toString());
      expect(sig).toMatchObject({ artifactType: 'application/vnd.cncf.notary.signature', subject: { digest: img.digest, size: img.manifest.length }, layers: [{ mediaType }], annotations: { 'io.trustgate.dct.role': 'targets', 'io.cncf.notary.x509chain.thumbprint#S256': expect.any(String) } });
    }
  });

  it("trustgate's Notation verifier accepts both: the tags are served with require: notation", async () => {
    for (const tag of ['v1', 'v2']) {
      const img = images[`n/app:${tag}`]!;
      const res = await fetch(`${proxy.url}/v2/n/app/manifests/${tag}`, { headers: { accept: img.mediaType } });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(res.headers.get('docker-content-digest')).toBe(img.digest);
      expect(res.headers.get('x-trustgate-verified-by')).toMatch(/^notation sha256:[0-9a-f]{64} policy site$/);
    }
    const refused = await fetch(`${proxy.url}/v2/n/app/manifests/unsigned`);
    expect(await refused.json()).toMatchObject({ errors: [{ detail: { code: 'NOTATION_UNSIGNED' } }] });
  });

  it('refuses the unsigned tag (exit 1, nothing pushed) and reports present on a second run', async () => {
    const unsigned = images['n/app:unsigned']!;
    const r = await resign([...base(), `${host()}/n/app:unsigned`]);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([expect.objectContaining({ tag: 'unsigned', result: 'refused', code: 'TAG_NOT_SIGNED' })]);
    expect((await manifest('n/app', `sha256-${unsigned.digest.slice(7)}`, 'application/vnd.oci.image.index.v1+json')).status).toBe(404);
    const again = await resign([...base(), `${host()}/n/app`]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.lines.map((l) => [l.tag, l.result])).toEqual([
      ['v1', 'present'],
      ['v2', 'present'],
    ]);
  });
});

describe('repositories with nothing to carry forward', () => {
  it('says refused with the code, for the repository (tag null), and exits 1', async () => {
    const r = await resign(['--to', 'cosign', '--key', cosignKey, `${host()}/x/none`, `${host()}/x/empty`, `${host()}/x/none:v1`]);
    expect(r.code).toBe(1);
    expect(r.lines.map((l) => [l.image, l.tag, l.result, l.code])).toEqual([
      [`${host()}/x/none`, null, 'refused', 'TRUST_DATA_MISSING'],
      [`${host()}/x/empty`, null, 'refused', 'TAG_NOT_SIGNED'],
      [`${host()}/x/none`, 'v1', 'refused', 'TRUST_DATA_MISSING'],
    ]);
    expect((await manifest('x/none', sigTag(images['x/none:v1']!.digest))).status).toBe(404);
  });
});

describe('resign --to notation --into a signature repository', () => {
  it('pushes the referrer and its tag schema index there, though the subject lives in another repository', async () => {
    const img = images['n/app:v1']!;
    const into = `${host()}/sigs/notation`;
    const r = await resign(['--to', 'notation', '--key', leaf.key, '--cert', chainFile, '--into', into, `${host()}/n/app:v1`]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    // Present is looked up in --into, not in the image's repository (which has a signature already).
    expect(r.lines).toEqual([expect.objectContaining({ result: 'signed', signature: expect.objectContaining({ repository: into }) })]);
    const index = await manifest('sigs/notation', `sha256-${img.digest.slice(7)}`, 'application/vnd.oci.image.index.v1+json');
    expect(JSON.parse(index.bytes.toString()).manifests).toEqual([expect.objectContaining({ digest: r.lines[0]!.signature!.digest })]);
    expect(JSON.parse((await manifest('sigs/notation', r.lines[0]!.signature!.digest!)).bytes.toString()).subject.digest).toBe(img.digest);
  });
});

describe('usage', () => {
  it('exits 2 on usage errors, before anything is resolved', async () => {
    for (const args of [
      ['--to', 'sigstore', '--key', cosignKey, `${host()}/c/app:v1`],
      ['--to', 'cosign', `${host()}/c/app:v1`],
      ['--to', 'cosign', '--key', cosignKey],
      ['--to', 'notation', '--key', leaf.key, `${host()}/n/app:v1`],
      ['--to', 'cosign', '--key', cosignKey, '--into', `${host()}/sigs:tag`, `${host()}/c/app:v1`],
      ['--to', 'cosign', '--key', cosignKey, 'elsewhere.example/x:v1'],
      ['--to', 'cosign', '--key', leaf.cert, `${host()}/c/app:v1`],
    ]) {
      const r = await resign(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.lines).toEqual([]);
    }
  });
});
