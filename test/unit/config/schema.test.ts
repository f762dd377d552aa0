// One test per class of config error: each message names the key, the value and what is expected.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/schema.js';

const upstream = { name: 'local', registry: 'http://127.0.0.1:5000', gun: '127.0.0.1:5000', notary: { url: 'https://127.0.0.1:4443' } };
const good = { listen: '127.0.0.1:5050', upstreams: [upstream], default: 'local' };

function problems(doc: unknown): string {
  try {
    validateConfig(doc, 'test.yaml');
  } catch (err) {
    expect((err as { code?: string }).code).toBe('CONFIG_INVALID');
    return (err as Error).message;
  }
  throw new Error('config was accepted');
}

describe('validateConfig', () => {
  it('accepts the minimal config with defaults filled in, frozen', () => {
    const c = validateConfig(good, 'test.yaml');
    expect(c).toMatchObject({ listen: { host: '127.0.0.1', port: 5050 }, store: { kind: 'file', path: './data' }, limits: { manifestBytes: 4 * 1024 * 1024 } });
    expect(c.upstreams[0]).toMatchObject({ policy: 'enforce', repositories: [] });
    expect(Object.isFrozen(c.upstreams[0])).toBe(true);
  });

  it.each<[string, unknown, RegExp]>([
    ['top level not a mapping', [1, 2], /top level must be a mapping/],
    ['bad listen', { ...good, listen: 'localhost' }, /listen: got "localhost", expected HOST:PORT/],
    ['unknown key', { ...good, lisen: 'x' }, /lisen: got "x", expected no such key/],
    ['no upstreams', { listen: '127.0.0.1:1' }, /upstreams: got nothing, expected a non-empty list/],
    ['missing registry', { ...good, upstreams: [{ ...upstream, registry: undefined }] }, /upstreams\[0\]\.registry: got nothing, expected a string/],
    ['bad registry URL', { ...good, upstreams: [{ ...upstream, registry: 'ftp://x' }] }, /upstreams\[0\]\.registry: got "ftp:\/\/x", expected a URL with scheme http: or https:/],
    ['notary over http', { ...good, upstreams: [{ ...upstream, notary: { url: 'http://n' } }] }, /upstreams\[0\]\.notary\.url: got "http:\/\/n", expected a URL with scheme https:/],
    ['bad policy', { ...good, upstreams: [{ ...upstream, policy: 'allow' }] }, /upstreams\[0\]\.policy: got "allow", expected one of enforce, audit, off/],
    ['enforce without notary', { ...good, upstreams: [{ ...upstream, notary: undefined }] }, /upstreams\[0\]\.notary: got nothing, expected a notary server \(policy enforce needs one/],
    ['bad gun', { ...good, upstreams: [{ ...upstream, gun: 'UPPER/Case' }] }, /upstreams\[0\]\.gun: got "UPPER\/Case"/],
    ['duplicate names', { ...good, upstreams: [upstream, upstream] }, /upstreams: got "local", expected unique upstream names/],
    ['unknown default', { ...good, default: 'nope' }, /default: got "nope", expected the name of an upstream \(local\)/],
    ['username without passwordEnv', { ...good, upstreams: [{ ...upstream, username: 'u' }] }, /upstreams\[0\]\.passwordEnv: got nothing, expected username and passwordEnv together/],
    ['bad store kind', { ...good, store: { kind: 'sqlite' } }, /store\.kind: got "sqlite", expected one of file, redis/],
    ['limit out of range', { ...good, limits: { manifestBytes: 1 } }, /limits\.manifestBytes: got 1, expected an integer from 1024/],
    ['bad pinning id', { ...good, trust_pinning: { certs: { 'a/b': ['xyz'] } } }, /trust_pinning\.certs\.a\/b: got \["xyz"\], expected a list of 64-hex-digit key IDs/],
    ['repository requiring Notation the upstream lacks', { ...good, upstreams: [{ ...upstream, repositories: [{ match: 'a/*', policy: 'enforce', require: 'notation' }] }] }, /repositories\[0\]\.require: got "notation", expected notation configured on the upstream/],
    ['require notation without notation config', { ...good, upstreams: [{ ...upstream, require: 'notation' }] }, /upstreams\[0\]\.notation: got nothing, expected trustPolicy and trustStore \(require: notation needs Notation\)/],
    ['unknown require', { ...good, upstreams: [{ ...upstream, require: 'cosign' }] }, /upstreams\[0\]\.require: got "cosign", expected one of dct, notation, any-of, all-of/],
    ['repository policy without policy', { ...good, upstreams: [{ ...upstream, repositories: [{ match: 'a/*' }] }] }, /repositories\[0\]\.policy: got nothing/],
  ])('%s', (_name, doc, message) => {
    expect(problems(doc)).toMatch(message);
  });

  it('lists every problem at once', () => {
    const m = problems({ listen: 'x', upstreams: [{ ...upstream, policy: 'maybe' }], default: 'nope' });
    expect(m.split('\n  - ')).toHaveLength(4); // header + three problems
  });
});
