// deploy/kubernetes/ run by the real podman (`podman kube play`, Debian's 4.3): the ConfigMap and the
// Deployment as shipped, two replicas from `npm run image`, each ready on a shared Redis; a signed tag
// pulls with skopeo through the Service's port, an unsigned one is refused.
//
// What podman does not do, and what this test does in its place (the lab override, nothing else):
// - Services are not played: a TCP forwarder on 127.0.0.1 stands in for kube-proxy — it takes the
//   Service's port, checks that its selector matches the pods' labels, resolves targetPort through the
//   container's named port, and round-robins over the pods' addresses;
// - readiness probes are not run: the test polls each pod on the probe's path and port, as kubelet would;
// - ulimits have no Kubernetes field: a containers.conf of the test's (CONTAINERS_CONF) sets the
//   nofile/nproc limits this sandbox needs for every container; pods need catatonit (the pause binary);
// - the lab's registry, notary server and Redis listen on 127.0.0.1: they are forwarded from the pod
//   network's gateway, the ConfigMap's upstream points there (with the notary CA as a further
//   ConfigMap key, as configmap.yaml says), and `trustgate-redis` (redis.yaml's Service name, which the
//   Deployment's TRUSTGATE_REDIS_URL uses) is a hostAlias for the gateway. redis.yaml itself needs
//   docker.io's redis image, which cannot be pulled here; its manifest is checked, not played.
// - podman 4.3 publishes each containerPort on the host under the same number, so two replicas
//   collide: the played copy has no `ports`, the pods are reached at their addresses on the network;
// - names get this run's pid (pods, network and containers are host-global).
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { sharedTrustgateImage, TRUSTGATE_IMAGE } from '../support/images.js';
import { NotaryCli, pushSignedImage } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import type { Podman } from '../support/podman.js';
import { startRedis, type RedisLab } from '../support/redis.js';
import { freePort } from '../support/spawn-server.js';
import { runCli } from '../support/trustgate-process.js';

const execFileP = promisify(execFile);
const K8S = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url));
const NAME = `tgk8s${process.pid}`;
const NETWORK = `${NAME}net`;
const REPO = 'k8s/app';

type Doc = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };
let dir: string;
let podman: Podman;
let registry: Registry;
let notary: NotaryLab;
let redis: RedisLab;
let signed: PushedImage;
let gateway: string;
let playFile: string | undefined;
let networkCreated = false;
let service: { server: Server; host: string } | undefined;
let pods: Array<{ name: string; ip: string; labels: Record<string, string> }> = [];
const forwarders: Server[] = [];
const sockets = new Set<Socket>();
const env = () => ({ CONTAINERS_CONF: join(dir, 'containers.conf') });

/** Every manifest kustomization.yaml lists, by kind. */
function manifests(): Doc[] {
  const k = parse(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  return k.resources.flatMap((f) => parseAllDocuments(readFileSync(join(K8S, f), 'utf8')).map((d) => d.toJSON() as Doc));
}
const one = (kind: string, name: string) => manifests().find((d) => d.kind === kind && d.metadata.name === name)!;

/** A /24 in 10.214.0.0/16 that no route on this machine and no (rootful CNI) podman network uses. */
async function freeSubnet(): Promise<number> {
  const { stdout } = await execFileP('ip', ['-4', 'route', 'show', 'table', 'all']);
  const cni = existsSync('/etc/cni/net.d') ? readdirSync('/etc/cni/net.d').filter((f) => f.endsWith('.conflist')).map((f) => readFileSync(join('/etc/cni/net.d', f), 'utf8')) : [];
  const used = new Set([...[stdout, ...cni].join('\n').matchAll(/10\.214\.(\d+)\./g)].map((m) => Number(m[1])));
  const free = Array.from({ length: 250 }, (_, i) => i + 3).filter((n) => !used.has(n));
  if (free.length === 0) throw new Error('no free 10.214.x.0/24 subnet');
  return free[Math.floor(Math.random() * free.length)]!;
}

/** Plain TCP forwarding from listenHost:listenPort to one of `targets` (round robin). */
function forward(listenHost: string, listenPort: number, targets: Array<{ host: string; port: number }>): Promise<Server> {
  let next = 0;
  const srv = createServer((c) => {
    const t = targets[next++ % targets.length]!;
    const up = connect(t.port, t.host);
    for (const s of [c, up]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    }
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  forwarders.push(srv);
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(listenPort, listenHost, () => resolve(srv));
  });
}

function skopeo(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile('skopeo', ['--policy', podman.policy, ...args], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, out: `${stdout}\n${stderr}` }),
    ),
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-k8s-'));
  chmodSync(dir, 0o755);
  const subnet = await freeSubnet();
  gateway = `10.214.${subnet}.1`;
  const pki = await makePki(dir, 'lab', { extraIps: [gateway] });
  await Promise.all([
    (async () => {
      const { podman: p, build } = await sharedTrustgateImage();
      podman = p;
      if (build.code !== 0) throw new Error(`npm run image failed:\n${build.out.slice(-4000)}`);
    })(),
    (async () => {
      [registry, notary, redis] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' }), startRedis(dir)]);
      signed = await pushSignedImage(new NotaryCli(notary.url, notary.caFile, join(dir, 'trust')), dir, registry.host, REPO, 'signed');
      await pushImage(dir, registry.host, REPO, 'unsigned');
    })(),
  ]);
  writeFileSync(join(dir, 'containers.conf'), '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n');

  // The shipped ConfigMap with the lab's upstream in place of Docker Hub; the rest of its config kept.
  const regPort = Number(registry.host.split(':')[1]);
  const notaryPort = Number(new URL(notary.url).port);
  const cm = structuredClone(one('ConfigMap', 'trustgate-config'));
  const shipped = parse(cm.data!['config.yaml']!) as Record<string, unknown>;
  cm.data = {
    'config.yaml': stringify({ ...shipped, upstreams: [{ name: 'lab', registry: `http://${gateway}:${regPort}`, gun: registry.host, notary: { url: `https://${gateway}:${notaryPort}`, ca: '/etc/trustgate/notary-ca.pem' }, policy: 'enforce' }], default: 'lab' }),
    'notary-ca.pem': readFileSync(notary.caFile, 'utf8'),
  };
  const dep = structuredClone(one('Deployment', 'trustgate'));
  dep.metadata.name = NAME;
  dep.spec.template.spec.hostAliases = [{ ip: gateway, hostnames: ['trustgate-redis'] }];
  // podman 4.3 publishes every containerPort on the host at the same number (both replicas on :5050):
  // the pods are reached at their own addresses instead, so the played copy declares no ports.
  delete (dep.spec.template.spec.containers[0] as { ports?: unknown }).ports;
  playFile = join(dir, 'play.yaml');
  writeFileSync(playFile, [cm, dep].map((d) => stringify(d)).join('---\n'));

  const net = await podman.run(['network', 'create', '--subnet', `10.214.${subnet}.0/24`, '--gateway', gateway, NETWORK]);
  expect(net.code, net.stderr).toBe(0);
  networkCreated = true;
  const play = await podman.run(['kube', 'play', '--network', NETWORK, playFile], { env: env(), timeoutMs: 300_000 });
  if (play.code !== 0) throw new Error(`podman kube play failed:\n${play.stdout}\n${play.stderr}`);
  // The bridge (and so the gateway address) exists now: forward the lab servers onto it.
  await Promise.all([forward(gateway, regPort, [{ host: '127.0.0.1', port: regPort }]), forward(gateway, notaryPort, [{ host: '127.0.0.1', port: notaryPort }]), forward(gateway, 6379, [{ host: '127.0.0.1', port: redis.port }])]);

  const ps = await podman.run(['pod', 'ps', '--filter', `name=^${NAME}-pod-`, '--format', '{{.Name}}']);
  for (const name of ps.stdout.split('\n').filter(Boolean)) {
    const info = JSON.parse((await podman.run(['pod', 'inspect', name])).stdout) as { Labels: Record<string, string>; InfraContainerID: string };
    const ip = (await podman.run(['inspect', '--format', `{{(index .NetworkSettings.Networks "${NETWORK}").IPAddress}}`, info.InfraContainerID])).stdout.trim();
    pods.push({ name, ip, labels: info.Labels });
  }
  pods.sort((a, b) => a.name.localeCompare(b.name));

  // kube-proxy's part: Service port → the selected pods' named targetPort.
  const svc = one('Service', 'trustgate');
  const port = (svc.spec.ports as Array<{ port: number; targetPort: string | number }>)[0]!;
  const container = one('Deployment', 'trustgate').spec.template.spec.containers[0] as { ports: Array<{ name: string; containerPort: number }> };
  const target = typeof port.targetPort === 'number' ? port.targetPort : container.ports.find((p) => p.name === port.targetPort)!.containerPort;
  const selected = pods.filter((p) => Object.entries(svc.spec.selector as Record<string, string>).every(([k, v]) => p.labels[k] === v));
  const local = await freePort();
  service = { server: await forward('127.0.0.1', local, selected.map((p) => ({ host: p.ip, port: target }))), host: `127.0.0.1:${local}` };

  // kubelet's part: the readiness probe, on its path and port, until every pod answers.
  const probe = dep.spec.template.spec.containers[0].readinessProbe.httpGet as { path: string; port: string };
  const probePort = container.ports.find((p) => p.name === probe.port)?.containerPort ?? Number(probe.port);
  const deadline = Date.now() + 90_000;
  for (const p of pods) {
    for (;;) {
      const r = await fetch(`http://${p.ip}:${probePort}${probe.path}`).then(async (x) => ({ status: x.status, body: (await x.json()) as Record<string, unknown> }), () => undefined);
      if (r?.status === 200 && r.body.status === 'ok') break;
      if (Date.now() > deadline) {
        const logs = await podman.run(['logs', `${p.name}-trustgate`]);
        throw new Error(`${p.name} not ready (${JSON.stringify(r)}):\n${logs.stdout}${logs.stderr}`);
      }
      await new Promise((res) => setTimeout(res, 500));
    }
  }
}, 1_800_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(forwarders.map((s) => new Promise((r) => s.close(() => r(undefined)))));
  if (playFile && podman) await podman.run(['kube', 'down', playFile], { env: env(), timeoutMs: 120_000 });
  if (networkCreated && podman) await podman.run(['network', 'rm', '--force', NETWORK]);
  await redis?.stop();
  await notary?.stop();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (networkCreated) expect(existsSync(`/etc/cni/net.d/${NETWORK}.conflist`)).toBe(false);
}, 180_000);

describe('deploy/kubernetes', () => {
  it('kustomization.yaml lists every manifest in the directory', () => {
    const k = parse(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    expect([...k.resources].sort()).toEqual(readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort());
    expect(manifests().map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual(
      ['ConfigMap/trustgate-config', 'Deployment/trustgate', 'Deployment/trustgate-redis', 'PersistentVolumeClaim/trustgate-redis-data', 'PodDisruptionBudget/trustgate', 'Service/trustgate', 'Service/trustgate-redis'].sort(),
    );
  });

  it('the Deployment: 2 replicas, non-root, read-only root, probes on /healthz and /readyz, preStop, resources, config from the ConfigMap', () => {
    const d = one('Deployment', 'trustgate');
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    expect(d.spec.replicas).toBe(2);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.lifecycle.preStop.exec.command.length).toBeGreaterThan(0);
    expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources.limits.memory).toBeDefined();
    expect(pod.volumes).toContainEqual({ name: 'config', configMap: { name: 'trustgate-config' } });
    expect(c.volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/trustgate', readOnly: true });
    expect(c.env).toContainEqual({ name: 'TRUSTGATE_CONFIG', value: '/etc/trustgate/config.yaml' });
    // Draining must end before SIGKILL: trustgate's grace + the preStop pause < terminationGracePeriodSeconds.
    const grace = (parse(one('ConfigMap', 'trustgate-config').data!['config.yaml']!) as { limits: { shutdownGraceSeconds: number } }).limits.shutdownGraceSeconds;
    expect(grace + 5).toBeLessThan(pod.terminationGracePeriodSeconds);
    // The Service, the PDB and the Redis URL point at what exists.
    const labels = d.spec.template.metadata.labels as Record<string, string>;
    for (const sel of [one('Service', 'trustgate').spec.selector, one('PodDisruptionBudget', 'trustgate').spec.selector.matchLabels, d.spec.selector.matchLabels]) {
      for (const [k, v] of Object.entries(sel as Record<string, string>)) expect(labels[k], k).toBe(v);
    }
    expect(one('PodDisruptionBudget', 'trustgate').spec.minAvailable).toBe(1);
    const redisUrl = new URL((c.env as Array<{ name: string; value: string }>).find((e) => e.name === 'TRUSTGATE_REDIS_URL')!.value);
    const redisSvc = one('Service', redisUrl.hostname);
    expect(redisSvc.spec.ports[0].port).toBe(Number(redisUrl.port));
  });

  it('the shipped ConfigMap passes `trustgate config check` with the environment the Deployment gives', async () => {
    const f = join(dir, 'shipped-config.yaml');
    writeFileSync(f, one('ConfigMap', 'trustgate-config').data!['config.yaml']!);
    const r = await runCli(['config', 'check', f], { TRUSTGATE_REDIS_URL: 'redis://trustgate-redis:6379', TRUSTGATE_LISTEN: '0.0.0.0:5050' });
    expect(r, r.stdout).toMatchObject({ code: 0, out: { ok: true, store: 'redis', listen: '0.0.0.0:5050' } });
  });

  it('podman kube play runs two replicas of the image as uid 1000 on a read-only root, both ready on the shared Redis', async () => {
    expect(pods).toHaveLength(2);
    for (const p of pods) {
      const r = await podman.run(['inspect', '--format', '{{.State.Status}} {{.ImageName}} {{.Config.User}} {{.HostConfig.ReadonlyRootfs}}', `${p.name}-trustgate`]);
      expect(r.stdout.trim()).toBe(`running ${TRUSTGATE_IMAGE} 1000:1000 true`);
      const ready = await fetch(`http://${p.ip}:5050/readyz`);
      expect(await ready.json()).toEqual({ status: 'ok', store: 'memory+redis' });
      // The root filesystem refuses writes; the emptyDir volumes take them.
      expect((await podman.run(['exec', `${p.name}-trustgate`, 'node', '-e', 'require("fs").writeFileSync("/app/x","")'])).code).not.toBe(0);
      expect((await podman.run(['exec', `${p.name}-trustgate`, 'node', '-e', 'require("fs").writeFileSync("/app/data/x","")'])).code).toBe(0);
    }
  });

  it('skopeo pulls the signed tag through the Service port, and the unsigned one is refused', async () => {
    for (let i = 0; i < 2; i++) {
      // Twice: the Service stand-in round-robins, so each replica answers one of them.
      const out = join(dir, `pulled-${i}`);
      const pull = await skopeo(['copy', '--src-tls-verify=false', `docker://${service!.host}/${REPO}:signed`, `dir:${out}`]);
      expect(pull.code, pull.out).toBe(0);
      expect(readFileSync(join(out, 'manifest.json'))).toEqual(signed.manifest);
      const refused = await skopeo(['inspect', '--tls-verify=false', `docker://${service!.host}/${REPO}:unsigned`]);
      expect(refused.code).not.toBe(0);
      expect(refused.out).toMatch(/no valid trust data for k8s\/app:unsigned/);
    }
    // The audit lines of those answers are in the pods' logs (written in batches: shortly after).
    let logs = '';
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
      logs = (await Promise.all(pods.map((p) => podman.run(['logs', `${p.name}-trustgate`])))).map((l) => l.stdout + l.stderr).join('\n');
      if (/"ref":"signed".*"decision":"allow"/.test(logs) && /"ref":"unsigned".*"decision":"deny"/.test(logs)) break;
    }
    expect(logs).toMatch(/"ref":"signed".*"decision":"allow"/);
    expect(logs).toMatch(/"ref":"unsigned".*"decision":"deny"/);
  });
});
