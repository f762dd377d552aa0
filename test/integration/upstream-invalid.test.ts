// Upstream answers are input (issue 12): a node:http stand-in registry answers every request with one
// kind of malformed body (not JSON, wrong shapes, truncated, deeply nested, empty), and every handler
// of trustgate — manifests by tag and digest under off/audit/enforce, tags list, blobs, the Notation
// referrers lookup, the token flow — answers with an OCI error carrying a stable code (or serves under
// audit/off), never 500, and refusals are audited. The audit fallback still serves under policy audit.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNotationFiles } from '../support/notation-sign.js';
import { StandIns } from '../support/stand-in.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const BODIES: Record<string, string> = {
  'not JSON': '<html>502 Bad Gateway</html>',
  'a JSON array': '[1,2,3]',
  'JSON null': 'null',
  'wrong shapes': '{"tags":5,"manifests":"x","token":7,"mediaType":9,"layers":{}}',
  'tags of the wrong type': '{"name":"x","tags":[1,{"a":2}]}',
  'truncated JSON': '{"tags":["a","b"',
  'deep nesting': '['.repeat(50_000),
  empty: '',
};
const D = `sha256:${'ab'.repeat(32)}`;
let mode = 'not JSON';
let dir: string;
let proxy: Trustgate;
const standIns = new StandIns();
const listen = standIns.listen.bind(standIns);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-upstream-invalid-'));
  let realm = '';
  const junk = await listen((req, res) => {
    const url = req.url ?? '';
    const body = BODIES[mode]!;
    if (url.startsWith('/token')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    const type = url.includes('/manifests/') || url.includes('/referrers/') ? 'application/vnd.oci.image.index.v1+json' : 'application/json';
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) }).end(body);
  });
  realm = junk;
  // The same junk, behind a token challenge whose realm answers junk too.
  const authed = await listen((req, res) => {
    if (!req.headers.authorization) return void res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}/token",service="junk"` }).end();
    res.writeHead(404).end();
  });
  const { trustPolicy, trustStore } = writeNotationFiles(dir);
  const notation = { trustPolicy, trustStore };
  proxy = await startTrustgate(dir, {
    upstreams: [
      { name: 'off', registry: junk, gun: 'junk.example', policy: 'off' },
      { name: 'aud', registry: junk, gun: 'junk.example', policy: 'audit', require: 'notation', notation },
      { name: 'enf', registry: junk, gun: 'junk.example', policy: 'enforce', require: 'notation', notation },
      { name: 'auth', registry: authed, gun: 'junk.example', policy: 'off', realms: [junk] },
    ],
    log: { level: 'info' },
    limits: { upstreamTimeoutMs: 5000 },
  });
});

afterAll(async () => {
  await proxy?.stop();
  standIns.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function call(path: string, method = 'GET'): Promise<{ status: number; code: string | undefined; body: string }> {
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(`${proxy.url}${path}`, { method });
  } catch (err) {
    // Only a blob whose bytes do not hash may be cut before or while it is sent (the hold-back).
    if (path.includes('/blobs/')) return { status: 0, code: 'CUT', body: '' };
    throw err;
  }
  let body = '';
  try {
    body = method === 'HEAD' ? '' : await res.body.text();
  } catch {
    /* a cut blob stream: the status line was still seen */
  }
  if (method === 'HEAD') await res.body.dump().catch(() => {});
  let code: string | undefined;
  try {
    code = JSON.parse(body).errors?.[0]?.detail?.code;
  } catch {
    /* not an error body */
  }
  return { status: res.statusCode, code, body };
}

const ROUTES: Array<[string, string]> = [
  ['GET', '/v2/off/x/app/manifests/v1'],
  ['HEAD', '/v2/off/x/app/manifests/v1'],
  ['GET', `/v2/off/x/app/manifests/${D}`],
  ['GET', '/v2/off/x/app/tags/list'],
  ['GET', `/v2/off/x/app/blobs/${D}`],
  ['GET', '/v2/aud/x/app/manifests/v1'],
  ['GET', '/v2/aud/x/app/tags/list'],
  ['GET', '/v2/enf/x/app/manifests/v1'],
  ['HEAD', '/v2/enf/x/app/manifests/v1'],
  ['GET', `/v2/enf/x/app/manifests/${D}`],
  ['GET', '/v2/enf/x/app/tags/list'],
  ['GET', '/v2/auth/x/app/manifests/v1'],
  ['GET', '/v2/auth/x/app/tags/list'],
  ['GET', '/v2/'],
];

describe('malformed upstream answers', () => {
  it.each(Object.keys(BODIES))('%s: no handler answers 500; every error body carries a stable code other than INTERNAL', async (m) => {
    mode = m;
    const bad: string[] = [];
    for (const [method, path] of ROUTES) {
      const r = await call(path, method);
      if (r.status === 500 || r.code === 'INTERNAL') bad.push(`${method} ${path} → ${r.status} ${r.body.slice(0, 200)}`);
      if (method === 'GET' && (r.status >= 400 || r.status === 0) && !r.code) bad.push(`${method} ${path} → ${r.status} without an OCI error code: ${r.body.slice(0, 200)}`);
    }
    expect(bad).toEqual([]);
  });

  it('tags list under policy audit: UPSTREAM_INVALID (502) and an audit line', async () => {
    mode = 'not JSON';
    const r = await call('/v2/aud/x/app/tags/list');
    expect(r).toMatchObject({ status: 502, code: 'UPSTREAM_INVALID' });
    const lines = readFileSync(proxy.logFile, 'utf8').split('\n').filter((l) => l.includes('"audit":true')).map((l) => JSON.parse(l));
    expect(lines.some((l) => l.upstream === 'aud' && l.ref === 'tags/list' && l.code === 'UPSTREAM_INVALID' && l.decision === 'deny')).toBe(true);
  });

  it('a junk referrers index: enforce refuses with UPSTREAM_INVALID; audit still serves (audit-allow) and says why', async () => {
    mode = 'wrong shapes';
    expect(await call('/v2/enf/x/app/manifests/v1')).toMatchObject({ status: 502, code: 'UPSTREAM_INVALID' });
    const served = await call('/v2/aud/x/app/manifests/v1');
    expect(served.status).toBe(200);
    const lines = readFileSync(proxy.logFile, 'utf8').split('\n').filter((l) => l.includes('"audit":true')).map((l) => JSON.parse(l));
    expect(lines.some((l) => l.upstream === 'aud' && l.ref === 'v1' && l.decision === 'audit-allow' && l.code === 'UPSTREAM_INVALID')).toBe(true);
  });

  it('a token response that is not a token: UPSTREAM_INVALID, not 500', async () => {
    for (const m of ['not JSON', 'a JSON array', 'wrong shapes']) {
      mode = m;
      expect(await call('/v2/auth/x/app/manifests/v1')).toMatchObject({ status: 502, code: 'UPSTREAM_INVALID' });
    }
  });
});
