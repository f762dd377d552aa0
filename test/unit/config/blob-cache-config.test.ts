// blobCache: on by default under the store path, `false` turns it off, every bad value named.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/schema.js';
import { configProblems } from '../support/config.js';

const upstream = { name: 'local', registry: 'http://127.0.0.1:5000', gun: '127.0.0.1:5000', policy: 'off' };
const good = { upstreams: [upstream], default: 'local' };

describe('blobCache config', () => {
  it('is on by default under the store path, 10 GiB, verify on first read only', () => {
    expect(validateConfig(good, 't').blobCache).toEqual({ path: './data/blobcache', maxBytes: 10 * 1024 ** 3, verifyOnRead: false });
    expect(validateConfig({ ...good, store: { kind: 'file', path: '/var/lib/tg/' } }, 't').blobCache).toMatchObject({ path: '/var/lib/tg/blobcache' });
    expect(validateConfig({ ...good, store: { kind: 'redis', url: 'redis://127.0.0.1:6379' } }, 't').blobCache).toMatchObject({ path: './data/blobcache' });
  });

  it('takes path, maxBytes and verifyOnRead, and false', () => {
    expect(validateConfig({ ...good, blobCache: { path: '/c', maxBytes: 2 * 1024 ** 2, verifyOnRead: true } }, 't').blobCache).toEqual({ path: '/c', maxBytes: 2 * 1024 ** 2, verifyOnRead: true });
    expect(validateConfig({ ...good, blobCache: false }, 't').blobCache).toBe(false);
  });

  it.each<[string, unknown, RegExp]>([
    ['not a mapping', 'yes', /blobCache: got "yes", expected false, or a mapping/],
    ['unknown key', { maxbytes: 1 }, /blobCache\.maxbytes: got 1, expected no such key/],
    ['cap too small', { maxBytes: 1000 }, /blobCache\.maxBytes: got 1000, expected an integer from 1048576/],
    ['verifyOnRead not boolean', { verifyOnRead: 'always' }, /blobCache\.verifyOnRead: got "always", expected true or false/],
  ])('%s', (_n, blobCache, re) => {
    expect(configProblems({ ...good, blobCache })).toMatch(re);
  });
});
