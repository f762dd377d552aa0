// Issue 26 keys: blobCache.minFreeBytes, limits.maxConnections / perClientConnections / sendBufferBytes.
import { describe, expect, it } from 'vitest';
import { defaultMaxConnections, descriptorWarning, openFileLimit, validateConfig } from '../../../src/config/schema.js';
import { configProblems } from '../support/config.js';

const upstream = { name: 'local', registry: 'http://127.0.0.1:5000', gun: '127.0.0.1:5000', policy: 'off' };
const good = { upstreams: [upstream], default: 'local' };

describe('issue 26 config keys', () => {
  it('defaults: minFreeBytes measured at start (absent), a quarter of maxConnections per client, 64 MiB send buffers, maxConnections from the fd limit', () => {
    const c = validateConfig(good, 't');
    expect(c.blobCache && 'minFreeBytes' in c.blobCache).toBe(false);
    expect(c.limits.perClientConnections).toBe(Math.max(64, Math.floor(defaultMaxConnections() / 4)));
    expect(validateConfig({ ...good, limits: { maxConnections: 100 } }, 't').limits.perClientConnections).toBe(64);
    expect(validateConfig({ ...good, limits: { maxConnections: 8000 } }, 't').limits.perClientConnections).toBe(2000);
    expect(c.limits.sendBufferBytes).toBe(64 * 1024 * 1024);
    expect(c.limits.maxConnections).toBe(defaultMaxConnections());
  });

  it('half the soft open-file limit, at most 10,000; 4,096 when unreadable', () => {
    const limits = (soft: string) => `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                20000                files\n`;
    expect(defaultMaxConnections(limits('20000'))).toBe(10_000);
    expect(defaultMaxConnections(limits('1024'))).toBe(512);
    expect(defaultMaxConnections(limits('unlimited'))).toBe(10_000);
    expect(defaultMaxConnections('nothing here')).toBe(4096);
  });

  it('takes the keys', () => {
    const c = validateConfig({ ...good, blobCache: { minFreeBytes: 0 }, limits: { maxConnections: 10, perClientConnections: 2, sendBufferBytes: 2 * 1024 * 1024 } }, 't');
    expect(c.blobCache).toMatchObject({ minFreeBytes: 0 });
    expect(c.limits).toMatchObject({ maxConnections: 10, perClientConnections: 2, sendBufferBytes: 2 * 1024 * 1024 });
  });

  it.each<[string, unknown, RegExp]>([
    ['negative floor', { blobCache: { minFreeBytes: -1 } }, /blobCache\.minFreeBytes: got -1, expected an integer from 0/],
    ['no connections', { limits: { maxConnections: 0 } }, /limits\.maxConnections: got 0, expected an integer from 1/],
    ['per client not a number', { limits: { perClientConnections: 'many' } }, /limits\.perClientConnections: got "many"/],
    ['budget too small', { limits: { sendBufferBytes: 1000 } }, /limits\.sendBufferBytes: got 1000, expected an integer from 1048576/],
  ])('refuses %s', (_name, extra, re) => {
    expect(configProblems({ ...good, ...(extra as object) })).toMatch(re);
  });
});

describe('descriptors kept for the upstream pools', () => {
  it('warns when limits.maxConnections plus the pools and spare files exceed the open-file limit, and names the cap that fits', () => {
    const c = validateConfig({ upstreams: [upstream, { ...upstream, name: 'two' }], default: 'local', limits: { maxConnections: 1000 } }, 't');
    // Two upstreams × (64 blob + 32 metadata + 8 signature) = 208, plus 64 spare: 1272 needed.
    expect(descriptorWarning(c, 1272)).toBeUndefined();
    const w = descriptorWarning(c, 1271);
    expect(w).toContain('limits.maxConnections (1000)');
    expect(w).toContain('208 connections for 2 upstream(s)');
    expect(w).toContain('lower limits.maxConnections to 999 or less');
    expect(descriptorWarning(c, Infinity)).toBeUndefined();
    expect(descriptorWarning(c, undefined)).toBeUndefined();
  });

  it('never warns for the default cap on an ordinary limit', () => {
    for (const soft of [1024, 4096, 20000, 65536]) {
      const c = validateConfig({ upstreams: [upstream], default: 'local', limits: { maxConnections: defaultMaxConnections(`Max open files            ${soft}                 ${soft}                 files\n`) } }, 't');
      expect(descriptorWarning(c, soft)).toBeUndefined();
    }
  });

  it('reads the soft limit, unlimited and unreadable', () => {
    expect(openFileLimit('Max open files            1024                 4096                 files\n')).toBe(1024);
    expect(openFileLimit('Max open files            unlimited            unlimited            files\n')).toBe(Infinity);
    expect(openFileLimit('nothing')).toBeUndefined();
  });
});
