// Keyed cosign signatures through the proxy, with real parts: images in a real docker-registry,
// signatures made from the specification with node:crypto and pushed in cosign's classic tag form
// (sha256-<hex>.sig), a real notary-server for the DCT side of the migration policy, and skopeo pulling
// through trustgate.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { makeCosignKey, pushClassicSignatures, signPayload, simpleSigningPayload } from '../support/cosign-sign.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { auditRecords, expectRefused, expectServedWithProof, manifestAnswer, refusalReason, skopeoPull } from '../support/through-proxy.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

let dir: string;
let registry: Registry;
let notary: NotaryLab;
let proxy: Trustgate;
const images: Record<string, PushedImage> = {};
const signer = makeCosignKey();
const stranger = makeCosignKey();
const team = makeCosignKey();

const pull = (repo: string, tag = 'v1') => skopeoPull(proxy.host, repo, tag, dir);

const audits = () => auditRecords(proxy.logFile);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-cosign-keyed-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  for (const name of ['c/good', 'c/twokeys', 'c/unsigned', 'c/wrongkey', 'c/otherdigest', 'c/altsig', 'c/altpayload', 'm/dctonly', 'm/cosignonly', 'm/neither', 'r/teamsigned', 'r/upsigned', 'd/signed', 'd/unsigned']) {
    images[name] = await pushImage(dir, registry.host, name, 'v1');
  }
  const signed = (name: string) => {
    const payload = simpleSigningPayload(images[name]!.digest, { repo: `${registry.host}/${name}` });
    return { payload, signature: signPayload(payload, signer.privateKey) };
  };
  await pushClassicSignatures(registry.url, 'c/good', images['c/good']!.digest, [signed('c/good')]);
  await pushClassicSignatures(registry.url, 'm/cosignonly', images['m/cosignonly']!.digest, [signed('m/cosignonly')]);
  await pushClassicSignatures(registry.url, 'd/signed', images['d/signed']!.digest, [signed('d/signed')]);
  // r/*: a repository entry with its own key replaces the upstream's for those repositories.
  await pushClassicSignatures(registry.url, 'r/upsigned', images['r/upsigned']!.digest, [signed('r/upsigned')]);
  const teamPayload = simpleSigningPayload(images['r/teamsigned']!.digest);
  await pushClassicSignatures(registry.url, 'r/teamsigned', images['r/teamsigned']!.digest, [{ payload: teamPayload, signature: signPayload(teamPayload, team.privateKey) }]);
  // Two signatures in one .sig manifest: a stranger's first, then the trusted one.
  const twoPayload = simpleSigningPayload(images['c/twokeys']!.digest);
  await pushClassicSignatures(registry.url, 'c/twokeys', images['c/twokeys']!.digest, [
    { payload: twoPayload, signature: signPayload(twoPayload, stranger.privateKey) },
    { payload: twoPayload, signature: signPayload(twoPayload, signer.privateKey) },
  ]);
  const wrongPayload = simpleSigningPayload(images['c/wrongkey']!.digest);
  await pushClassicSignatures(registry.url, 'c/wrongkey', images['c/wrongkey']!.digest, [{ payload: wrongPayload, signature: signPayload(wrongPayload, stranger.privateKey) }]);
  // A valid signature of another image, replayed next to this one.
  await pushClassicSignatures(registry.url, 'c/otherdigest', images['c/otherdigest']!.digest, [signed('c/good')]);
  const alt = signed('c/altsig');
  const sig = Buffer.from(alt.signature, 'base64');
  sig.writeUInt8(sig.readUInt8(sig.length - 1) ^ 1, sig.length - 1);
  await pushClassicSignatures(registry.url, 'c/altsig', images['c/altsig']!.digest, [{ payload: alt.payload, signature: sig.toString('base64') }]);
  // The payload blob replaced after signing (still naming the right digest): the manifest points at the new blob.
  const ap = signed('c/altpayload');
  const altered = Buffer.from(JSON.stringify({ ...JSON.parse(ap.payload.toString()), optional: { 'build-id': 'rewritten' } }));
  await pushClassicSignatures(registry.url, 'c/altpayload', images['c/altpayload']!.digest, [{ payload: altered, signature: ap.signature }]);
  // Docker Content Trust for the DCT-only image, with the real notary CLI.
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  const gun = `${registry.host}/m/dctonly`;
  await cli.initRepo(gun);
  writeFileSync(join(dir, 'm-dctonly'), images['m/dctonly']!.manifest);
  await cli.sign(gun, 'v1', join(dir, 'm-dctonly'));
  const keyFile = join(dir, 'cosign.pub');
  writeFileSync(keyFile, signer.publicPem);
  const teamKeyFile = join(dir, 'team.pub');
  writeFileSync(teamKeyFile, team.publicPem);
  proxy = await startTrustgate(dir, {
    upstreams: [
      {
        name: 'lab',
        registry: registry.url,
        gun: registry.host,
        notary: { url: notary.url, ca: notary.caFile },
        cosign: { keys: [keyFile] },
        policy: 'enforce',
        require: 'cosign',
        repositories: [
          { match: 'm/*', policy: 'enforce', require: { 'any-of': ['dct', 'cosign'] } },
          { match: 'r/*', policy: 'enforce', cosign: { keys: [{ path: teamKeyFile, name: 'team-key' }] } },
          { match: 'd/*', policy: 'enforce', digestPulls: 'signed' },
        ],
      },
    ],
    default: 'lab',
  });
});

afterAll(() => stopAndRemove(dir, proxy, notary, registry));

describe('keyed cosign signatures (tag form) through the proxy', () => {
  it('serves a tag whose digest carries a valid signature, by its digest, and says which key', async () => {
    await expectServedWithProof(proxy.url, 'c/good', images['c/good']!, /^cosign key sha256:[0-9a-f]{64} sha256:[0-9a-f]{64}$/);
    const r = await pull('c/good');
    expect(r.ok, r.out).toBe(true);
    expect(audits()).toContainEqual(expect.objectContaining({ repo: 'c/good', decision: 'allow', satisfiedBy: expect.stringContaining('cosign key') }));
  });

  it('finds the trusted signature among several in one .sig manifest', async () => {
    const r = await pull('c/twokeys');
    expect(r.ok, r.out).toBe(true);
  });

  it('refuses an image without a signature with COSIGN_UNSIGNED', async () => {
    const r = await pull('c/unsigned');
    expect(r.ok).toBe(false);
    const res = await fetch(`${proxy.url}/v2/c/unsigned/manifests/v1`);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ errors: [{ code: 'DENIED', detail: { code: 'COSIGN_UNSIGNED' } }] });
    expect(audits()).toContainEqual(expect.objectContaining({ repo: 'c/unsigned', decision: 'deny', code: 'COSIGN_UNSIGNED' }));
  });

  it.each([
    ['a signature by a key that is not configured', 'c/wrongkey', /signature verification failed/],
    ['a payload for another digest', 'c/otherdigest', /the payload signs sha256:[0-9a-f]{64}, not/],
    ['an altered signature', 'c/altsig', /signature verification failed/],
    ['an altered payload', 'c/altpayload', /signature verification failed/],
  ])('refuses %s with COSIGN_INVALID, naming the rule', async (_n, repo, reason) => {
    const message = await expectRefused(proxy, repo, dir, 'COSIGN_INVALID');
    expect(message).toMatch(/satisfies cosign keys sha256:[0-9a-f]{64}/);
    expect(message).toMatch(reason);
  });
});

describe('migration policy any-of: [dct, cosign]', () => {
  it('serves a DCT-only tag', async () => {
    const res = await fetch(`${proxy.url}/v2/m/dctonly/manifests/v1`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-trustgate-verified-by')).toBe('dct targets');
    const r = await pull('m/dctonly');
    expect(r.ok, r.out).toBe(true);
  });

  it('serves a cosign-only tag', async () => {
    const res = await fetch(`${proxy.url}/v2/m/cosignonly/manifests/v1`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-trustgate-verified-by')).toMatch(/^cosign key /);
    const r = await pull('m/cosignonly');
    expect(r.ok, r.out).toBe(true);
  });

  it('refuses a tag with neither', async () => {
    const r = await pull('m/neither');
    expect(r.ok).toBe(false);
    const { status, body } = await manifestAnswer(proxy.url, 'm/neither');
    expect(status).toBe(403);
    // The last kind tried answers; the audit line keeps both refusals.
    expect(body.errors[0]!.detail.code).toBe('COSIGN_UNSIGNED');
    expect(audits()).toContainEqual(expect.objectContaining({ repo: 'm/neither', decision: 'deny', code: 'COSIGN_UNSIGNED', reason: expect.stringMatching(/TRUST_DATA_MISSING.*COSIGN_UNSIGNED/) }));
  });
});

describe('tags/list: the trust view under cosign', () => {
  it('require cosign: only tags whose current digest carries a valid signature, never the .sig tag', async () => {
    const upstream = (await (await fetch(`${registry.url}/v2/c/good/tags/list`)).json()) as { tags: string[] };
    expect(upstream.tags).toContain(`${images['c/good']!.digest.replace(':', '-')}.sig`);
    expect(await (await fetch(`${proxy.url}/v2/c/good/tags/list`)).json()).toEqual({ name: 'c/good', tags: ['v1'] });
    expect(await (await fetch(`${proxy.url}/v2/c/wrongkey/tags/list`)).json()).toEqual({ name: 'c/wrongkey', tags: [] });
    expect(await (await fetch(`${proxy.url}/v2/c/unsigned/tags/list`)).json()).toEqual({ name: 'c/unsigned', tags: [] });
  });

  it('any-of [dct, cosign]: DCT-signed and cosign-signed tags are both listed, neither is not', async () => {
    expect(await (await fetch(`${proxy.url}/v2/m/dctonly/tags/list`)).json()).toEqual({ name: 'm/dctonly', tags: ['v1'] });
    expect(await (await fetch(`${proxy.url}/v2/m/cosignonly/tags/list`)).json()).toEqual({ name: 'm/cosignonly', tags: ['v1'] });
    expect(await (await fetch(`${proxy.url}/v2/m/neither/tags/list`)).json()).toEqual({ name: 'm/neither', tags: [] });
  });
});

describe('repository entries with their own cosign keys', () => {
  it('serves a repository signed with its own key', async () => {
    const res = await fetch(`${proxy.url}/v2/r/teamsigned/manifests/v1`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-trustgate-verified-by')).toMatch(/^cosign key team-key sha256:/);
  });

  it("refuses the upstream's key there: the entry replaces it", async () => {
    const { status, body } = await manifestAnswer(proxy.url, 'r/upsigned');
    expect(status).toBe(403);
    expect(body.errors[0]!.detail.code).toBe('COSIGN_INVALID');
    expect(await refusalReason(proxy.logFile, 'r/upsigned')).toMatch(/satisfies cosign keys team-key: .*key team-key: signature verification failed/);
  });
});

describe('digestPulls: signed with cosign', () => {
  it('serves a digest a cosign signature covers', async () => {
    const res = await fetch(`${proxy.url}/v2/d/signed/manifests/${images['d/signed']!.digest}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(images['d/signed']!.digest);
  });

  it('refuses a digest no signature covers', async () => {
    const res = await fetch(`${proxy.url}/v2/d/unsigned/manifests/${images['d/unsigned']!.digest}`);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ errors: [{ code: 'DENIED', detail: { code: 'DIGEST_NOT_SIGNED' } }] });
  });
});

describe('trustgate inspect with DCT and cosign', () => {
  it('lists cosign signatures beside the DCT signed tags', async () => {
    const configFile = join(dir, readdirSync(dir).find((f) => /^trustgate-\d+\.yaml$/.test(f))!);
    const r = await runCli(['inspect', `${registry.host}/m/dctonly:v1`, '--json', '--config', configFile]);
    expect(r.code, r.stdout).toBe(0);
    const [view] = JSON.parse(r.stdout) as Array<{ SignedTags: Array<{ SignedTag: string; Digest: string }>; CosignSignatures: unknown }>;
    expect(view!.SignedTags).toEqual([expect.objectContaining({ SignedTag: 'v1', Digest: images['m/dctonly']!.digest.slice(7) })]);
    // DCT-only: the tag's digest is listed with no cosign signature.
    expect(view!.CosignSignatures).toEqual([{ Tag: 'v1', Digest: images['m/dctonly']!.digest, Signatures: [] }]);
    const text = await runCli(['inspect', `${registry.host}/m/dctonly:v1`, '--config', configFile]);
    expect(text.stdout).toMatch(/Signatures for .*m\/dctonly[\s\S]*Cosign signatures for .*m\/dctonly[\s\S]*v1\s+sha256:[0-9a-f]{64}\s+-\s+unsigned/);
  });
});
