// `trustgate lookup` against a live notary-server through a repository's whole life, signed with the
// real notary CLI: init with a server-managed snapshot key, tags, a targets/releases delegation, a
// removed tag, a targets key rotation, two root key rotations. After every step, every tag must
// resolve as Docker's rule says and agree with `notary lookup` wherever the two rules agree; online
// and offline (--metadata-dir of the bytes the server serves), and with --trusted-dir from before.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { makePki, type Pki } from '../support/pki.js';
import { runCli } from '../support/trustgate-process.js';

const run = promisify(execFile);

interface Expect {
  digest: string;
  length: number;
  role: string;
}

async function lookup(args: string[]): Promise<{ code: number; out: Record<string, unknown> }> {
  const { code, out } = await runCli(['lookup', ...args]);
  return { code, out };
}

/** The exact bytes the server serves, laid out as --metadata-dir reads them. */
async function download(lab: NotaryLab, gun: string, out: string): Promise<void> {
  const dispatcher = new Agent({ connect: { ca: readFileSync(lab.caFile) } });
  const get = async (name: string) => {
    const res = await request(`${lab.url}/v2/${gun}/_trust/tuf/${name}.json`, { dispatcher });
    const body = Buffer.from(await res.body.arrayBuffer());
    return res.statusCode === 200 ? body : null;
  };
  mkdirSync(out, { recursive: true });
  for (const role of ['root', 'timestamp', 'snapshot', 'targets']) writeFileSync(join(out, `${role}.json`), (await get(role))!);
  const snap = JSON.parse(readFileSync(join(out, 'snapshot.json'), 'utf8'));
  for (const role of Object.keys(snap.signed.meta).filter((r) => r.startsWith('targets/'))) {
    mkdirSync(dirname(join(out, `${role}.json`)), { recursive: true });
    writeFileSync(join(out, `${role}.json`), (await get(role))!);
  }
  const rootVersion = JSON.parse(readFileSync(join(out, 'root.json'), 'utf8')).signed.version;
  for (let v = 1; v < rootVersion; v++) {
    const b = await get(`${v}.root`);
    if (b) writeFileSync(join(out, `${v}.root.json`), b);
  }
  await dispatcher.close();
}

describe.each(['local', 'remote'] as const)('lookup through a repository lifecycle (%s signer)', (signer) => {
  let dir: string;
  let pki: Pki;
  let lab: NotaryLab;
  let cli: NotaryCli;
  const gun = `127.0.0.1:5000/life/${signer}`;
  const want = new Map<string, Expect | null>(); // tag → expected result under Docker's rule (null: refused)
  let step = 0;

  const file = (name: string, content: string) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return { path: p, digest: `sha256:${createHash('sha256').update(content).digest('hex')}`, length: Buffer.byteLength(content) };
  };

  /** Check every tag online, offline, and against notary lookup; returns the offline dir. */
  async function checkAll(): Promise<string> {
    step++;
    const offline = join(dir, `meta-${step}`);
    await download(lab, gun, offline);
    for (const [tag, exp] of want) {
      if (tag.includes(':')) continue; // a note, not a tag
      const online = await lookup([gun, tag, '--server', lab.url, '--ca', lab.caFile]);
      const off = await lookup([gun, tag, '--metadata-dir', offline]);
      if (exp) {
        expect(online, `step ${step} ${tag} online`).toEqual({ code: 0, out: { gun, tag, ...exp } });
        expect(off, `step ${step} ${tag} offline`).toEqual(online);
        // notary lookup checks targets before delegations; where a tag is only in one place, or the
        // same in both, the two rules agree.
        const n = await cli.lookup(gun, tag);
        if (exp.role === 'targets' || !(want.get(`${tag}:in-targets`) ?? null)) expect(n, `step ${step} ${tag} notary`).toEqual({ digest: exp.digest, length: exp.length });
      } else {
        expect(online.code, `step ${step} ${tag}`).toBe(1);
        expect(online.out.error).toBe('TAG_NOT_SIGNED');
        expect(off.out.error).toBe('TAG_NOT_SIGNED');
      }
    }
    return offline;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `trustgate-life-${signer}-`));
    pki = await makePki(dir);
    lab = await startNotary(dir, pki, { signer });
    cli = new NotaryCli(lab.url, lab.caFile, join(dir, 'trust'));
  });
  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a GUN that was never initialised with TRUST_DATA_MISSING', async () => {
    const r = await lookup([`${gun}-none`, 'v1', '--server', lab.url, '--ca', lab.caFile]);
    expect(r).toMatchObject({ code: 1, out: { error: 'TRUST_DATA_MISSING' } });
  });

  it('follows every step of the repository', async () => {
    await cli.initRepo(gun);
    const v1 = file('v1', 'manifest v1\n');
    const v2 = file('v2', 'manifest v2\n');
    await cli.run(['add', gun, 'v1', v1.path]);
    await cli.run(['add', gun, 'v2', v2.path]);
    await cli.run(['publish', gun]);
    want.set('v1', { digest: v1.digest, length: v1.length, role: 'targets' });
    want.set('v2', { digest: v2.digest, length: v2.length, role: 'targets' });
    want.set('never', null);
    await checkAll();
    const trustedEarly = join(dir, 'trusted-early');
    cpSync(join(dir, 'trust', 'tuf', gun, 'metadata'), trustedEarly, { recursive: true });

    // targets/releases delegation: a new tag there, and v2 re-signed there with other content.
    await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(dir, 'd.key')]);
    await run('openssl', ['req', '-x509', '-new', '-key', join(dir, 'd.key'), '-subj', '/CN=releases', '-days', '30', '-out', join(dir, 'd.pem')]);
    await run('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', join(dir, 'd.key'), '-out', join(dir, 'd.p8')]);
    await cli.run(['delegation', 'add', gun, 'targets/releases', join(dir, 'd.pem'), '--all-paths']);
    await cli.run(['key', 'import', join(dir, 'd.p8'), '--role', 'targets/releases', '--gun', gun]);
    const rel = file('rel', 'release only\n');
    const v2r = file('v2r', 'v2 as released\n');
    await cli.run(['add', gun, 'rel', rel.path, '--roles', 'targets/releases']);
    await cli.run(['add', gun, 'v2', v2r.path, '--roles', 'targets/releases']);
    await cli.run(['publish', gun]);
    want.set('rel', { digest: rel.digest, length: rel.length, role: 'targets/releases' });
    want.set('v2', { digest: v2r.digest, length: v2r.length, role: 'targets/releases' }); // Docker: releases wins
    want.set('v2:in-targets', { digest: v2.digest, length: v2.length, role: 'targets' });
    await checkAll();

    await cli.unsign(gun, 'v1');
    want.set('v1', null);
    await checkAll();

    await cli.run(['key', 'rotate', gun, 'targets']);
    await cli.run(['publish', gun]);
    await checkAll();

    // Root key rotations ask "Are you sure?" and abort silently on anything but "yes".
    await cli.run(['key', 'rotate', gun, 'root'], 'yes\n');
    await checkAll();
    await cli.run(['key', 'rotate', gun, 'root'], 'yes\n');
    const last = await checkAll();
    const root = JSON.parse(readFileSync(join(last, 'root.json'), 'utf8'));
    expect(root.signatures.length).toBe(2); // signed by the old and the new root key
    want.delete('v2:in-targets');

    // Trust state from the first publish: the rotations must chain from its root.
    for (const [tag, exp] of want) {
      if (tag.includes(':')) continue;
      const r = await lookup([gun, tag, '--server', lab.url, '--ca', lab.caFile, '--trusted-dir', trustedEarly]);
      if (exp) expect(r, `trusted-dir ${tag}`).toEqual({ code: 0, out: { gun, tag, ...exp } });
      else expect(r.out.error).toBe('TAG_NOT_SIGNED');
    }
    // The first publish's metadata, against state that has seen newer versions: rollback.
    const newer = join(dir, 'trusted-late');
    cpSync(last, newer, { recursive: true });
    const r = await lookup([gun, 'v2', '--metadata-dir', join(dir, 'meta-1'), '--trusted-dir', newer]);
    expect(r).toMatchObject({ code: 1, out: { error: 'ROLLBACK' } });
    // Timestamps expire after 14 days: far enough ahead, everything is refused.
    const exp = await lookup([gun, 'v2', '--metadata-dir', last, '--now', '2200-01-01T00:00:00Z']);
    expect(exp).toMatchObject({ code: 1, out: { error: 'EXPIRED' } });
  }, 360_000); // ~40 notary CLI and trustgate calls: minutes on a loaded machine

  it('with --config: the notary server, its CA and trust_pinning of the upstream serving the GUN, as start uses them', async () => {
    // A tag of its own, signed now (the lifecycle above leaves its tags changed or removed).
    const f = file('cfg', 'manifest cfg\n');
    await cli.run(['add', gun, 'cfg', f.path]);
    await cli.run(['publish', gun]);
    const config = (extra: Record<string, unknown>) => {
      const f = join(dir, `lookup-config-${Math.random().toString(36).slice(2)}.yaml`);
      const doc = { upstreams: [{ name: 'lab', registry: 'http://127.0.0.1:9', gun: '127.0.0.1:5000', notary: { url: lab.url, ca: lab.caFile }, policy: 'enforce' }], default: 'lab', ...extra };
      writeFileSync(f, JSON.stringify(doc));
      return f;
    };
    const online = await lookup([gun, 'cfg', '--server', lab.url, '--ca', lab.caFile]);
    expect(online).toMatchObject({ code: 0, out: { digest: f.digest, length: f.length } });
    expect(await lookup([gun, 'cfg', '--config', config({})])).toEqual(online);
    // The config's pinning applies: a root key nobody holds, with TOFU off, is a refusal.
    const pinned = await lookup([gun, 'cfg', '--config', config({ trust_pinning: { certs: { [gun]: ['0'.repeat(64)] }, disable_tofu: true } })]);
    expect(pinned.code).toBe(1);
    expect(typeof pinned.out.error).toBe('string');
    // A GUN no upstream serves, and an upstream without a notary server: usage errors, not lookups.
    expect((await lookup(['other.example/x', 'v1', '--config', config({})])).code).toBe(1);
    expect((await lookup([gun, 'v1', '--config', config({}), '--server', lab.url])).code).toBe(2);
  });

  it('answers usage errors with exit 2', async () => {
    expect((await lookup([gun])).code).toBe(2);
    expect((await lookup([gun, 'v1'])).code).toBe(2);
    expect((await lookup([gun, 'v1', '--server', lab.url, '--metadata-dir', dir])).code).toBe(2);
    expect((await lookup([gun, 'v1', '--metadata-dir', dir, '--now', 'yesterday'])).code).toBe(2);
  });
});
