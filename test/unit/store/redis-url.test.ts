// store.url in its three documented forms (docs/configuration.md): accepted by config validation and parsed the same way
// the connection uses them; every malformed node list or missing master name is a CONFIG_INVALID problem.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/schema.js';
import { parseRedisUrl } from '../../../src/store/redis-url.js';
import { configProblems, localUpstream as upstream } from '../support/config.js';

const withUrl = (url: unknown) => ({ upstreams: [upstream], store: { kind: 'redis', url } });

describe('parseRedisUrl', () => {
  it('one server, with TLS and a password', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379')).toEqual({ ok: true, target: { kind: 'single', url: 'redis://127.0.0.1:6379' } });
    expect(parseRedisUrl('rediss://:pw@redis.internal:6380/2')).toMatchObject({ ok: true, target: { kind: 'single' } });
  });

  it('a Cluster as comma-separated redis:// URLs (documented form) or bare host:port after the first', () => {
    const nodes = [{ host: '127.0.0.1', port: 7101 }, { host: '127.0.0.1', port: 7102 }, { host: '127.0.0.1', port: 7103 }];
    expect(parseRedisUrl('redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103')).toEqual({ ok: true, target: { kind: 'cluster', nodes, password: undefined, tls: false } });
    expect(parseRedisUrl('redis://:s3cr%40t@127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103')).toEqual({ ok: true, target: { kind: 'cluster', nodes, password: 's3cr@t', tls: false } });
    expect(parseRedisUrl('rediss://a.internal:7101,rediss://[::1]:7102')).toEqual({ ok: true, target: { kind: 'cluster', nodes: [{ host: 'a.internal', port: 7101 }, { host: '::1', port: 7102 }], password: undefined, tls: true } });
  });

  it('Sentinel: the sentinels and the master name (documented form)', () => {
    expect(parseRedisUrl('redis+sentinel://127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303/tg')).toEqual({
      ok: true,
      target: { kind: 'sentinel', sentinels: [{ host: '127.0.0.1', port: 7301 }, { host: '127.0.0.1', port: 7302 }, { host: '127.0.0.1', port: 7303 }], name: 'tg', password: undefined, db: 0 },
    });
    expect(parseRedisUrl('redis+sentinel://:pw@s1:26379/mymaster/3')).toMatchObject({ ok: true, target: { kind: 'sentinel', name: 'mymaster', password: 'pw', db: 3 } });
  });

  it.each<[string, string, RegExp]>([
    ['sentinel without master name', 'redis+sentinel://127.0.0.1:7301,127.0.0.1:7302', /master name is missing/],
    ['sentinel with empty master name', 'redis+sentinel://127.0.0.1:7301/', /master name is missing/],
    ['sentinel node without port', 'redis+sentinel://127.0.0.1,127.0.0.1:7302/tg', /each sentinel a host:port/],
    ['sentinel node with a bad port', 'redis+sentinel://127.0.0.1:99999/tg', /each sentinel a host:port/],
    ['cluster node without port', 'redis://127.0.0.1:7101,redis://127.0.0.1', /each Cluster node a host:port/],
    ['cluster node garbage', 'redis://127.0.0.1:7101,not a host:1', /each Cluster node a host:port/],
    ['cluster mixed schemes', 'redis://127.0.0.1:7101,rediss://127.0.0.1:7102', /same scheme/],
    ['cluster of http URLs', 'http://127.0.0.1:7101,http://127.0.0.1:7102', /each Cluster node/],
    ['wrong scheme', 'http://127.0.0.1:6379', /scheme redis:, rediss: or redis\+sentinel:/],
    ['not a URL', 'localhost', /redis:\/\/host:port/],
  ])('refuses %s', (_name, url, expected) => {
    const r = parseRedisUrl(url);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.expected).toMatch(expected);
  });
});

describe('config validation of store.url', () => {
  it.each([
    'redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103',
    'redis+sentinel://127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303/tg',
    'redis://127.0.0.1:6379',
  ])('accepts %s', (url) => {
    expect(validateConfig(withUrl(url), 'test.yaml').store).toEqual({ kind: 'redis', url, prefix: 'trustgate:', localPath: './data/replica' });
  });

  it('names the key, the value and the expected form', () => {
    expect(configProblems(withUrl('redis+sentinel://127.0.0.1:7301'))).toMatch(/store\.url: got "redis\+sentinel:\/\/127\.0\.0\.1:7301", expected redis\+sentinel:\/\/host:port.*master name is missing/);
    expect(configProblems(withUrl('redis://127.0.0.1:7101,127.0.0.1'))).toMatch(/store\.url: got .*, expected redis:\/\/host:port,redis:\/\/host:port/);
    expect(configProblems(withUrl(undefined))).toMatch(/store\.url: got nothing, expected a string/);
  });
});
