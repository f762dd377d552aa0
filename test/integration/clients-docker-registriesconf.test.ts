// The client setups of docs/clients.md, exercised where the client runs here: dockerd with `registry-mirrors`
// (Docker Hub images: trustgate's upstream has gun docker.io), and a registries.conf mirror as
// podman and CRI-O read it (containers/image, the library skopeo shares with them).
// dockerd falls back to registry-1.docker.io when the mirror refuses, so Docker Hub's names are
// pinned to 127.0.0.1 first (and unpinned after): nothing leaves the machine, and the refusal stands.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { pinHub, startDockerd, unpinHub, type Dockerd } from '../support/dockerd.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { auditRecords } from '../support/through-proxy.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const run = promisify(execFile);
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let proxy: Trustgate;
let dockerd: Dockerd;
let signed: PushedImage;

beforeAll(async () => {
  pinHub();
  dir = mkdtempSync(join(tmpdir(), 'trustgate-clients-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  // A Docker Hub official image as the mirror sees it: library/hello, GUN docker.io/library/hello.
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo('docker.io/library/hello');
  signed = await pushImage(dir, registry.host, 'library/hello', 'signed');
  await pushImage(dir, registry.host, 'library/hello', 'unsigned');
  writeFileSync(join(dir, 'm'), signed.manifest);
  await cli.sign('docker.io/library/hello', 'signed', join(dir, 'm'));
  proxy = await startTrustgate(dir, {
    upstreams: [{ name: 'hub', registry: registry.url, gun: 'docker.io', notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }],
    default: 'hub',
  });
  dockerd = await startDockerd(dir, proxy);
}, 180_000);

afterAll(async () => {
  await dockerd?.stop();
  await proxy?.stop();
  await notary?.stop();
  await registry?.stop();
  unpinHub();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const docker = (args: string[]) => dockerd.docker(args);

describe('dockerd with registry-mirrors', () => {
  it('pulls a signed Docker Hub tag through trustgate, by its signed digest', async () => {
    const r = await docker(['pull', 'hello:signed']);
    expect(r.ok, r.out).toBe(true);
    expect(r.out).toContain(signed.digest);
    const audit = auditRecords(proxy.logFile);
    expect(audit).toContainEqual(expect.objectContaining({ gun: 'docker.io/library/hello', ref: 'signed', decision: 'allow', digest: signed.digest }));
  });

  it('fails an unsigned tag: the mirror refuses and the pinned fallback goes nowhere', async () => {
    const r = await docker(['pull', 'hello:unsigned']);
    expect(r.ok).toBe(false);
    const audit = auditRecords(proxy.logFile);
    expect(audit).toContainEqual(expect.objectContaining({ ref: 'unsigned', decision: 'deny', code: 'TAG_NOT_SIGNED' }));
  });
});

describe('registries.conf mirror (podman, CRI-O; read here by skopeo)', () => {
  it('resolves docker.io through the trustgate mirror: signed ok, unsigned refused', async () => {
    const conf = join(dir, 'registries.conf');
    writeFileSync(conf, `[[registry]]\nlocation = "docker.io"\n\n[[registry.mirror]]\nlocation = "${proxy.host}"\ninsecure = true\n`);
    const copy = (tag: string) =>
      run('skopeo', ['--registries-conf', conf, 'copy', `docker://docker.io/library/hello:${tag}`, `oci:${join(dir, `rc-${tag}`)}:x`], { timeout: 120_000 }).then(
        (r) => ({ ok: true, out: r.stdout + r.stderr }),
        (e) => ({ ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
      );
    const ok = await copy('signed');
    expect(ok.ok, ok.out).toBe(true);
    const refused = await copy('unsigned');
    expect(refused.ok).toBe(false);
    expect(refused.out).toMatch(/no valid trust data|denied/i);
  });
});
