// The registry token flow against a real notary-server configured with `auth.type: token`: trustgate
// gets a 401 Bearer challenge, fetches a token for `repository:<GUN>:pull` from the realm (Basic
// credentials there, and only there), and retries. A realm outside the allowlist is never contacted.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { makePki } from '../support/pki.js';
import { startTokenServer, type TokenServer } from '../support/token-server.js';
import { runCli } from '../support/trustgate-process.js';

const run = promisify(execFile);
const GUN = '127.0.0.1:5000/auth/app';
let dir: string;
let lab: NotaryLab;
let tokens: TokenServer;
let digest: string;

async function lookup(args: string[], env: NodeJS.ProcessEnv = {}) {
  const { code, out } = await runCli(['lookup', GUN, 'v1', '--server', lab.url, '--ca', lab.caFile, ...args], env);
  return { code, out };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-token-'));
  const pki = await makePki(dir);
  tokens = await startTokenServer({ dir, pki, username: 'alice', password: 'wonderland' });
  lab = await startNotary(dir, pki, {
    signer: 'local',
    name: 'notary-token',
    extra: { auth: { type: 'token', options: { realm: tokens.realm, service: 'notary-server', issuer: tokens.issuer, rootcertbundle: tokens.certFile } } },
  });
  // The notary CLI authenticates from NOTARY_AUTH (base64 user:password).
  const cli = new NotaryCli(lab.url, lab.caFile, join(dir, 'trust'));
  process.env.NOTARY_AUTH = Buffer.from('alice:wonderland').toString('base64');
  await cli.initRepo(GUN);
  writeFileSync(join(dir, 'm'), 'manifest behind auth\n');
  await cli.sign(GUN, 'v1', join(dir, 'm'));
  delete process.env.NOTARY_AUTH;
  digest = (await run('sha256sum', [join(dir, 'm')])).stdout.split(' ')[0]!;
});

afterAll(async () => {
  await lab?.stop();
  await tokens?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('notary-server behind token authentication', () => {
  it('without credentials the server refuses us: NOTARY_UNAUTHORIZED', async () => {
    const r = await lookup(['--realm-allow', new URL(tokens.realm).origin]);
    expect(r).toMatchObject({ code: 1, out: { error: 'NOTARY_UNAUTHORIZED' } });
  });

  it('with credentials for an allowlisted realm the lookup succeeds; credentials go only to the realm', async () => {
    tokens.requests.length = 0;
    const r = await lookup(['--username', 'alice', '--realm-allow', new URL(tokens.realm).origin], { TRUSTGATE_NOTARY_PASSWORD: 'wonderland' });
    expect(r).toEqual({ code: 0, out: { gun: GUN, tag: 'v1', digest: `sha256:${digest}`, length: 21, role: 'targets' } });
    expect(tokens.requests.length).toBeGreaterThanOrEqual(1);
    expect(tokens.requests.every((q) => q.scope === `repository:${GUN}:pull` && q.service === 'notary-server')).toBe(true);
    // One token, reused for every metadata file of the update.
    expect(tokens.requests).toHaveLength(1);
    expect(tokens.requests[0]!.authorization).toBe(`Basic ${Buffer.from('alice:wonderland').toString('base64')}`);
  });

  it('a realm that is not allowlisted is never contacted', async () => {
    tokens.requests.length = 0;
    const r = await lookup(['--username', 'alice'], { TRUSTGATE_NOTARY_PASSWORD: 'wonderland' });
    expect(r).toMatchObject({ code: 1, out: { error: 'NOTARY_UNAUTHORIZED' } });
    expect(r.out.message).toContain('not in the allowlist');
    expect(tokens.requests).toHaveLength(0);
  });
});
