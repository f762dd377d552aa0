// `audit: { path, bufferBytes, onFailure }`, `limits.shutdownSeconds` and `workers: N | auto`:
// defaults, accepted forms and the error for each bad one.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/schema.js';
import { configProblems, minimalConfig as good } from '../support/config.js';

describe('audit and workers config', () => {
  it('defaults: audit to stdout, one worker', () => {
    const c = validateConfig(good, 'test.yaml');
    expect(c.audit).toEqual({ bufferBytes: 64 * 1024 * 1024, onFailure: 'refuse' });
    expect(c.limits.shutdownSeconds).toBe(10);
    expect(c.workers).toBe(1);
  });

  it('accepts a buffer size, onFailure serve and a shutdown limit', () => {
    const c = validateConfig({ ...good, audit: { path: '/a.log', bufferBytes: 65536, onFailure: 'serve' }, limits: { shutdownSeconds: 3 } }, 't');
    expect(c.audit).toEqual({ path: '/a.log', bufferBytes: 65536, onFailure: 'serve' });
    expect(c.limits.shutdownSeconds).toBe(3);
  });

  it('accepts an audit file and a worker count or auto', () => {
    expect(validateConfig({ ...good, audit: { path: '/var/log/trustgate/audit.log' }, workers: 4 }, 't').audit.path).toBe('/var/log/trustgate/audit.log');
    expect(validateConfig({ ...good, workers: 4 }, 't').workers).toBe(4);
    expect(validateConfig({ ...good, workers: 'auto' }, 't').workers).toBe('auto');
  });

  it.each<[string, unknown, RegExp]>([
    ['audit not a mapping', 'audit.log', /audit: got "audit.log", expected a mapping with path/],
    ['empty audit path', { path: '' }, /audit\.path: got "", expected a file path/],
    ['unknown audit key', { file: 'x' }, /audit\.file: got "x", expected no such key/],
    ['a tiny buffer', { bufferBytes: 100 }, /audit\.bufferBytes: got 100, expected an integer from 4096 to/],
    ['onFailure other than refuse or serve', { onFailure: 'drop' }, /audit\.onFailure: got "drop", expected one of refuse, serve/],
  ])('refuses %s', (_, audit, re) => {
    expect(configProblems({ ...good, audit })).toMatch(re);
  });

  it.each([0, -1, 1.5, 'ten'])('refuses limits.shutdownSeconds: %s', (shutdownSeconds) => {
    expect(configProblems({ ...good, limits: { shutdownSeconds } })).toMatch(/limits\.shutdownSeconds: got .*, expected an integer from 1 to 3600/);
  });

  it.each([0, -1, 1.5, 'many', 257])('refuses workers: %s', (workers) => {
    expect(configProblems({ ...good, workers })).toMatch(/workers: got .*, expected an integer from 1 to 256, or auto/);
  });
});
