// One test per class of config error: each message names the key, the value and what is expected.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/schema.js';
import { configProblems, minimalConfig as good, localUpstream as upstream } from '../support/config.js';

describe('validateConfig', () => {
  it('accepts the minimal config with defaults filled in, frozen', () => {
    const c = validateConfig(good, 'test.yaml');
    expect(c).toMatchObject({ listen: { host: '127.0.0.1', port: 5050 }, store: { kind: 'file', path: './data' }, limits: { manifestBytes: 4 * 1024 * 1024 } });
    expect(c.upstreams[0]).toMatchObject({ policy: 'enforce', repositories: [] });
    expect(c.cache).toEqual({ digestRevalidateSeconds: 3600, tagTtlSeconds: 10 });
    expect(Object.isFrozen(c.upstreams[0])).toBe(true);
  });

  it('has the signature budget keys (issue 27): defaults, and maxSignatures still read', () => {
    expect(validateConfig(good, 'test.yaml').limits).toMatchObject({ maxSignatures: 128, signatureBytes: 4 * 1024 * 1024, upstreamSignatureConnections: 8 });
    const set = validateConfig({ ...good, limits: { maxSignatures: 16, signatureBytes: 1024 * 1024, upstreamSignatureConnections: 2 } }, 'test.yaml').limits;
    expect(set).toMatchObject({ maxSignatures: 16, signatureBytes: 1024 * 1024, upstreamSignatureConnections: 2 });
    expect(configProblems({ ...good, limits: { signatureBytes: 10 } })).toMatch(/limits\.signatureBytes: got 10, expected an integer from 65536/);
    expect(configProblems({ ...good, limits: { upstreamSignatureConnections: 0 } })).toMatch(/limits\.upstreamSignatureConnections: got 0/);
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
    ['enforce without notary', { ...good, upstreams: [{ ...upstream, notary: undefined }] }, /upstreams\[0\]\.notary: got nothing, expected a notary server \(notary:\) or bundle: true on the upstream \(policy enforce with require dct needs dct/],
    ['bad gun', { ...good, upstreams: [{ ...upstream, gun: 'UPPER/Case' }] }, /upstreams\[0\]\.gun: got "UPPER\/Case"/],
    ['duplicate names', { ...good, upstreams: [upstream, upstream] }, /upstreams: got "local", expected unique upstream names/],
    ['unknown default', { ...good, default: 'nope' }, /default: got "nope", expected the name of an upstream \(local\)/],
    ['username without passwordEnv', { ...good, upstreams: [{ ...upstream, username: 'u' }] }, /upstreams\[0\]\.passwordEnv: got nothing, expected username and passwordEnv together/],
    ['bad store kind', { ...good, store: { kind: 'sqlite' } }, /store\.kind: got "sqlite", expected one of file, redis/],
    ['limit out of range', { ...good, limits: { manifestBytes: 1 } }, /limits\.manifestBytes: got 1, expected an integer from 1024/],
    ['bad pinning id', { ...good, trust_pinning: { certs: { 'a/b': ['xyz'] } } }, /trust_pinning\.certs\.a\/b: got \["xyz"\], expected a list of 64-hex-digit key IDs/],
    ['repository requiring Notation the upstream lacks', { ...good, upstreams: [{ ...upstream, repositories: [{ match: 'a/*', policy: 'enforce', require: 'notation' }] }] }, /repositories\[0\]\.require: got "notation", expected notation: \{ trustPolicy, trustStore \} on the upstream/],
    ['require notation without notation config', { ...good, upstreams: [{ ...upstream, require: 'notation' }] }, /upstreams\[0\]\.require: got "notation", expected notation: \{ trustPolicy, trustStore \} on the upstream \(policy enforce with require notation needs notation/],
    ['unknown require', { ...good, upstreams: [{ ...upstream, require: 'sigstore' }] }, /upstreams\[0\]\.require: got "sigstore", expected one of dct, notation, cosign, any-of, all-of/],
    ['require cosign without cosign config', { ...good, upstreams: [{ ...upstream, require: { 'any-of': ['dct', 'cosign'] } }] }, /upstreams\[0\]\.require: got "any-of: \[dct, cosign\]", expected cosign: \{ keys \| trustedRoot \} on the upstream/],
    ['require list with an unknown kind', { ...good, upstreams: [{ ...upstream, require: { 'all-of': ['dct', 'gpg'] } }] }, /upstreams\[0\]\.require\.all-of: got "gpg", expected distinct signature kinds/],
    ['require with two modes', { ...good, upstreams: [{ ...upstream, require: { 'all-of': ['dct'], 'any-of': ['dct'] } }] }, /upstreams\[0\]\.require: got .*, expected one of dct/],
    // Reproduced (issue 12): upstream off, a repository entry enforcing with no trust source was accepted and served unsigned tags.
    ['repository enforce under an off upstream without notary', { ...good, upstreams: [{ ...upstream, notary: undefined, policy: 'off', repositories: [{ match: 'bar/**', policy: 'enforce' }] }] }, /upstreams\[0\]\.repositories\[0\]\.policy: got "enforce", expected a notary server \(notary:\) or bundle: true on the upstream \(policy enforce with require dct needs dct \(the upstream's require\)/],
    ['repository audit inheriting a later entry\'s notation requirement', { ...good, upstreams: [{ ...upstream, repositories: [{ match: 'a/**', policy: 'audit' }, { match: '**', policy: 'off', require: 'notation' }] }] }, /repositories\[0\]\.policy: got "audit", expected notation: .* \(require of repositories\[1\], which a repository matching both would take\)/],
    ['bad digestPulls', { ...good, upstreams: [{ ...upstream, digestPulls: 'sometimes' }] }, /upstreams\[0\]\.digestPulls: got "sometimes", expected one of allow, signed/],
    ['credentials over plain http', { ...good, upstreams: [{ ...upstream, username: 'u', passwordEnv: 'P' }] }, /upstreams\[0\]\.username: got "u", expected credentials only over https: the registry http:\/\/127\.0\.0\.1:5000 is plain http/],
    ['an http token realm with credentials', { ...good, upstreams: [{ ...upstream, registry: 'https://r.example', username: 'u', passwordEnv: 'P', realms: ['http://auth.example'] }] }, /upstreams\[0\]\.realms: got "http:\/\/auth\.example", expected an https origin: credentials are never sent in clear text/],
    ['a realm that is not an origin', { ...good, upstreams: [{ ...upstream, realms: ['https://auth.example/token?x=1'] }] }, /upstreams\[0\]\.realms: got .*, expected an origin URL/],
    ['cosign identities without issuer', { ...good, upstreams: [{ ...upstream, cosign: { trustedRoot: 'r.json', identities: [{ subject: 'a@b' }] } }] }, /upstreams\[0\]\.cosign\.identities\[0\]\.issuer: got nothing/],
    ['cosign keyless without identities', { ...good, upstreams: [{ ...upstream, cosign: { trustedRoot: 'r.json' } }] }, /upstreams\[0\]\.cosign\.identities: got nothing, expected at least one/],
    ['a cosign key name with a space', { ...good, upstreams: [{ ...upstream, cosign: { keys: [{ path: 'k.pem', name: 'my key' }] } }] }, /upstreams\[0\]\.cosign\.keys\[0\]\.name: got "my key", expected letters, digits/],
    ['a cosign key without path', { ...good, upstreams: [{ ...upstream, cosign: { keys: [{ name: 'k' }] } }] }, /upstreams\[0\]\.cosign\.keys\[0\]\.path: got nothing/],
    ['cache.digestRevalidateSeconds negative', { ...good, cache: { digestRevalidateSeconds: -1 } }, /cache\.digestRevalidateSeconds: got -1, expected an integer from 0/],
    ['an unknown cache key', { ...good, cache: { ttl: 1 } }, /cache\.ttl: got 1, expected no such key/],
    ['repository policy without policy', { ...good, upstreams: [{ ...upstream, repositories: [{ match: 'a/*' }] }] }, /repositories\[0\]\.policy: got nothing/],
  ])('%s', (_name, doc, message) => {
    expect(configProblems(doc)).toMatch(message);
  });

  it('accepts credentials over http with insecure: true, require lists, digestPulls and cosign keys', () => {
    const cfg = validateConfig(
      { ...good, upstreams: [{ ...upstream, username: 'u', passwordEnv: 'P', insecure: true, digestPulls: 'signed', cosign: { keys: ['k.pem', { path: 'n.pem', name: 'release-2026' }] }, require: { 'any-of': ['dct', 'cosign'] }, repositories: [{ match: 'x/*', policy: 'enforce', require: 'cosign', digestPulls: 'allow' }] }] },
      'test',
    );
    const u = cfg.upstreams[0]!;
    expect(u.require).toEqual({ mode: 'any-of', of: ['dct', 'cosign'], label: 'any-of: [dct, cosign]' });
    expect(u.repositories[0]).toMatchObject({ require: { mode: 'any-of', of: ['cosign'], label: 'cosign' }, digestPulls: 'allow' });
    expect(u).toMatchObject({ insecure: true, digestPulls: 'signed', cosign: { keys: [{ path: 'k.pem' }, { path: 'n.pem', name: 'release-2026' }], identities: [] } });
  });

  it('keeps the old require words: any-of = dct or notation, all-of = both', () => {
    const n = { trustPolicy: 'p', trustStore: 's' };
    const u = validateConfig({ ...good, upstreams: [{ ...upstream, notation: n, require: 'all-of', repositories: [{ match: 'a', policy: 'enforce', require: 'any-of' }] }] }, 't').upstreams[0]!;
    expect(u.require).toEqual({ mode: 'all-of', of: ['dct', 'notation'], label: 'all-of' });
    expect(u.repositories[0]!.require).toEqual({ mode: 'any-of', of: ['dct', 'notation'], label: 'any-of' });
  });

  it('lists every problem at once', () => {
    const m = configProblems({ listen: 'x', upstreams: [{ ...upstream, policy: 'maybe' }], default: 'nope' });
    expect(m.split('\n  - ')).toHaveLength(4); // header + three problems
  });
});
