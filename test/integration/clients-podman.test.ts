// podman as users run it (Debian's podman, rootful, vfs storage in a temporary root), reading the
// registries.conf format CRI-O shares (containers/image):
//   - rewrite form: `prefix` → `location` = trustgate. The client never talks to the upstream: signed
//     tags are pulled, unsigned ones refused with trustgate's message. This is the fail-closed setup.
//   - `[[registry.mirror]]` form: when trustgate refuses, the client falls back to the registry's own
//     location and pulls the unsigned tag from the upstream — shown here, so docs/clients.md's fail-closed
//     section is proven rather than asserted. (The upstream is a local registry: nothing leaves the machine.)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { makePodman, type Podman } from '../support/podman.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

let dir: string;
let registry: Registry;
let notary: NotaryLab;
let proxy: Trustgate;
let podman: Podman;
const signed: Record<string, PushedImage> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-podman-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  for (const repo of ['rewrite/app', 'mirror/app']) {
    const gun = `${registry.host}/${repo}`;
    await cli.initRepo(gun);
    signed[repo] = await pushImage(dir, registry.host, repo, 'signed');
    await pushImage(dir, registry.host, repo, 'unsigned');
    writeFileSync(join(dir, 'm'), signed[repo]!.manifest);
    await cli.sign(gun, 'signed', join(dir, 'm'));
  }
  proxy = await startTrustgate(dir, {
    upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }],
    default: 'lab',
  });
  podman = makePodman(dir);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await notary?.stop();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The digest podman stored for an image, as `podman image inspect` reports it. */
async function storedDigest(ref: string): Promise<string> {
  const r = await podman.run(['image', 'inspect', '--format', '{{.Digest}}', ref]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

const manifestRequests = (repo: string, tag: string) => registry.requests().filter((u) => u.startsWith(`/v2/${repo}/manifests/${tag}`)).length;

describe('podman with registries.conf rewriting the registry to trustgate (prefix → location)', () => {
  let conf: string;
  beforeAll(() => {
    conf = join(dir, 'registries-rewrite.conf');
    // The name users pull stays the upstream's; containers/image sends every request to trustgate instead.
    writeFileSync(conf, `[[registry]]\nprefix = "${registry.host}/rewrite"\nlocation = "${proxy.host}/rewrite"\ninsecure = true\n`);
  });

  it('pulls the signed tag through trustgate, with the signed digest', async () => {
    const ref = `${registry.host}/rewrite/app:signed`;
    const r = await podman.run(['pull', '--signature-policy', podman.policy, ref], { registriesConf: conf });
    expect(r.code, r.stderr).toBe(0);
    expect(await storedDigest(ref)).toBe(signed['rewrite/app']!.digest);
    const audit = readFileSync(proxy.logFile, 'utf8');
    expect(audit).toMatch(new RegExp(`"repo":"rewrite/app".*"ref":"signed".*"decision":"allow"`));
  });

  it('refuses the unsigned tag with trustgate\'s message, and never asks the upstream for it', async () => {
    const tagRequestsBefore = manifestRequests('rewrite/app', 'unsigned');
    const r = await podman.run(['pull', '--signature-policy', podman.policy, `${registry.host}/rewrite/app:unsigned`], { registriesConf: conf });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no valid trust data for [\w./-]+:unsigned/);
    expect(manifestRequests('rewrite/app', 'unsigned')).toBe(tagRequestsBefore);
    expect((await podman.run(['image', 'exists', `${registry.host}/rewrite/app:unsigned`])).code).toBe(1);
  });
});

describe('podman with trustgate as a [[registry.mirror]]: fails open', () => {
  let conf: string;
  beforeAll(() => {
    conf = join(dir, 'registries-mirror.conf');
    writeFileSync(conf, `[[registry]]\nlocation = "${registry.host}"\ninsecure = true\n\n[[registry.mirror]]\nlocation = "${proxy.host}"\ninsecure = true\n`);
  });

  it('the signed tag comes through the mirror', async () => {
    const ref = `${registry.host}/mirror/app:signed`;
    const direct = manifestRequests('mirror/app', 'signed');
    const r = await podman.run(['pull', '--signature-policy', podman.policy, ref], { registriesConf: conf });
    expect(r.code, r.stderr).toBe(0);
    expect(await storedDigest(ref)).toBe(signed['mirror/app']!.digest);
    // trustgate fetches by digest; a tag request at the registry would be the client going around it.
    expect(manifestRequests('mirror/app', 'signed')).toBe(direct);
  });

  it('the unsigned tag refused by trustgate is pulled from the upstream anyway: a mirror does not enforce', async () => {
    const ref = `${registry.host}/mirror/app:unsigned`;
    const direct = manifestRequests('mirror/app', 'unsigned');
    const r = await podman.run(['pull', '--signature-policy', podman.policy, ref], { registriesConf: conf });
    const log = readFileSync(proxy.logFile, 'utf8');
    expect(log).toMatch(/"repo":"mirror\/app".*"ref":"unsigned".*"decision":"deny"/);
    expect(r.code, r.stderr).toBe(0);
    expect(manifestRequests('mirror/app', 'unsigned')).toBeGreaterThan(direct);
    expect((await podman.run(['image', 'exists', ref])).code).toBe(0);
  });
});
