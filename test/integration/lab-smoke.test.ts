// The real parts come up and talk: notary-server with the local signer and with a remote
// notary-signer, the notary CLI signing, and trustgate's lookup agreeing with `notary lookup`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { makePki, type Pki } from '../support/pki.js';
import { runCli } from '../support/trustgate-process.js';

let dir: string;
let pki: Pki;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-smoke-'));
  pki = await makePki(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(['local', 'remote'] as const)('notary-server with the %s signer', (signer) => {
  let lab: NotaryLab;
  beforeAll(async () => {
    lab = await startNotary(dir, pki, { signer });
  });
  afterAll(async () => lab?.stop());

  it('signs with the notary CLI and trustgate lookup agrees with notary lookup', async () => {
    const cli = new NotaryCli(lab.url, lab.caFile, join(dir, `trust-${signer}`));
    const gun = `127.0.0.1:5000/smoke/${signer}`;
    await cli.initRepo(gun);
    const file = join(dir, `m-${signer}`);
    writeFileSync(file, `manifest for ${signer}\n`);
    await cli.sign(gun, 'v1', file);
    const want = await cli.lookup(gun, 'v1');
    expect(want?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const r = await runCli(['lookup', gun, 'v1', '--server', lab.url, '--ca', lab.caFile]);
    expect(r).toMatchObject({ code: 0, out: { gun, tag: 'v1', digest: want!.digest, length: want!.length, role: 'targets' } });
  });
});
