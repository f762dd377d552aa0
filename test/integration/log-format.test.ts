// log.format: pretty on the real server (issue 24): `trustgate start` writes pino-pretty lines through
// pino's transport (a worker thread), audit lines stay JSON, and on SIGTERM the last lines ("stopped")
// are written before the process exits — the transport is flushed, not cut off.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { pushImage } from '../support/oci-image.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { startTrustgate } from '../support/trustgate-process.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-logformat-'));
let registry: Registry;
beforeAll(async () => {
  registry = await startRegistry(dir);
  await pushImage(dir, registry.host, 'app', 'v1');
});
afterAll(() => stopAndRemove(dir, registry));
// policy off: no notary needed, and each manifest answer is still audited (decision "pass").
const upstreams = () => [{ name: 'lab', registry: registry.url, gun: registry.host, policy: 'off' }];

describe('log.format on trustgate start', () => {
  it('pretty: readable operational lines, JSON audit lines, everything flushed at SIGTERM', async () => {
    const tg = await startTrustgate(dir, { upstreams: upstreams(), default: 'lab', log: { format: 'pretty' } }, 'pretty');
    expect((await fetch(`${tg.url}/v2/app/manifests/v1`).then(async (r) => (await r.arrayBuffer(), r.status)))).toBe(200);
    await tg.stop();
    const lines = readFileSync(tg.logFile, 'utf8').split('\n').filter(Boolean);
    expect(lines.some((l) => /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: trustgate listening/.test(l)), lines.join('\n')).toBe(true);
    expect(lines.some((l) => /INFO: stopped$/.test(l)), lines.join('\n')).toBe(true);
    const json = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json).toEqual([expect.objectContaining({ audit: true, ref: 'v1', decision: 'pass', msg: 'trust decision' })]);
  });

  it('unset, with stdout not a terminal: JSON lines only', async () => {
    const tg = await startTrustgate(dir, { upstreams: upstreams(), default: 'lab' }, 'json');
    await tg.stop();
    const lines = readFileSync(tg.logFile, 'utf8').split('\n').filter(Boolean);
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(expect.arrayContaining(['trustgate listening', 'stopped']));
  });
});
