// deploy/compose.yaml brought UP with the real podman-compose (Debian's 1.0.3): one Redis and two
// trustgate replicas from `npm run image`, the config directory mounted read-only into both, ports
// 127.0.0.1:5051 and :5052 as shipped. A signed tag pulls through each replica with skopeo, an unsigned
// one is refused, and a stampede over both replicas fetches the trust metadata once (shared Redis).
//
// What this machine needs on top of the shipped file, in a test override (compose.lab.yaml, the only
// changes):
// - the compose network is one this test creates with a known subnet (declared `external`), because
//   the registry and notary the test runs must be reachable from it: they listen on 127.0.0.1 and are
//   forwarded from the bridge's gateway address (the host side of the bridge) by this process;
// - podman here has no DNS on container networks (CNI without the dnsname plugin), so the service name
//   `redis` does not resolve by itself: the replicas get `redis` → gateway as a hosts entry and Redis
//   publishes 6379 on the gateway address — TRUSTGATE_REDIS_URL stays the shipped redis://redis:6379;
// - `nproc` ulimit (this sandbox needs it to start a container); Redis built locally (REDIS_IMAGE).
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { baseOf, buildRedisImage, REDIS_IMAGE, sharedTrustgateImage, TRUSTGATE_IMAGE } from '../support/images.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import type { Podman } from '../support/podman.js';

const execFileP = promisify(execFile);
const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));
/** Unique per run: the project's container names and the network are host-global. */
const PROJECT = `tgfleet${process.pid}`;
const NETWORK = `${PROJECT}_lab`;
const REPLICAS = { 'trustgate-a': 'http://127.0.0.1:5051', 'trustgate-b': 'http://127.0.0.1:5052' } as const;

let dir: string;
let podman: Podman;
let wrapper: string;
let registry: Registry;
let notary: NotaryLab;
let signed: PushedImage;
let gateway: string;
let networkCreated = false;
let composeStarted = false;
const forwarders: Server[] = [];
const forwarded = new Set<Socket>();
/** Our HTTP connections to the replicas, closed before the containers go (a removed container's DNAT-ed
 * connection never sees a FIN and would keep the test worker alive). */
const http = new Agent({ connections: 100 });
const timings: string[] = [];

/** A /24 in 10.213.0.0/16 that no route on this machine and no (rootful CNI) podman network uses. */
async function freeSubnet(): Promise<number> {
  const { stdout } = await execFileP('ip', ['-4', 'route', 'show', 'table', 'all']);
  const cni = existsSync('/etc/cni/net.d') ? readdirSync('/etc/cni/net.d').filter((f) => f.endsWith('.conflist')).map((f) => readFileSync(join('/etc/cni/net.d', f), 'utf8')) : [];
  const used = new Set([...[stdout, ...cni].join('\n').matchAll(/10\.213\.(\d+)\./g)].map((m) => Number(m[1])));
  const free = Array.from({ length: 250 }, (_, i) => i + 3).filter((n) => !used.has(n));
  if (free.length === 0) throw new Error('no free 10.213.x.0/24 subnet');
  return free[Math.floor(Math.random() * free.length)]!;
}

/** Plain TCP forwarding gateway:port → 127.0.0.1:port, so containers on the bridge reach the lab servers. */
function forward(host: string, port: number): Promise<void> {
  const srv = createServer((c) => {
    const up = connect(port, '127.0.0.1');
    for (const s of [c, up]) {
      forwarded.add(s);
      s.once('close', () => forwarded.delete(s));
    }
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  forwarders.push(srv);
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => resolve());
  });
}

function compose(args: string[], timeout = 240_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile('podman-compose', ['--podman-path', wrapper, '--project-name', PROJECT, '-f', 'compose.yaml', '-f', 'compose.lab.yaml', ...args], { cwd: dir, timeout, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, REDIS_IMAGE } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, out: `${stdout}\n${stderr}` }),
    ),
  );
}

async function skopeo(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile('skopeo', ['--policy', podman.policy, ...args], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, out: `${stdout}\n${stderr}` }),
    ),
  );
}

const container = (service: string) => `${PROJECT}_${service}_1`;
const notaryRequestsFor = (gun: string) => notary.requests().filter((u) => u.startsWith(`/v2/${gun}/_trust/tuf/`)).map((u) => u.slice(`/v2/${gun}/_trust/tuf/`.length));

async function readyz(base: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await request(`${base}/readyz`, { dispatcher: http });
  return { status: r.statusCode, body: (await r.body.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  const t0 = Date.now();
  dir = mkdtempSync(join(tmpdir(), 'trustgate-fleet-'));
  chmodSync(dir, 0o755); // the replicas' user (uid 1000) reads the mounted config and CA from here
  const subnet = await freeSubnet();
  gateway = `10.213.${subnet}.1`;
  const pki = await makePki(dir, 'lab', { extraIps: [gateway] });

  const [build] = await Promise.all([
    (async () => {
      // The image container-image.test.ts also uses: built once per run, in the run's podman storage.
      const { podman: p, build: b } = await sharedTrustgateImage();
      podman = p;
      timings.push(`npm run image: exit ${b.code} in ${b.seconds} s${b.shared ? ' (built by another test file of this run)' : ''}`);
      if (b.code !== 0) throw new Error(`npm run image failed:\n${b.out.slice(-4000)}`);
      const t = Date.now();
      await buildRedisImage(podman, dir, baseOf(b.out));
      timings.push(`${REDIS_IMAGE}: ${Math.round((Date.now() - t) / 1000)} s`);
      return b;
    })(),
    (async () => {
      [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
      const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
      const gun = `${registry.host}/fleet/app`;
      await cli.initRepo(gun);
      signed = await pushImage(dir, registry.host, 'fleet/app', 'signed');
      await pushImage(dir, registry.host, 'fleet/app', 'unsigned');
      writeFileSync(join(dir, 'm'), signed.manifest);
      await cli.sign(gun, 'signed', join(dir, 'm'));
    })(),
  ]);
  expect(build.out).toMatch(/build-image: built localhost\/trustgate:dev/);
  wrapper = join(dir, 'podman-with-run-storage');
  writeFileSync(wrapper, `#!/bin/sh\nexec podman ${podman.globalArgs.join(' ')} "$@"\n`);
  chmodSync(wrapper, 0o755);

  // The deploy directory as a site lays it out: compose.yaml beside trustgate/ (config.yaml + the CA).
  copyFileSync(join(DEPLOY, 'compose.yaml'), join(dir, 'compose.yaml'));
  const etc = join(dir, 'trustgate');
  mkdirSync(etc, { mode: 0o755 });
  copyFileSync(notary.caFile, join(etc, 'notary-ca.pem'));
  const regPort = Number(registry.host.split(':')[1]);
  const notaryPort = Number(new URL(notary.url).port);
  writeFileSync(
    join(etc, 'config.yaml'),
    stringify({
      upstreams: [{ name: 'lab', registry: `http://${gateway}:${regPort}`, gun: registry.host, notary: { url: `https://${gateway}:${notaryPort}`, ca: '/etc/trustgate/notary-ca.pem' }, policy: 'enforce' }],
      default: 'lab',
    }),
  );
  for (const f of ['config.yaml', 'notary-ca.pem']) chmodSync(join(etc, f), 0o644);
  const nproc = { nproc: { soft: 4096, hard: 4096 } };
  writeFileSync(
    join(dir, 'compose.lab.yaml'),
    stringify({
      networks: { default: { external: true, name: NETWORK } },
      services: {
        redis: { ports: [`${gateway}:6379:6379`], ulimits: { nofile: { soft: 20000, hard: 20000 }, ...nproc } },
        'trustgate-a': { extra_hosts: [`redis:${gateway}`], ulimits: nproc },
        'trustgate-b': { extra_hosts: [`redis:${gateway}`], ulimits: nproc },
      },
    }),
  );

  const net = await podman.run(['network', 'create', '--subnet', `10.213.${subnet}.0/24`, '--gateway', gateway, '--label', `io.podman.compose.project=${PROJECT}`, NETWORK]);
  expect(net.code, net.stderr).toBe(0);
  networkCreated = true;
  composeStarted = true;
  const up = await compose(['up', '-d']);
  if (up.code !== 0) throw new Error(`podman-compose up failed:\n${up.out.slice(-4000)}`);
  // The bridge (and its gateway address) exists once a container is attached to it.
  await Promise.all([forward(gateway, regPort), forward(gateway, notaryPort)]);

  const deadline = Date.now() + 60_000;
  for (const base of Object.values(REPLICAS)) {
    for (;;) {
      const r = await readyz(base).catch(() => undefined);
      if (r?.status === 200 && r.body.status === 'ok') break;
      if (Date.now() > deadline) {
        const logs = await podman.run(['logs', container(base.endsWith('5051') ? 'trustgate-a' : 'trustgate-b')]);
        throw new Error(`${base} not ready (${JSON.stringify(r)}):\n${logs.stdout}${logs.stderr}`);
      }
      await new Promise((res) => setTimeout(res, 250));
    }
  }
  timings.push(`fleet up and ready after ${Math.round((Date.now() - t0) / 1000)} s in all`);
  console.log(timings.join('\n'));
}, 1_800_000);

afterAll(async () => {
  const problems: string[] = [];
  await http.destroy();
  if (composeStarted && podman) {
    const down = await compose(['down', '--volumes', '-t', '5']);
    if (down.code !== 0) problems.push(`podman-compose down: ${down.out.slice(-2000)}`);
    // Anything of this project still there (e.g. down failed half-way), by its label.
    const left = await podman.run(['ps', '-a', '-q', '--filter', `label=io.podman.compose.project=${PROJECT}`]);
    const ids = left.stdout.split('\n').filter(Boolean);
    if (ids.length) await podman.run(['rm', '--force', '--time', '0', ...ids]);
  }
  for (const s of forwarded) s.destroy();
  await Promise.all(forwarders.map((s) => new Promise((r) => s.close(() => r(undefined)))));
  await notary?.stop();
  await registry?.stop();
  if (networkCreated && podman) {
    // Rootful CNI networks live in /etc/cni/net.d, outside the temporary storage: remove ours.
    await podman.run(['network', 'rm', '--force', NETWORK]);
    if (existsSync(`/etc/cni/net.d/${NETWORK}.conflist`)) problems.push(`/etc/cni/net.d/${NETWORK}.conflist is still there`);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  expect(problems).toEqual([]);
}, 180_000);

describe('deploy/compose.yaml up with podman-compose: two replicas, one Redis', () => {
  it('runs the three services, the config directory mounted read-only into both replicas, both ready on Redis', async () => {
    for (const s of ['redis', 'trustgate-a', 'trustgate-b']) {
      const r = await podman.run(['inspect', '--format', '{{.State.Status}} {{.ImageName}}', container(s)]);
      expect(r.stdout.trim()).toBe(`running ${s === 'redis' ? REDIS_IMAGE : TRUSTGATE_IMAGE}`);
    }
    for (const [service, base] of Object.entries(REPLICAS)) {
      expect(await readyz(base)).toEqual({ status: 200, body: { status: 'ok', store: 'memory+redis' } });
      const m = await podman.run(['inspect', '--format', '{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}', container(service)]);
      expect(m.stdout).toContain(`${join(dir, 'trustgate')}:/etc/trustgate:false`);
      const env = await podman.run(['exec', container(service), 'printenv', 'TRUSTGATE_REDIS_URL']);
      expect(env.stdout.trim()).toBe('redis://redis:6379');
    }
  });

  it('a stampede over both replicas fetches the trust metadata once: they share the Redis store', async () => {
    const gun = `${registry.host}/fleet/app`;
    const before = notaryRequestsFor(gun).length;
    const bases = Object.values(REPLICAS);
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const r = await request(`${bases[i % 2]}/v2/fleet/app/manifests/signed`, { method: 'HEAD', dispatcher: http });
        await r.body.dump();
        return { status: r.statusCode, digest: r.headers['docker-content-digest'] };
      }),
    );
    expect(results.filter((r) => r.status === 200 && r.digest === signed.digest)).toHaveLength(200);
    // One replica fetched the snapshot and targets (the notary CLI's own signing requests come before
    // `before`); each took its first root and timestamp from notary itself (issue 26: the shared store
    // is not a root of trust).
    expect(notaryRequestsFor(gun).slice(before).map((u) => u.replace(/\.[0-9a-f]{64}\.json$/, '.<sha256>.json')).sort()).toEqual([
      'root.json',
      'root.json',
      // The first contact's prefetch asks for these by name (each used: it hashes to the name its
      // parent gives); the replica that came second found the GUN verified and asked ahead for its
      // timestamp only.
      'snapshot.json',
      'targets.json',
      'targets/releases.json',
      'timestamp.json',
      'timestamp.json',
    ]);
    // The verified metadata and the rollback floors are in the Redis container.
    const keys = await podman.run(['exec', container('redis'), 'redis-cli', '--scan']);
    expect(keys.stdout.split('\n').filter((k) => k.includes(gun)).length).toBeGreaterThan(0);
    expect(keys.stdout).toMatch(new RegExp(`trust:floors:${gun.replace(/[.]/g, '\\.')}`));
  });

  it.each(Object.entries(REPLICAS))('skopeo pulls the signed tag through %s and is refused the unsigned one', async (service, base) => {
    const host = base.slice('http://'.length);
    const out = join(dir, `pulled-${service}`);
    const pull = await skopeo(['copy', '--src-tls-verify=false', `docker://${host}/fleet/app:signed`, `dir:${out}`]);
    expect(pull.code, pull.out).toBe(0);
    expect(readFileSync(join(out, 'manifest.json'))).toEqual(signed.manifest);
    const refused = await skopeo(['inspect', '--tls-verify=false', `docker://${host}/fleet/app:unsigned`]);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/no valid trust data for [\w./-]+:unsigned/);
    // The audit line (written in batches) reaches the container's log shortly after the answer.
    let logs = '';
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
      const l = await podman.run(['logs', container(service)]);
      logs = `${l.stdout}${l.stderr}`;
      if (/"ref":"unsigned".*"decision":"deny"/.test(logs)) break;
    }
    expect(logs).toMatch(/"ref":"unsigned".*"decision":"deny"/);
  });
});
