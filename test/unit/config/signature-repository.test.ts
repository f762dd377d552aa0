// Signature repositories (cosign.repository, notation.repository: COSIGN_REPOSITORY semantics) and
// cosign.tlog in the config: parsed where the issue names them, refused with the key named otherwise.
import { describe, expect, it } from 'vitest';
import { upstreamByGun } from '../../../src/app/select-upstream.js';
import { validateConfig } from '../../../src/config/schema.js';
import { notationRepositorySelector } from '../../../src/signatures/notation/select-repository.js';
import { configProblems, localUpstream } from '../support/config.js';

const notation = { trustPolicy: 'tp.json', trustStore: 'store' };
/** A second upstream serving signatures only (policy off: it serves no images of its own). */
const sigStore = { name: 'sigs', registry: 'https://sigs.example.com', gun: 'sigs.example.com', policy: 'off' };
const config = (u: Record<string, unknown>, more: unknown[] = []) => ({ listen: '127.0.0.1:5050', upstreams: [{ ...localUpstream, ...u }, ...more], default: 'local' });

describe('cosign.repository and notation.repository', () => {
  it('are parsed on an upstream, in a repository of the same upstream', () => {
    const u = validateConfig(config({ require: { 'any-of': ['cosign', 'notation'] }, cosign: { keys: ['k.pem'], repository: '127.0.0.1:5000/sigs/store' }, notation: { ...notation, repository: '127.0.0.1:5000/sigs/notation' } }), 't').upstreams[0]!;
    expect(u.cosign).toEqual({ keys: [{ path: 'k.pem' }], trustedRoot: undefined, identities: [], tlog: 'optional', repository: '127.0.0.1:5000/sigs/store' });
    expect(u.notation).toEqual({ ...notation, repository: '127.0.0.1:5000/sigs/notation' });
  });

  it('may name a repository another upstream serves (its registry and credentials are used)', () => {
    const c = validateConfig(config({ require: 'cosign', cosign: { keys: ['k.pem'], repository: 'sigs.example.com/team/signatures' } }, [sigStore]), 't');
    expect(c.upstreams[0]!.cosign!.repository).toBe('sigs.example.com/team/signatures');
  });

  it('are parsed on repository entries', () => {
    const u = validateConfig(
      config({
        require: 'cosign',
        cosign: { keys: ['k.pem'] },
        notation,
        repositories: [{ match: 'team/**', policy: 'enforce', cosign: { keys: ['team.pem'], repository: '127.0.0.1:5000/team/sigs' }, notation: { repository: '127.0.0.1:5000/team/nsigs' } }],
      }),
      't',
    ).upstreams[0]!;
    expect(u.repositories[0]).toMatchObject({ cosign: { keys: [{ path: 'team.pem' }], repository: '127.0.0.1:5000/team/sigs' }, notation: { repository: '127.0.0.1:5000/team/nsigs' } });
  });

  it.each([
    ['a host no upstream serves', { require: 'cosign', cosign: { keys: ['k.pem'], repository: 'ghcr.io/acme/sigs' } }, /upstreams\[0\]\.cosign\.repository: got "ghcr\.io\/acme\/sigs", expected a repository under the gun of an upstream \(127\.0\.0\.1:5000\)/],
    ['the gun alone, without a repository', { require: 'cosign', cosign: { keys: ['k.pem'], repository: '127.0.0.1:5000' } }, /upstreams\[0\]\.cosign\.repository: got "127\.0\.0\.1:5000", expected REGISTRY_HOST\/REPOSITORY/],
    ['a scheme', { require: 'cosign', cosign: { keys: ['k.pem'], repository: 'https://127.0.0.1:5000/sigs' } }, /cosign\.repository: got "https:.*expected REGISTRY_HOST\/REPOSITORY/],
    ['upper case in the path', { require: 'cosign', cosign: { keys: ['k.pem'], repository: '127.0.0.1:5000/Sigs' } }, /cosign\.repository: .*expected REGISTRY_HOST\/REPOSITORY/],
    ['a tag', { require: 'cosign', cosign: { keys: ['k.pem'], repository: '127.0.0.1:5000/sigs:latest' } }, /cosign\.repository: .*expected REGISTRY_HOST\/REPOSITORY/],
    ['notation on a host no upstream serves', { require: 'notation', notation: { ...notation, repository: 'quay.io/x/y' } }, /upstreams\[0\]\.notation\.repository: got "quay\.io\/x\/y", expected a repository under the gun of an upstream/],
    ['an entry repository no upstream serves', { cosign: { keys: ['k.pem'] }, repositories: [{ match: 'a/*', policy: 'enforce', cosign: { keys: ['k.pem'], repository: 'other.test/s' } }] }, /upstreams\[0\]\.repositories\[0\]\.cosign\.repository: got "other\.test\/s"/],
    ['notation on an entry of an upstream without notation', { repositories: [{ match: 'a/*', policy: 'enforce', notation: { repository: '127.0.0.1:5000/s' } }] }, /repositories\[0\]\.notation: got "\(set\)", expected only on an upstream that has notation: too/],
    ['an entry notation without repository', { notation, repositories: [{ match: 'a/*', policy: 'enforce', notation: {} }] }, /repositories\[0\]\.notation\.repository: got nothing, expected REGISTRY_HOST\/REPOSITORY/],
    ['an entry notation with trust files (those are the upstream\'s)', { notation, repositories: [{ match: 'a/*', policy: 'enforce', notation: { ...notation, repository: '127.0.0.1:5000/s' } }] }, /repositories\[0\]\.notation\.trustPolicy: got "tp\.json", expected no such key/],
  ])('refuses %s, naming the key', (_n, u, re) => {
    expect(configProblems(config(u))).toMatch(re);
  });

  it('names the right upstream index when an earlier upstream failed to parse', () => {
    const doc = { listen: '127.0.0.1:5050', upstreams: [{ name: 'broken' }, { ...localUpstream, require: 'cosign', cosign: { keys: ['k.pem'], repository: 'nowhere.test/s' } }] };
    expect(configProblems(doc)).toMatch(/upstreams\[1\]\.cosign\.repository: got "nowhere\.test\/s"/);
  });
});

describe('cosign.tlog', () => {
  const keyless = { trustedRoot: 'root.json', identities: [{ issuer: 'https://issuer.test', subject: 'a@b.test' }] };
  it.each([
    ['keys alone: optional (offline re-signed signatures have no log entry)', { keys: ['k.pem'] }, 'optional'],
    ['a trusted root: required, as cosign verify --key', { keys: ['k.pem'], ...keyless }, 'required'],
    ['optional with a trusted root, when said', { keys: ['k.pem'], ...keyless, tlog: 'optional' }, 'optional'],
    ['required, when said', { keys: ['k.pem'], ...keyless, tlog: 'required' }, 'required'],
  ])('%s', (_n, cosign, tlog) => {
    expect(validateConfig(config({ require: 'cosign', cosign }), 't').upstreams[0]!.cosign!.tlog).toBe(tlog);
  });

  it('refuses required without a trusted root: there are no Rekor keys to check an entry against', () => {
    expect(configProblems(config({ require: 'cosign', cosign: { keys: ['k.pem'], tlog: 'required' } }))).toMatch(/upstreams\[0\]\.cosign\.tlog: got "required", expected optional, or a trustedRoot/);
  });

  it('refuses another word', () => {
    expect(configProblems(config({ require: 'cosign', cosign: { keys: ['k.pem'], tlog: 'yes' } }))).toMatch(/cosign\.tlog: got "yes", expected one of required, optional/);
  });
});

describe('upstreamByGun', () => {
  const c = validateConfig(config({}, [{ ...sigStore }, { ...sigStore, name: 'team', gun: 'sigs.example.com/team' }]), 't');
  it.each([
    ['sigs.example.com/store', 'sigs'],
    ['sigs.example.com/team/store', 'team'],
    ['sigs.example.com/teamwork/store', 'sigs'],
    ['127.0.0.1:5000/a/b', 'local'],
  ])('%s → %s (longest gun prefix, whatever trust it configures)', (name, upstream) => {
    expect(upstreamByGun(c, name).name).toBe(upstream);
  });

  it('refuses a name no upstream serves', () => {
    expect(() => upstreamByGun(c, 'ghcr.io/x')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  });
});

describe('notationRepositorySelector', () => {
  const select = notationRepositorySelector('h/up', [
    { match: 'team/payments/**', repository: 'h/payments' },
    { match: 'team/**', repository: 'h/team' },
  ]);
  it.each([
    ['team/payments/api', 'h/payments'],
    ['team/web', 'h/team'],
    ['other/app', 'h/up'],
  ])('%s → %s (first match, else the upstream)', (repo, want) => {
    expect(select(repo)).toBe(want);
  });

  it('is the image own repository when nothing is configured', () => {
    expect(notationRepositorySelector(undefined, [])('a/b')).toBeUndefined();
  });
});
