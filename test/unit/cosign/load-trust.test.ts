// Cosign trust is read once at start; a bad file fails start with the config key named.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, createPublicKey } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCosignTrust } from '../../../src/signatures/cosign/load-trust.js';
import { makeCosignKey } from '../../support/cosign-sign.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-cosign-load-'));
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadCosignTrust', () => {
  it('reads PEM keys and names them by their configured name, else their SPKI SHA-256 fingerprint, never their path', () => {
    const pem = makeCosignKey().publicPem;
    const k = file('good.pub', pem);
    const fp = `sha256:${createHash('sha256').update(createPublicKey(pem).export({ type: 'spki', format: 'der' })).digest('hex')}`;
    const t = loadCosignTrust({ keys: [{ path: k }, { path: k, name: 'release' }], identities: [], tlog: 'optional' as const }, 'upstreams[0].cosign');
    expect(t.keys.map((x) => [x.name, x.key.asymmetricKeyType])).toEqual([
      [fp, 'ec'],
      ['release', 'ec'],
    ]);
    expect(t.root).toBeUndefined();
  });

  it.each([
    ['a missing key file', { keys: [{ path: join(dir, 'absent.pub') }], identities: [], tlog: 'optional' as const }, /^upstreams\[0\]\.cosign\.keys\[0\]: cannot read/],
    ['a key file that is not a key', { keys: [{ path: file('junk.pub', 'hello') }], identities: [], tlog: 'optional' as const }, /^upstreams\[0\]\.cosign\.keys\[0\]: .* is not a PEM public key/],
    ['a trusted root that is not JSON', { keys: [], trustedRoot: file('bad.json', '{'), identities: [{ issuer: 'i', subject: 's' }], tlog: 'required' as const }, /^upstreams\[0\]\.cosign\.trustedRoot: .* is not a usable Sigstore trusted root/],
    ['a JSON file that is not a trusted root', { keys: [], trustedRoot: file('other.json', '{"tlogs":[]}'), identities: [{ issuer: 'i', subject: 's' }], tlog: 'required' as const }, /no certificateAuthorities/],
    [
      'a trusted root with a broken CA certificate',
      { keys: [], trustedRoot: file('broken.json', JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], ctlogs: [], timestampAuthorities: [], certificateAuthorities: [{ certChain: { certificates: [{ rawBytes: 'AAAA' }] }, validFor: { start: '2020-01-01T00:00:00Z' } }] })), identities: [{ issuer: 'i', subject: 's' }], tlog: 'required' as const },
      /trustedRoot/,
    ],
  ])('fails on %s, naming the config key', (_n, cfg, re) => {
    let err: unknown;
    try {
      loadCosignTrust(cfg, 'upstreams[0].cosign');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((err as Error).message).toMatch(re);
  });
});
