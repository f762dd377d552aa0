// Keyless cosign signatures through the proxy: images in a real docker-registry, signed with
// @sigstore/sign against local Fulcio and Rekor stand-ins, the Sigstore bundle attached as an OCI
// referrer (referrers tag schema: distribution 2.8 has no referrers API) or in cosign's classic tag
// form; trustgate verifies offline against the trusted_root.json the test writes; skopeo pulls.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBundleReferrers, pushClassicSignatures, simpleSigningPayload } from '../support/cosign-sign.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { cosignSignStatement, signClassicKeyless, signKeyless, startFulcio, startRekor, trustedRootJson, type FulcioStandIn, type RekorStandIn } from '../support/sigstore-lab.js';
import { auditRecords, expectRefused, skopeoPull } from '../support/through-proxy.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const ISSUER = 'https://token.actions.githubusercontent.com';
const WORKFLOW = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main';
let dir: string;
let registry: Registry;
let proxy: Trustgate;
let fulcio: FulcioStandIn;
let rogue: FulcioStandIn;
let rekor: RekorStandIn;
const images: Record<string, PushedImage> = {};

const pull = (repo: string) => skopeoPull(proxy.host, repo, 'v1', dir);

async function attach(repo: string, o: { ca?: FulcioStandIn; tlog?: boolean; sub?: string; iss?: string } = {}) {
  const img = images[repo]!;
  const bundle = await signKeyless({ fulcio: o.ca ?? fulcio, rekor: o.tlog === false ? undefined : rekor, identity: { iss: o.iss ?? ISSUER, sub: o.sub ?? WORKFLOW }, statement: cosignSignStatement(img.digest) });
  await pushBundleReferrers(registry.url, repo, { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length }, [bundle]);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-cosign-keyless-'));
  [registry, fulcio, rogue, rekor] = await Promise.all([startRegistry(dir), startFulcio(), startFulcio(), startRekor()]);
  for (const name of ['k/good', 'k/classic', 'k/wrongsubject', 'k/wrongissuer', 'k/notlog', 'k/otherca', 'k/unsigned']) images[name] = await pushImage(dir, registry.host, name, 'v1');
  await attach('k/good');
  await attach('k/wrongsubject', { sub: 'https://github.com/mallory/app/.github/workflows/release.yml@refs/heads/main' });
  await attach('k/wrongissuer', { iss: 'https://accounts.example.test' });
  await attach('k/notlog', { tlog: false });
  await attach('k/otherca', { ca: rogue });
  const classic = images['k/classic']!;
  const payload = simpleSigningPayload(classic.digest);
  await pushClassicSignatures(registry.url, 'k/classic', classic.digest, [{ payload, ...(await signClassicKeyless({ fulcio, rekor, identity: { iss: ISSUER, sub: WORKFLOW }, payload })) }]);
  const rootFile = join(dir, 'trusted_root.json');
  writeFileSync(rootFile, trustedRootJson([fulcio], [rekor]));
  proxy = await startTrustgate(dir, {
    upstreams: [
      {
        name: 'lab',
        registry: registry.url,
        gun: registry.host,
        cosign: { trustedRoot: rootFile, identities: [{ issuer: ISSUER, subjectRegExp: '^https://github\\.com/acme/app/\\.github/workflows/release\\.yml@refs/(heads|tags)/' }] },
        policy: 'enforce',
        require: 'cosign',
      },
    ],
    default: 'lab',
  });
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  for (const s of [fulcio, rogue, rekor]) if (s) await new Promise((r) => s.server.close(r));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const audits = () => auditRecords(proxy.logFile);

describe('keyless cosign signatures through the proxy', () => {
  it('serves a tag whose Sigstore bundle referrer has a trusted identity, and names it', async () => {
    const res = await fetch(`${proxy.url}/v2/k/good/manifests/v1`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(images['k/good']!.digest);
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(res.headers.get('x-trustgate-verified-by')).toMatch(new RegExp(`^cosign ${esc(WORKFLOW)} \\(issuer ${esc(ISSUER)}\\) sha256:[0-9a-f]{64}$`));
    const r = await pull('k/good');
    expect(r.ok, r.out).toBe(true);
    expect(audits()).toContainEqual(expect.objectContaining({ repo: 'k/good', decision: 'allow', satisfiedBy: expect.stringContaining(WORKFLOW) }));
  });

  it('serves a keyless signature in the classic tag form (certificate and Rekor bundle annotations)', async () => {
    const r = await pull('k/classic');
    expect(r.ok, r.out).toBe(true);
    const res = await fetch(`${proxy.url}/v2/k/classic/manifests/v1`, { method: 'HEAD' });
    expect(res.headers.get('x-trustgate-verified-by')).toContain(`cosign ${WORKFLOW} (issuer ${ISSUER})`);
  });

  it.each([
    ['another workflow identity', 'k/wrongsubject', /no identity rule matches/],
    ['another OIDC issuer', 'k/wrongissuer', /no identity rule matches/],
    ['no transparency-log proof', 'k/notlog', /no transparency-log entry/],
    ['a certificate from another CA', 'k/otherca', /Failed to verify certificate chain/],
  ])('refuses %s with COSIGN_INVALID, naming the rule', async (_n, repo, reason) => {
    const message = await expectRefused(proxy, repo, dir, 'COSIGN_INVALID');
    expect(message).toContain(`from ${ISSUER}`);
    expect(message).toMatch(reason);
  });

  it('refuses an unsigned image with COSIGN_UNSIGNED', async () => {
    const res = await fetch(`${proxy.url}/v2/k/unsigned/manifests/v1`);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ errors: [{ detail: { code: 'COSIGN_UNSIGNED' } }] });
  });
});

describe('trustgate inspect lists cosign signatures', () => {
  const configFile = () => join(dir, readdirSync(dir).find((f) => /^trustgate-\d+\.yaml$/.test(f))!);

  it('shows a verified keyless signer of a tag', async () => {
    const r = await runCli(['inspect', `${registry.host}/k/good:v1`, '--json', '--config', configFile()]);
    expect(r.code, r.stdout).toBe(0);
    const [view] = JSON.parse(r.stdout) as Array<{ Name: string; CosignSignatures: Array<{ Tag: string; Digest: string; Signatures: Array<Record<string, unknown>> }> }>;
    expect(view!.Name).toBe(`${registry.host}/k/good`);
    expect(view!.CosignSignatures).toEqual([
      { Tag: 'v1', Digest: images['k/good']!.digest, Signatures: [expect.objectContaining({ Form: 'referrer', Verified: true, Signer: `${WORKFLOW} (issuer ${ISSUER})` })] },
    ]);
  });

  it('shows an untrusted signer with the reason', async () => {
    const r = await runCli(['inspect', `${registry.host}/k/wrongsubject:v1`, '--json', '--config', configFile()]);
    const [view] = JSON.parse(r.stdout) as Array<{ CosignSignatures: Array<{ Signatures: Array<{ Verified: boolean; Reason?: string }> }> }>;
    expect(view!.CosignSignatures[0]!.Signatures).toEqual([expect.objectContaining({ Verified: false, Reason: expect.stringMatching(/no identity rule matches/) })]);
  });

  it('lists every tag of a repository in text form, the signature tag itself left out', async () => {
    const r = await runCli(['inspect', `${registry.host}/k/classic`, '--config', configFile()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Cosign signatures for ${registry.host}/k/classic`);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('v1 ') || l.startsWith('sha256-'));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(new RegExp(`^v1\\s+${images['k/classic']!.digest}\\s+tag\\s+verified: https://github.com/acme/app/`));
  });
});
