// What an operator relies on, with real parts: /metrics after real pulls, SIGTERM during a blob
// stream, `trustgate inspect` against the notary CLI's own `list`, `config check`, and no secret in
// any log line.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob, sha256Of } from '../support/blob-push.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const run = promisify(execFile);
const REPO = 'ops/app';
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let cli: NotaryCli;
let proxy: Trustgate;
let gun: string;
let signed: PushedImage;
let configFile: string;

function upstreams() {
  return [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' as const, username: 'svc', passwordEnv: 'OPS_SECRET', insecure: true /* lab registry is plain http */ }];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-ops-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'remote' })]);
  gun = `${registry.host}/${REPO}`;
  cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(gun);
  signed = await pushImage(dir, registry.host, REPO, 'v1');
  const rel = await pushImage(dir, registry.host, REPO, 'rel');
  await pushImage(dir, registry.host, REPO, 'unsigned');
  writeFileSync(join(dir, 'v1'), signed.manifest);
  writeFileSync(join(dir, 'rel'), rel.manifest);
  await cli.sign(gun, 'v1', join(dir, 'v1'));
  // A targets/releases delegation with its own key, as `docker trust signer add` set it up.
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(dir, 'd.key')]);
  await run('openssl', ['req', '-x509', '-new', '-key', join(dir, 'd.key'), '-subj', '/CN=releases', '-days', '30', '-out', join(dir, 'd.pem')]);
  await run('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', join(dir, 'd.key'), '-out', join(dir, 'd.p8')]);
  await cli.run(['delegation', 'add', gun, 'targets/releases', join(dir, 'd.pem'), '--all-paths']);
  await cli.run(['key', 'import', join(dir, 'd.p8'), '--role', 'targets/releases', '--gun', gun]);
  await cli.sign(gun, 'rel', join(dir, 'rel'), ['targets/releases']);
  const config = { upstreams: upstreams(), default: 'lab', log: { level: 'debug' }, limits: { shutdownGraceSeconds: 20 } };
  configFile = join(dir, 'ops.yaml');
  writeFileSync(configFile, stringify({ listen: '127.0.0.1:1', ...config }));
  proxy = await startTrustgate(dir, config, 'ops', { OPS_SECRET: 'hunter2-secret' });
});

afterAll(async () => {
  await proxy?.stop();
  await notary?.stop();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

describe('operability', () => {
  it('/metrics counts requests, decisions, notary fetches, store lookups and streamed bytes after real pulls', async () => {
    const ok = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${proxy.host}/${REPO}:v1`, `oci:${join(dir, 'pulled')}:x`]);
    expect(ok.stderr).not.toMatch(/error/i);
    await expect(run('skopeo', ['copy', '--src-tls-verify=false', `docker://${proxy.host}/${REPO}:unsigned`, `oci:${join(dir, 'nope')}:x`])).rejects.toThrow();
    const res = await fetch(`${proxy.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(metric(text, 'trustgate_http_requests_total', { route: 'manifest', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'trustgate_http_requests_total', { route: 'manifest', status: '403' })).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'trustgate_http_requests_total', { route: 'blob', status: '200' })).toBeGreaterThanOrEqual(2);
    expect(metric(text, 'trustgate_trust_decisions_total', { decision: 'allow', code: 'OK' })).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'trustgate_trust_decisions_total', { decision: 'deny', code: 'TAG_NOT_SIGNED' })).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'trustgate_notary_fetches_total', { role: 'timestamp', result: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'trustgate_notary_fetch_duration_seconds_count')).toBeGreaterThanOrEqual(4);
    expect(metric(text, 'trustgate_upstream_request_duration_seconds_count', { kind: 'blob' })).toBeGreaterThanOrEqual(2);
    expect(metric(text, 'trustgate_store_operations_total', { layer: 'memory' })).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'trustgate_bytes_streamed_total')).toBe(signed.blobs.reduce((n, b) => n + b.size, 0));
    expect(metric(text, 'trustgate_streams_in_flight')).toBe(0);
  });

  it('never logs credentials', async () => {
    await request(`${proxy.url}/v2/${REPO}/manifests/v1`, { headers: { authorization: 'Basic c2VjcmV0LWNsaWVudDpodW50ZXIy' } }).then((r) => r.body.dump());
    const log = readFileSync(proxy.logFile, 'utf8');
    expect(log).toContain('"level":20'); // debug lines were written…
    expect(log).not.toContain('hunter2-secret'); // …and none carries the upstream password
    expect(log).not.toContain('c2VjcmV0LWNsaWVudDpodW50ZXIy'); // or the client's Authorization
  });

  it('inspect agrees with the notary CLI list for the same repository', async () => {
    const { stdout } = await runCli(['inspect', `${gun}`, '--json', '--config', configFile], { OPS_SECRET: 'x' });
    const [ours] = JSON.parse(stdout);
    const listed = (await cli.run(['list', gun]))
      .split('\n')
      .slice(2)
      .filter((l) => l.trim())
      .map((l) => l.trim().split(/\s+/));
    // notary list: NAME DIGEST SIZE ROLE — one row per tag per role.
    for (const [name, digest, , role] of listed) {
      if (role === 'targets' || role === 'targets/releases') expect(ours.SignedTags).toContainEqual(expect.objectContaining({ SignedTag: name, Digest: digest }));
    }
    expect(ours.SignedTags.map((t: { SignedTag: string }) => t.SignedTag).sort()).toEqual(['rel', 'v1']);
    expect(ours.AdministrativeKeys.map((a: { Name: string }) => a.Name)).toEqual(['Root', 'Repository']);
    expect(ours.Signers).toEqual([]);
    const pretty = await runCli(['inspect', `${gun}:v1`, '--config', configFile], { OPS_SECRET: 'x' });
    expect(pretty.stdout).toContain(`Signatures for ${gun}`);
    expect(pretty.stdout).toMatch(new RegExp(`v1\\s+${signed.digest.slice(7)}\\s+Repo Admin`));
    expect(pretty.stdout).not.toContain('rel ');
  });

  it('config check validates without starting', async () => {
    const good = await runCli(['config', 'check', configFile], { OPS_SECRET: 'x' });
    expect(good).toMatchObject({ code: 0, out: { ok: true, upstreams: ['lab'] } });
    writeFileSync(join(dir, 'bad.yaml'), stringify({ upstreams: [{ name: 'x', registry: 'nope', gun: 'h', policy: 'sometimes' }] }));
    const bad = await runCli(['config', 'check', join(dir, 'bad.yaml')]);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatchObject({ error: 'CONFIG_INVALID' });
    expect(bad.out.message).toContain('upstreams[0].policy: got "sometimes", expected one of enforce, audit, off');
  });

  it('SIGTERM lets an in-flight blob stream finish, refuses new work, then exits', async () => {
    const size = 256 << 20;
    const digest = await pushBlob(registry.url, REPO, size);
    const res = await request(`${proxy.url}/v2/${REPO}/blobs/${digest}`, { highWaterMark: 64 * 1024 });
    expect(res.statusCode).toBe(200);
    const reader = res.body;
    // Read a little, then signal while most of the blob is still to come.
    const first = await new Promise<Buffer>((resolve) => reader.once('data', (c: Buffer) => resolve(c)));
    reader.pause();
    process.kill(proxy.pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect((await fetch(`${proxy.url}/readyz`).then((r) => r.status).catch(() => 'refused'))).not.toBe(200);
    const { Readable } = await import('node:stream');
    const rest = await sha256Of(Readable.from((async function* () {
      yield first;
      for await (const c of reader) yield c as Buffer;
    })()));
    expect(rest).toBe(digest);
    const exited = await new Promise<boolean>((resolve) => {
      const t = setInterval(() => {
        try {
          process.kill(proxy.pid, 0);
        } catch {
          clearInterval(t);
          resolve(true);
        }
      }, 100);
      setTimeout(() => (clearInterval(t), resolve(false)), 15_000);
    });
    expect(exited).toBe(true);
    expect(readFileSync(proxy.logFile, 'utf8')).toContain('"msg":"stopped"');
  });
});
