// log.format (issue 24): pino-pretty through pino's own transport for the operational log; audit lines
// stay JSON; the default follows whether stdout is a terminal.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/schema.js';
import { audit, logFormatFor } from '../../../src/observe/logger.js';
import { openLogStreams } from '../../../src/observe/log-streams.js';

const rec = { upstream: 'lab', gun: 'h/r', repo: 'r', ref: 'v1', decision: 'allow' as const, policy: 'enforce', durationMs: 1 };
const upstreams = [{ name: 'lab', registry: 'http://127.0.0.1:5000', gun: '127.0.0.1:5000', notary: { url: 'https://127.0.0.1:4443' } }];
let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function tempFd(): { fd: number; file: string } {
  dir = mkdtempSync(join(tmpdir(), 'tg-logformat-'));
  const file = join(dir, 'out.log');
  return { fd: openSync(file, 'a'), file };
}

describe('logFormatFor', () => {
  it.each([
    [undefined, true, 'pretty'],
    [undefined, false, 'json'],
    ['json', true, 'json'],
    ['pretty', false, 'pretty'],
  ] as const)('configured %s, terminal %s: %s', (configured, tty, want) => {
    expect(logFormatFor(configured, tty)).toBe(want);
  });
});

describe('log.format in the config', () => {
  it('accepts json and pretty, leaves it unset by default, and refuses anything else or an unknown log key', () => {
    expect(validateConfig({ upstreams }, 't').log).toEqual({ level: 'info', format: undefined });
    expect(validateConfig({ upstreams, log: { format: 'pretty' } }, 't').log.format).toBe('pretty');
    expect(validateConfig({ upstreams, log: { format: 'json', level: 'warn' } }, 't').log).toEqual({ level: 'warn', format: 'json' });
    expect(() => validateConfig({ upstreams, log: { format: 'text' } }, 't')).toThrow(/log\.format: got "text", expected one of json, pretty/);
    expect(() => validateConfig({ upstreams, log: { colour: true } }, 't')).toThrow(/log\.colour: got true, expected no such key/);
    expect(() => validateConfig({ upstreams, log: 'pretty' }, 't')).toThrow(/log: got "pretty", expected a mapping/);
  });
});

describe('openLogStreams with format pretty', () => {
  it('writes pino-pretty lines (level word, message, fields) for the log and JSON for audit lines, all there after drain()', async () => {
    const { fd, file } = tempFd();
    const s = openLogStreams({ level: 'info', stdoutFd: fd, format: 'pretty' });
    s.log.info({ upstream: 'lab' }, 'trustgate listening');
    s.log.warn('imported trust bundle expires soon');
    audit({ log: s.log, audit: s.audit }, rec);
    await s.drain();
    // pino-pretty's worker writes on its own: drain() waits for the transport's flush.
    const text = readFileSync(file, 'utf8');
    closeSync(fd);
    const lines = text.split('\n').filter(Boolean);
    const pretty = lines.filter((l) => !l.startsWith('{'));
    expect(pretty.some((l) => /INFO.*trustgate listening/.test(l))).toBe(true);
    expect(pretty.some((l) => /WARN.*imported trust bundle expires soon/.test(l))).toBe(true);
    expect(text).toMatch(/upstream: "lab"/);
    expect(text).not.toMatch(/\u001b\[/); // not a terminal: no colour codes
    const json = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json).toHaveLength(1);
    expect(json[0]).toMatchObject({ audit: true, ref: 'v1', decision: 'allow' });
  });

  it('format json (or unset) writes only JSON lines', async () => {
    const { fd, file } = tempFd();
    const s = openLogStreams({ level: 'info', stdoutFd: fd, format: 'json' });
    s.log.info({ upstream: 'lab' }, 'trustgate listening');
    await s.drain();
    closeSync(fd);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([expect.objectContaining({ level: 30, msg: 'trustgate listening', upstream: 'lab' })]);
  });
});
