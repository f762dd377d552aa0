// Fail closed everywhere (issue 12): the configuration space enumerated — upstream policy × repository
// entry × require × configured trust sources × digestPulls. Every combination either fails
// `config check` naming the offending key, or is started for real (one trustgate, one upstream per
// combination, real notary-server and docker-registry) and never serves an unsigned tag, or an
// unsigned digest under digestPulls: signed, with 200 unless the effective policy is off or audit —
// and the audit line says `pass` only under off. The expectations are computed here by hand from the
// rules in docs/signatures.md ("Effective policy: what a request is held to") and docs/configuration.md, not by
// calling src/policy/effective.ts.
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/schema.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { writeNotationFiles } from '../support/notation-sign.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const run = promisify(execFile);
const REPO = 'bar/app';
type Policy = 'enforce' | 'audit' | 'off';
type Kind = 'dct' | 'notation' | 'cosign';
type Require = 'dct' | 'notation' | 'any-of' | 'all-of' | { 'any-of': Kind[] } | { 'all-of': Kind[] };

const REQUIRES: Require[] = ['dct', 'notation', 'any-of', 'all-of', { 'any-of': ['dct', 'cosign'] }, { 'all-of': ['dct', 'cosign'] }];
const SOURCES: Kind[][] = [[], ['dct'], ['notation'], ['dct', 'notation'], ['dct', 'cosign']];
const POLICIES: Policy[] = ['enforce', 'audit', 'off'];
interface Entry {
  policy: Policy;
  require?: Require;
  digestPulls?: 'allow' | 'signed';
}
const ENTRIES: Array<Entry | undefined> = [undefined, { policy: 'enforce' }, { policy: 'audit' }, { policy: 'off' }, { policy: 'enforce', require: 'notation' }, { policy: 'enforce', digestPulls: 'signed' }];
const DIGEST_PULLS = ['allow', 'signed'] as const;

interface Combo {
  id: number;
  policy: Policy;
  require: Require;
  sources: Kind[];
  entry: Entry | undefined;
  digestPulls: 'allow' | 'signed';
}

function kinds(r: Require): { mode: 'any-of' | 'all-of'; of: Kind[] } {
  if (r === 'dct' || r === 'notation') return { mode: 'any-of', of: [r] };
  if (r === 'any-of') return { mode: 'any-of', of: ['dct', 'notation'] };
  if (r === 'all-of') return { mode: 'all-of', of: ['dct', 'notation'] };
  return 'any-of' in r ? { mode: 'any-of', of: r['any-of'] } : { mode: 'all-of', of: r['all-of'] };
}

/** What the request for bar/app gets: the only entry matches bar/**. */
function effective(c: Combo) {
  return { policy: c.entry?.policy ?? c.policy, require: kinds(c.entry?.require ?? c.require), digestPulls: c.entry?.digestPulls ?? c.digestPulls };
}

/** The config is valid iff no requirement reachable under policy enforce/audit names a kind without a source. */
function shouldBeValid(c: Combo): boolean {
  const lacks = (policy: Policy, r: Require) => policy !== 'off' && kinds(r).of.some((k) => !c.sources.includes(k));
  if (lacks(c.policy, c.require)) return false;
  if (c.entry && lacks(c.entry.policy, c.entry.require ?? c.require)) return false;
  return true;
}

let dir: string;
let registry: Registry;
let notary: NotaryLab;
let proxy: Trustgate;
let files: { trustPolicy: string; trustStore: string; cosignKey: string };
const images: Record<string, PushedImage> = {};
const combos: Combo[] = [];
const accepted: Combo[] = [];

function upstreamOf(c: Combo): Record<string, unknown> {
  return {
    name: `c${c.id}`,
    registry: registry.url,
    gun: registry.host,
    policy: c.policy,
    require: c.require,
    digestPulls: c.digestPulls,
    ...(c.sources.includes('dct') ? { notary: { url: notary.url, ca: notary.caFile } } : {}),
    ...(c.sources.includes('notation') ? { notation: { trustPolicy: files.trustPolicy, trustStore: files.trustStore } } : {}),
    ...(c.sources.includes('cosign') ? { cosign: { keys: [files.cosignKey] } } : {}),
    ...(c.entry ? { repositories: [{ match: 'bar/**', ...c.entry }] } : {}),
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-failclosed-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  const gun = `${registry.host}/${REPO}`;
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(gun);
  for (const tag of ['signed', 'unsigned']) images[tag] = await pushImage(dir, registry.host, REPO, tag);
  writeFileSync(join(dir, 'm-signed'), images.signed!.manifest);
  await cli.sign(gun, 'signed', join(dir, 'm-signed'));

  const { trustPolicy, trustStore } = writeNotationFiles(dir);
  const cosignKey = join(dir, 'cosign.pub');
  writeFileSync(cosignKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
  files = { trustPolicy, trustStore, cosignKey };

  let id = 0;
  for (const policy of POLICIES)
    for (const require of REQUIRES)
      for (const sources of SOURCES)
        for (const entry of ENTRIES)
          for (const digestPulls of DIGEST_PULLS) combos.push({ id: id++, policy, require, sources, entry, digestPulls });
  for (const c of combos) {
    try {
      validateConfig({ upstreams: [upstreamOf(c)] }, 'combo');
      accepted.push(c);
    } catch {
      /* checked in the first test */
    }
  }
  proxy = await startTrustgate(dir, { upstreams: accepted.map(upstreamOf), log: { level: 'info' }, limits: { upstreamTimeoutMs: 10_000 } });
}, 300_000);

afterAll(async () => {
  await proxy?.stop();
  await notary?.stop();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function get(path: string, method: 'GET' | 'HEAD' = 'GET'): Promise<{ status: number; code?: string; digest?: string }> {
  const res = await request(`${proxy.url}${path}`, { method, headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' } });
  const text = method === 'HEAD' ? '' : await res.body.text();
  if (method === 'HEAD') await res.body.dump();
  let code: string | undefined;
  try {
    code = JSON.parse(text).errors?.[0]?.detail?.code;
  } catch {
    /* a manifest */
  }
  const digest = res.headers['docker-content-digest'];
  return { status: res.statusCode, code, ...(typeof digest === 'string' ? { digest } : {}) };
}

describe('the configuration space', () => {
  it('config check accepts exactly the combinations whose every effective requirement has a trust source, and names the key otherwise', () => {
    expect(combos.length).toBe(POLICIES.length * REQUIRES.length * SOURCES.length * ENTRIES.length * DIGEST_PULLS.length);
    const wrong: string[] = [];
    for (const c of combos) {
      let problem: string | undefined;
      try {
        validateConfig({ upstreams: [upstreamOf(c)] }, 'combo');
      } catch (err) {
        problem = (err as Error).message;
      }
      if (shouldBeValid(c) !== (problem === undefined)) wrong.push(`${JSON.stringify(c)} → ${problem ?? 'accepted'}`);
      if (problem !== undefined) expect(problem).toMatch(/upstreams\[0\]\.(notary|require|repositories\[0\]\.(policy|require)): /);
    }
    expect(wrong).toEqual([]);
    expect(accepted.length).toBeGreaterThan(50);
    expect(accepted.length).toBeLessThan(combos.length);
  });

  it('every accepted combination, started for real, serves unsigned tags and digests only where the effective policy allows', async () => {
    const wrong: string[] = [];
    /** Per upstream and reference: how many answers, and the digest of each 200. */
    const answered = new Map<string, { responses: number; served: string[] }>();
    const unsignedDigest = images.unsigned!.digest;
    const signedDigest = images.signed!.digest;
    for (const c of accepted) {
      const eff = effective(c);
      const base = `/v2/c${c.id}/${REPO}/manifests`;
      const dctSatisfies = eff.require.mode === 'any-of' ? eff.require.of.includes('dct') : eff.require.of.every((k) => k === 'dct');
      const expectations: Array<[string, 'GET' | 'HEAD', (s: number) => boolean, string]> = [
        [`${base}/unsigned`, 'GET', (s) => (eff.policy === 'enforce' ? s === 403 : s === 200), 'unsigned tag'],
        [`${base}/unsigned`, 'HEAD', (s) => (eff.policy === 'enforce' ? s === 403 : s === 200), 'unsigned tag (HEAD)'],
        [`${base}/signed`, 'GET', (s) => (eff.policy === 'enforce' && !dctSatisfies ? s === 403 : s === 200), 'DCT-signed tag'],
        [`${base}/${unsignedDigest}`, 'GET', (s) => (eff.policy === 'enforce' && eff.digestPulls === 'signed' ? s === 403 : s === 200), 'unsigned digest'],
        [`${base}/${signedDigest}`, 'GET', (s) => (eff.policy === 'enforce' && eff.digestPulls === 'signed' && !dctSatisfies ? s === 403 : s === 200), 'signed digest'],
      ];
      // Twice: the second pass is answered by the warm path (server/handlers/warm-tag.ts) wherever it
      // applies — a tag the full path resolved and whose manifest is in memory — and must agree.
      for (const pass of ['first', 'warm']) {
        for (const [path, method, ok, what] of expectations) {
          const r = await get(path, method);
          const key = `c${c.id} ${path.slice(path.lastIndexOf('/') + 1)}`;
          const seen = answered.get(key) ?? { responses: 0, served: [] };
          seen.responses++;
          if (r.status === 200) seen.served.push(r.digest ?? '(no Docker-Content-Digest)');
          answered.set(key, seen);
          if (!ok(r.status)) wrong.push(`${what} ${method} (${pass} pass) → ${r.status} ${r.code ?? ''} for ${JSON.stringify(c)} (effective ${JSON.stringify(eff)})`);
          if (r.status >= 500) wrong.push(`${what} ${method} (${pass} pass) → ${r.status} ${r.code ?? ''} for ${JSON.stringify(c)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    // The audit record: `pass` only under an effective policy off; a refusal is never written as pass.
    const total = [...answered.values()].reduce((n, a) => n + a.responses, 0);
    const read = () => readFileSync(proxy.logFile, 'utf8').split('\n').filter((l) => l.includes('"audit":true')).map((l) => JSON.parse(l) as { decision: string; policy: string; upstream: string; ref: string; code?: string; digest?: string });
    let lines = read();
    for (const until = Date.now() + 5000; lines.length < total && Date.now() < until; lines = read()) await new Promise((r) => setTimeout(r, 50));
    // Issue 27: one line per answer, and every 200 has exactly one line that serves bytes, carrying the
    // digest it served (digest pulls under allow included; a 404 is never audit-allow).
    const SERVING = new Set(['allow', 'allow-digest', 'audit-allow', 'pass']);
    const byRef = new Map<string, typeof lines>();
    for (const l of lines) byRef.set(`${l.upstream} ${l.ref}`, [...(byRef.get(`${l.upstream} ${l.ref}`) ?? []), l]);
    const unaudited: string[] = [];
    for (const [key, a] of answered) {
      const own = byRef.get(key) ?? [];
      const served = own.filter((l) => SERVING.has(l.decision)).map((l) => l.digest ?? '(no digest)');
      if (own.length !== a.responses) unaudited.push(`${key}: ${a.responses} answers, ${own.length} audit lines`);
      if (JSON.stringify([...served].sort()) !== JSON.stringify([...a.served].sort())) unaudited.push(`${key}: served ${JSON.stringify(a.served)}, audited as served ${JSON.stringify(served)}`);
    }
    expect(unaudited).toEqual([]);
    expect(lines.length).toBe(total);
    expect(lines.length).toBeGreaterThan(accepted.length);
    expect(lines.filter((l) => l.decision === 'pass' && l.policy !== 'off')).toEqual([]);
    const byUpstream = new Map(accepted.map((c) => [`c${c.id}`, c]));
    const unsignedEnforced = lines.filter((l) => l.ref === 'unsigned' && effective(byUpstream.get(l.upstream)!).policy === 'enforce');
    expect(unsignedEnforced.length).toBeGreaterThan(0);
    expect(unsignedEnforced.every((l) => l.decision === 'deny' && typeof l.code === 'string')).toBe(true);
  }, 600_000);

  it('digestPulls: signed with skopeo by digest: the signed digest is copied, the unsigned one refused with DIGEST_NOT_SIGNED', async () => {
    const c = accepted.find((x) => x.policy === 'enforce' && x.require === 'dct' && x.entry === undefined && x.digestPulls === 'signed' && x.sources.length === 1);
    expect(c).toBeDefined();
    const copy = async (digest: string) => {
      try {
        const r = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${proxy.host}/c${c!.id}/${REPO}@${digest}`, `oci:${join(dir, `by-digest-${digest.slice(7, 19)}`)}:x`], { timeout: 120_000 });
        return { ok: true, out: r.stdout + r.stderr };
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string };
        return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
      }
    };
    const good = await copy(images.signed!.digest);
    expect(good.ok, good.out).toBe(true);
    const bad = await copy(images.unsigned!.digest);
    expect(bad.ok).toBe(false);
    expect(bad.out).toMatch(/not covered by a signature|DIGEST_NOT_SIGNED|denied/i);
    const r = await get(`/v2/c${c!.id}/${REPO}/manifests/${images.unsigned!.digest}`);
    expect(r).toEqual({ status: 403, code: 'DIGEST_NOT_SIGNED' });
  });
});

describe('reproduced (issue 12)', () => {
  it('upstream off, a repository entry enforcing, no notary: `trustgate config check` refuses naming the key', async () => {
    const file = join(dir, 'repro1.yaml');
    writeFileSync(file, stringify({ upstreams: [{ name: 'u', registry: registry.url, gun: registry.host, policy: 'off', repositories: [{ match: 'bar/**', policy: 'enforce' }] }] }));
    const r = await runCli(['config', 'check', file]);
    expect(r.code).toBe(1);
    expect(r.out.message).toMatch(/upstreams\[0\]\.repositories\[0\]\.policy: got "enforce", expected a notary server/);
  });

  it('Basic credentials for a plain-http registry: `trustgate config check` refuses unless insecure: true', async () => {
    const file = join(dir, 'repro4.yaml');
    const up = { name: 'u', registry: registry.url, gun: registry.host, policy: 'off', username: 'svc', passwordEnv: 'PW' };
    writeFileSync(file, stringify({ upstreams: [up] }));
    const refused = await runCli(['config', 'check', file], { PW: 'secret' });
    expect(refused.code).toBe(1);
    expect(refused.out.message).toMatch(/upstreams\[0\]\.username: got "svc", expected credentials only over https/);
    writeFileSync(file, stringify({ upstreams: [{ ...up, insecure: true }] }));
    const ok = await runCli(['config', 'check', file], { PW: 'secret' });
    expect(ok.code, ok.stdout).toBe(0);
  });
});
