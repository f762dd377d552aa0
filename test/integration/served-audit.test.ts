// Issue 27 against real parts (docker-registry with deletes enabled, notary-server, the notary CLI):
// (1) every manifest served or refused has its audit line, written once the outcome is known and
// carrying the digest served; (2) refusals name what was asked and the rule broken, nothing more, and
// cosign keys are named by fingerprint or configured name, never by path; (5) a manifest deleted
// upstream stops being served by digest within cache.digestRevalidateSeconds, at once with
// `trustgate cache forget`, and is served stale while the upstream is unreachable; (7) statuses as the
// distribution spec says (400 for bad pagination, 416 for an unsatisfiable range, 405 only for a method).
import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob } from '../support/blob-push.js';
import { makeCosignKey, pushClassicSignatures, signPayload, simpleSigningPayload } from '../support/cosign-sign.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { auditRecords } from '../support/through-proxy.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

let dir: string;
let registry: Registry;
let registry2: Registry;
let notary: NotaryLab;
let tg: Trustgate;
let tg2: Trustgate | undefined;
let keyFile: string;
const images: Record<string, PushedImage> = {};
const signer = makeCosignKey();
const fingerprint = `sha256:${createHash('sha256').update(createPublicKey(signer.publicPem).export({ type: 'spki', format: 'der' })).digest('hex')}`;

const configFile = (t: Trustgate, name = 'trustgate') => join(dir, `${name}-${new URL(t.url).port}.yaml`);

async function get(t: Trustgate, path: string, init: { method?: string; headers?: Record<string, string> } = {}) {
  const r = await request(`${t.url}${path}`, { method: (init.method ?? 'GET') as 'GET', headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json', ...init.headers } });
  const body = Buffer.from(await r.body.arrayBuffer());
  let error: { code?: string; message?: string; detail?: { code?: string } } | undefined;
  try {
    error = JSON.parse(body.toString('utf8')).errors?.[0];
  } catch {
    /* a manifest or a blob */
  }
  return { status: r.statusCode, headers: r.headers, body, error };
}

/** The audit records of a trustgate whose ref (and upstream) match, waiting briefly for the line to be written out. */
async function auditsFor(t: Trustgate, pred: (l: any) => boolean, atLeast = 1): Promise<any[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const got = auditRecords(t.logFile).filter(pred);
    if (got.length >= atLeast || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function decisionsCounted(t: Trustgate, upstream: string, decision: string, code = 'OK'): Promise<number> {
  const text = await (await request(`${t.url}/metrics`)).body.text();
  const m = new RegExp(`trustgate_trust_decisions_total\\{upstream="${upstream}",decision="${decision}",code="${code}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

async function deleteUpstream(reg: Registry, repo: string, digest: string): Promise<void> {
  const r = await request(`${reg.url}/v2/${repo}/manifests/${digest}`, { method: 'DELETE' });
  await r.body.dump();
  expect(r.statusCode).toBe(202);
  const gone = await request(`${reg.url}/v2/${repo}/manifests/${digest}`, { method: 'HEAD' });
  await gone.body.dump();
  expect(gone.statusCode).toBe(404);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-served-audit-'));
  const pki = await makePki(dir);
  [registry, registry2, notary] = await Promise.all([startRegistry(dir), startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  for (const name of ['u/plain', 's/app', 'c/unsigned', 'c/good', 'r/gone', 'r/forget', 'n/good']) images[name] = await pushImage(dir, registry.host, name, 'v1');
  images['sx/app'] = await pushImage(dir, registry2.host, 'sx/app', 'v1');
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(`${registry.host}/s/app`);
  writeFileSync(join(dir, 's-app'), images['s/app']!.manifest);
  await cli.sign(`${registry.host}/s/app`, 'v1', join(dir, 's-app'));
  for (const name of ['c/good', 'n/good']) {
    const payload = simpleSigningPayload(images[name]!.digest, { repo: `${registry.host}/${name}` });
    await pushClassicSignatures(registry.url, name, images[name]!.digest, [{ payload, signature: signPayload(payload, signer.privateKey) }]);
  }
  keyFile = join(dir, 'release-cosign.pub');
  writeFileSync(keyFile, signer.publicPem);
  const lab = { registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile } };
  tg = await startTrustgate(dir, {
    upstreams: [
      { name: 'lab', ...lab, cosign: { keys: [keyFile] }, policy: 'enforce', require: 'dct', repositories: [{ match: 'c/*', policy: 'enforce', require: 'cosign' }] },
      { name: 'aud', ...lab, policy: 'audit' },
      // A notary server nobody answers at: the refusals must not say where it is.
      { name: 'down', registry: registry.url, gun: registry.host, notary: { url: 'https://127.0.0.1:9', ca: notary.caFile, timeoutMs: 2000 }, policy: 'enforce' },
    ],
    default: 'lab',
  });
}, 180_000);

afterAll(() => stopAndRemove(dir, tg, tg2, notary, registry, registry2));

describe('(1, 3) an audit line for every manifest served or refused', () => {
  it('a digest pull under digestPulls: allow is audited as allow-digest with its digest, and counted', async () => {
    const { digest } = images['u/plain']!;
    const before = await decisionsCounted(tg, 'lab', 'allow-digest');
    for (const method of ['GET', 'HEAD']) expect((await get(tg, `/v2/u/plain/manifests/${digest}`, { method })).status).toBe(200);
    const lines = await auditsFor(tg, (l) => l.repo === 'u/plain' && l.ref === digest, 2);
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatchObject({ upstream: 'lab', decision: 'allow-digest', digest, digestPulls: 'allow', policy: 'enforce' });
    expect((await decisionsCounted(tg, 'lab', 'allow-digest')) - before).toBe(2);
  });

  it('a tag or digest the upstream does not have is not-found, never audit-allow', async () => {
    const missingTag = await get(tg, '/v2/aud/u/plain/manifests/missing');
    expect(missingTag.status).toBe(404);
    expect(missingTag.error?.detail?.code).toBe('MANIFEST_UNKNOWN');
    const tagLines = await auditsFor(tg, (l) => l.upstream === 'aud' && l.ref === 'missing');
    expect(tagLines.map((l) => [l.decision, l.code])).toEqual([['not-found', 'MANIFEST_UNKNOWN']]);
    const absent = `sha256:${'0'.repeat(64)}`;
    expect((await get(tg, `/v2/u/plain/manifests/${absent}`)).status).toBe(404);
    const digestLines = await auditsFor(tg, (l) => l.ref === absent);
    expect(digestLines.map((l) => [l.decision, l.code, l.digest])).toEqual([['not-found', 'MANIFEST_UNKNOWN', absent]]);
  });

  it('every line that serves bytes carries the digest served: audit-allow and allow alike', async () => {
    const plain = images['u/plain']!;
    const r = await get(tg, '/v2/aud/u/plain/manifests/v1');
    expect(r.status).toBe(200);
    expect(r.headers['docker-content-digest']).toBe(plain.digest);
    const [line] = await auditsFor(tg, (l) => l.upstream === 'aud' && l.repo === 'u/plain' && l.ref === 'v1');
    expect(line).toMatchObject({ decision: 'audit-allow', code: 'TRUST_DATA_MISSING', digest: plain.digest });
    expect((await get(tg, '/v2/s/app/manifests/v1')).status).toBe(200);
    const [allow] = await auditsFor(tg, (l) => l.repo === 's/app' && l.ref === 'v1');
    expect(allow).toMatchObject({ decision: 'allow', digest: images['s/app']!.digest });
  });
});

describe('(2) refusals name what was asked and the rule broken, nothing more', () => {
  it('an unsigned tag under cosign: no upstream digest, no trust-server address, no file path in the refusal; all of it in the audit line', async () => {
    const { digest } = images['c/unsigned']!;
    const r = await get(tg, '/v2/c/unsigned/manifests/v1');
    expect(r.status).toBe(403);
    expect(r.error?.detail?.code).toBe('COSIGN_UNSIGNED');
    const message = r.error!.message!;
    expect(message).toContain('c/unsigned:v1');
    expect(message).not.toContain(digest.slice(7, 19));
    expect(message).not.toContain(dir);
    const [line] = await auditsFor(tg, (l) => l.repo === 'c/unsigned' && l.ref === 'v1');
    expect(line).toMatchObject({ decision: 'deny', code: 'COSIGN_UNSIGNED' });
    expect(line.reason).toContain(digest);
  });

  it('no trust data: the refusal does not name the notary server', async () => {
    const r = await get(tg, '/v2/u/plain/manifests/v1');
    expect(r.status).toBe(403);
    expect(r.error?.detail?.code).toBe('TRUST_DATA_MISSING');
    expect(r.error!.message).toContain('u/plain:v1');
    expect(r.error!.message).not.toContain(new URL(notary.url).host);
    const [line] = await auditsFor(tg, (l) => l.repo === 'u/plain' && l.ref === 'v1' && l.upstream === 'lab');
    expect(line.reason).toContain(new URL(notary.url).host);
  });

  it('an unreachable notary server: neither the manifest nor the tags list refusal names it; the audit lines do', async () => {
    for (const path of ['/v2/down/s/app/manifests/v1', '/v2/down/s/app/tags/list']) {
      const r = await get(tg, path);
      expect(r.status, path).toBe(503);
      expect(r.error?.detail?.code, path).toBe('NOTARY_UNAVAILABLE');
      expect(r.error!.message, path).toContain('s/app');
      expect(r.error!.message, path).not.toContain('127.0.0.1:9');
    }
    const lines = await auditsFor(tg, (l) => l.upstream === 'down' && l.repo === 's/app', 2);
    expect(lines.map((l) => [l.ref, l.decision, l.code])).toEqual([
      ['v1', 'deny', 'NOTARY_UNAVAILABLE'],
      ['tags/list', 'deny', 'NOTARY_UNAVAILABLE'],
    ]);
    for (const l of lines) expect(l.reason).toContain('127.0.0.1:9');
  });

  it('X-Trustgate-Verified-By and satisfiedBy name a cosign key by its SPKI fingerprint, never its path', async () => {
    const r = await get(tg, '/v2/c/good/manifests/v1');
    expect(r.status).toBe(200);
    const by = String(r.headers['x-trustgate-verified-by']);
    expect(by).toContain(`key ${fingerprint}`);
    expect(by).not.toContain('release-cosign.pub');
    expect(by).not.toContain(dir);
    const [line] = await auditsFor(tg, (l) => l.repo === 'c/good' && l.ref === 'v1');
    expect(line).toMatchObject({ decision: 'allow', digest: images['c/good']!.digest, satisfiedBy: by });
  });
});

describe('(7) statuses and methods as the distribution spec says', () => {
  it('bad pagination is 400, not 405', async () => {
    for (const q of ['n=-1', 'n=1000000', 'n=00000001', 'last=a%22b']) {
      const r = await get(tg, `/v2/u/plain/tags/list?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.error?.code, q).toBe('PAGINATION_NUMBER_INVALID');
    }
    expect((await get(tg, '/v2/aud/u/plain/tags/list?n=1')).status).toBe(200);
  });

  it('an unsatisfiable range is 416 with Content-Range: bytes */size, from the upstream and from the blob cache', async () => {
    const digest = await pushBlob(registry.url, 'u/plain', 113);
    const ranged = () => get(tg, `/v2/u/plain/blobs/${digest}`, { headers: { range: 'bytes=113-' } });
    const cold = await ranged();
    expect(cold.status).toBe(416);
    expect(cold.headers['content-range']).toBe('bytes */113');
    const whole = await get(tg, `/v2/u/plain/blobs/${digest}`);
    expect(whole.status).toBe(200);
    expect(whole.body.length).toBe(113);
    const cached = await ranged();
    expect(cached.status).toBe(416);
    expect(cached.headers['content-range']).toBe('bytes */113');
    const part = await get(tg, `/v2/u/plain/blobs/${digest}`, { headers: { range: 'bytes=100-' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 100-112/113');
  });

  it('/metrics, /healthz and /readyz answer GET and HEAD, and 405 to anything else', async () => {
    for (const path of ['/metrics', '/healthz', '/readyz']) {
      for (const method of ['GET', 'HEAD']) expect((await get(tg, path, { method })).status, `${method} ${path}`).toBe(200);
      for (const method of ['PUT', 'POST', 'DELETE']) {
        const r = await get(tg, path, { method });
        expect(r.status, `${method} ${path}`).toBe(405);
        expect(r.headers.allow).toBe('GET, HEAD');
      }
    }
    expect((await get(tg, '/v2/u/plain/manifests/v1', { method: 'DELETE' })).status).toBe(405);
    // The right method on a route with nothing behind it is not a 405.
    expect((await get(tg, '/v2/u/plain/blobs/uploads/0f1e2d', { method: 'GET' })).status).toBe(404);
  });
});

describe('(5) manifests by digest are revalidated', () => {
  it('`trustgate cache forget IMAGE@DIGEST` withdraws a manifest deleted upstream at once', async () => {
    const { digest } = images['r/forget']!;
    expect((await get(tg, `/v2/r/forget/manifests/${digest}`)).status).toBe(200);
    await deleteUpstream(registry, 'r/forget', digest);
    // Within the revalidation window (default 3600 s) the cached copy is still what trustgate has.
    expect((await get(tg, `/v2/r/forget/manifests/${digest}`)).status).toBe(200);
    const r = await runCli(['cache', 'forget', '--config', configFile(tg), `${registry.host}/r/forget@${digest}`]);
    expect(r.code, r.stdout).toBe(0);
    expect(r.out).toMatchObject({ forgotten: expect.arrayContaining([`lab/r/forget@${digest}`]) });
    const t0 = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - t0 < 3000) {
      status = (await get(tg, `/v2/r/forget/manifests/${digest}`)).status;
      if (status === 200) await new Promise((res) => setTimeout(res, 100));
    }
    expect(status).toBe(404);
    const usage = await runCli(['cache', 'forget', '--config', configFile(tg), `${registry.host}/r/forget:v1`]);
    expect(usage.code).toBe(2);
  });

  it('a manifest deleted upstream is gone within cache.digestRevalidateSeconds, from every tier; an unreachable upstream serves it stale', async () => {
    tg2 = await startTrustgate(
      dir,
      {
        upstreams: [
          { name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, cosign: { keys: [{ path: keyFile, name: 'release-key' }] }, policy: 'enforce', require: 'dct', repositories: [{ match: 'n/*', policy: 'enforce', require: 'cosign' }] },
          { name: 'st', registry: registry2.url, gun: registry2.host, policy: 'off' },
        ],
        default: 'lab',
        cache: { digestRevalidateSeconds: 2 },
      },
      'reval',
    );
    // A configured key name is what the header says.
    const named = await get(tg2, '/v2/n/good/manifests/v1');
    expect(named.status).toBe(200);
    expect(String(named.headers['x-trustgate-verified-by'])).toContain('key release-key ');

    const { digest } = images['r/gone']!;
    expect((await get(tg2, `/v2/r/gone/manifests/${digest}`)).status).toBe(200);
    await deleteUpstream(registry, 'r/gone', digest);
    expect((await get(tg2, `/v2/r/gone/manifests/${digest}`)).status).toBe(200); // inside the window
    await new Promise((res) => setTimeout(res, 2500));
    const gone = await get(tg2, `/v2/r/gone/manifests/${digest}`);
    expect(gone.status).toBe(404);
    expect(gone.error?.detail?.code).toBe('MANIFEST_UNKNOWN');
    const lines = await auditsFor(tg2, (l) => l.repo === 'r/gone' && l.decision === 'not-found');
    expect(lines[0]).toMatchObject({ digest, code: 'MANIFEST_UNKNOWN' });
    // Gone from the file store too: a restarted trustgate on the same store does not bring it back.
    await tg2.stop();
    tg2 = await startTrustgate(dir, { upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, policy: 'off' }], default: 'lab' }, 'reval');
    expect((await get(tg2, `/v2/r/gone/manifests/${digest}`)).status).toBe(404);
    await tg2.stop();

    // Stale-if-unreachable, as distribution's proxy mode: the upstream down, the cached copy is served.
    tg2 = await startTrustgate(dir, { upstreams: [{ name: 'st', registry: registry2.url, gun: registry2.host, policy: 'off' }], default: 'st', cache: { digestRevalidateSeconds: 1 }, limits: { upstreamTimeoutMs: 2000 } }, 'stale');
    const st = images['sx/app']!;
    expect((await get(tg2, `/v2/sx/app/manifests/${st.digest}`)).status).toBe(200);
    await registry2.stop();
    await new Promise((res) => setTimeout(res, 1500));
    const stale = await get(tg2, `/v2/sx/app/manifests/${st.digest}`);
    expect(stale.status).toBe(200);
    expect(stale.body.equals(st.manifest)).toBe(true);
    const [line] = await auditsFor(tg2, (l) => l.repo === 'sx/app' && l.stale === true);
    expect(line).toMatchObject({ decision: 'pass', digest: st.digest, policy: 'off' });
  }, 60_000);
});
