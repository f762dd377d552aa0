// The pure update state machine (tuf/builder.go; NOTARY.md §7): timestamp → snapshot → targets →
// delegations, each hash-linked, signed, versioned and unexpired. No fetcher: the test hands the
// repository's bytes to the set in notary's order. Checklist 12, 13, 14, 15, 26–31, 34–37.
import { describe, expect, it } from 'vitest';
import { parseEnvelope } from '../../../src/signatures/dct/model/metadata.js';
import { TrustedSet, type SetLimits, type VersionFloors } from '../../../src/signatures/dct/trusted-set.js';
import { validateRoot } from '../../../src/signatures/dct/verify/root.js';
import { loadSet } from './load-set.js';
import { buildRepo, makeCertKey, makeKey, withKey, type BuildOptions, type Json, type Repo, type Signed, type WireOptions } from '../../support/notary-builder/index.js';

const GUN = 'example.com/team/app';
const NOW = new Date('2030-01-01T00:00:00Z');
const past = new Date(NOW.getTime() - 1000).toISOString();
const releasesKey = makeKey('ecdsa', 'ts releases');
const make = (o: Partial<BuildOptions> = {}) =>
  buildRepo({ gun: GUN, now: NOW, tags: { v1: 'm1' }, delegations: [{ name: 'targets/releases', keys: [releasesKey], tags: { r1: 'r' } }], ...o });

const load = (repo: Repo, o: { floors?: VersionFloors; now?: Date; limits?: SetLimits } = {}) => loadSet(repo, { now: NOW, ...o });

const snapshotKey = () => make().keys.get('snapshot')![0]!;
const timestampKey = () => make().keys.get('timestamp')![0]!;
type Meta = Record<string, { hashes: Record<string, string>; length: number }>;
const metaOf = (s: Signed) => s.meta as Meta;
const targetsOf = (s: Signed) => s.targets as Record<string, { hashes: Record<string, string>; length: Json }>;
const delegationsOf = (s: Signed) => s.delegations as { keys: Record<string, Json>; roles: Array<Record<string, Json>> };

describe('✓ a complete repository loads', () => {
  it('every role, with its versions', () => {
    const set = load(make());
    expect([...set.targets.keys()]).toEqual(['targets', 'targets/releases']);
    expect(set.skipped).toEqual([]);
    expect(set.rootIsCurrent()).toBe(true);
    expect(set.versions()).toEqual({ root: 1, timestamp: 1, snapshot: 1, targets: 1, 'targets/releases': 1 });
  });

  it('versions never go below the floors it started from', () => {
    expect(load(make(), { floors: { timestamp: 1, 'targets/gone': 7 } }).versions()).toMatchObject({ timestamp: 1, 'targets/gone': 7 });
  });

  it('versions equal to the floors are accepted (notary: version ≥ cached)', () => {
    expect(() => load(make(), { floors: { timestamp: 1, snapshot: 1, targets: 1, 'targets/releases': 1 } })).not.toThrow();
  });

  it('roles expiring exactly now are still valid (expired means expires < now)', () => {
    expect(() => load(make({ expires: NOW }))).not.toThrow();
  });

  it('with sha512 listed next to sha256 everywhere', () => {
    const repo = make();
    repo.resign('snapshot', (s) => {
      for (const m of Object.values(metaOf(s))) m.hashes.sha512 = '';
    });
    repo.resign('timestamp', (s) => void (metaOf(s).snapshot!.hashes.sha512 = ''));
    repo.relink(); // recomputes sha512 too where it is listed
    expect(repo.signed('timestamp').meta).toMatchObject({ snapshot: { hashes: { sha512: expect.stringMatching(/^[A-Za-z0-9+/]{86}==$/) } } });
    expect(() => load(repo)).not.toThrow();
  });

  // Checklist 14: the signature covers the canonical form of `signed`, never the wire bytes.
  it.each<[string, WireOptions]>([
    ['pretty-printed', { indent: 2, trailingNewline: true }],
    ['keys in reverse order', { keyOrder: 'reverse' }],
    ['no HTML escapes', { htmlEscape: false }],
    ['all non-ASCII escaped', { asciiOnly: true }],
    ['integers written as 1.0', { floatIntegers: true }],
  ])('every file %s', (_what, wire) => {
    const repo = make({ wire, tags: { v1: 'm1', 'a<b>&c\u2028é😀': 'm2' } });
    const set = load(repo);
    expect(set.targets.get('targets')!.targets.targets.has('a<b>&c\u2028é😀')).toBe(true);
    expect(repo.file('targets').toString()).not.toBe(make({ tags: { v1: 'm1', 'a<b>&c\u2028é😀': 'm2' } }).file('targets').toString());
  });

  it('HTML-escaped wire bytes really are escaped (the default, as notary writes)', () => {
    const repo = make({ tags: { '<x>': 'm' } });
    expect(repo.file('targets').toString()).toContain('\\u003cx\\u003e');
    expect(load(repo).targets.get('targets')!.targets.targets.has('<x>')).toBe(true);
  });
});

describe('✗ refusals, in update order', () => {
  type Row = [string, (r: Repo) => void, string, { floors?: VersionFloors; now?: Date }?];
  const rows: Row[] = [
    // timestamp
    ['timestamp signed with the snapshot key (checklist 12)', (r) => r.resign('timestamp', undefined, { signers: [snapshotKey()] }), 'SIGNATURE_INVALID'],
    ['timestamp with no signatures (checklist 13)', (r) => r.resign('timestamp', undefined, { signers: [] }), 'SIGNATURE_INVALID'],
    ['timestamp changed after signing (checklist 15)', (r) => r.tamper('timestamp', (s) => void (metaOf(s).snapshot!.length += 1)), 'SIGNATURE_INVALID'],
    ['timestamp signature under a keyid whose key hashes elsewhere', (r) => r.resign('root', (s) => {
      const ts = timestampKey();
      (s.keys as Record<string, Json>)[ts.id] = { keytype: 'ecdsa', keyval: { private: null, public: snapshotKey().public } };
    }), 'SIGNATURE_INVALID'],
    ['timestamp _type "Snapshot"', (r) => r.resign('timestamp', (s) => void (s._type = 'Snapshot')), 'MALFORMED'],
    ['timestamp version 0 (checklist 13)', (r) => r.resign('timestamp', (s) => void (s.version = 0)), 'MALFORMED'],
    ['expired timestamp (checklist 26)', (r) => r.resign('timestamp', (s) => void (s.expires = past)), 'EXPIRED'],
    ['timestamp version below the floor (checklist 28)', () => {}, 'ROLLBACK', { floors: { timestamp: 2 } }],
    // snapshot
    ['snapshot sha256 ≠ timestamp meta (checklist 29)', (r) => r.resign('timestamp', (s) => void (metaOf(s).snapshot!.hashes.sha256 = Buffer.alloc(32).toString('base64'))), 'HASH_MISMATCH'],
    ['snapshot sha256 matches but the listed sha512 does not (checklist 29)', (r) => r.resign('timestamp', (s) => void (metaOf(s).snapshot!.hashes.sha512 = Buffer.alloc(64).toString('base64'))), 'HASH_MISMATCH'],
    ['timestamp lists no sha256 for the snapshot (checklist 29)', (r) => r.resign('timestamp', (s) => void delete metaOf(s).snapshot!.hashes.sha256), 'MALFORMED'],
    ['snapshot longer than the length the timestamp lists (checklist 31)', (r) => r.resign('timestamp', (s) => void (metaOf(s).snapshot!.length -= 1)), 'TOO_LARGE'],
    ['snapshot truncated', (r) => r.setFile('snapshot', r.file('snapshot').subarray(0, -1)), 'HASH_MISMATCH'],
    ['snapshot re-serialized (still validly signed)', (r) => r.reserialize('snapshot', { keyOrder: 'reverse' }), 'HASH_MISMATCH'],
    ['snapshot signed with the timestamp key', (r) => r.resign('snapshot', undefined, { signers: [timestampKey()] }).relink({ timestampOnly: true }), 'SIGNATURE_INVALID'],
    ['snapshot changed after signing', (r) => r.tamper('snapshot', (s) => void (metaOf(s).targets!.length += 1)).relink({ timestampOnly: true }), 'SIGNATURE_INVALID'],
    ['expired snapshot (checklist 26)', (r) => r.resign('snapshot', (s) => void (s.expires = past)).relink({ timestampOnly: true }), 'EXPIRED'],
    ['snapshot version below the floor (checklist 28)', () => {}, 'ROLLBACK', { floors: { snapshot: 2 } }],
    // targets
    ["a target's length changed after signing (checklist 15)", (r) => r.tamper('targets', (s) => void (targetsOf(s).v1!.length = 9)).relink(), 'SIGNATURE_INVALID'],
    ['a target added after signing', (r) => r.tamper('targets', (s) => void (targetsOf(s).evil = { hashes: { sha256: Buffer.alloc(32).toString('base64') }, length: 1 })).relink(), 'SIGNATURE_INVALID'],
    ['targets re-serialized, still validly signed (checklist 30)', (r) => r.reserialize('targets', { keyOrder: 'reverse' }), 'HASH_MISMATCH'],
    ['targets longer than the snapshot length (checklist 31)', (r) => r.resign('snapshot', (s) => void (metaOf(s).targets!.length -= 1)).relink({ timestampOnly: true }), 'TOO_LARGE'],
    ['targets sha512 mismatch', (r) => r.resign('snapshot', (s) => void (metaOf(s).targets!.hashes.sha512 = Buffer.alloc(64).toString('base64'))).relink({ timestampOnly: true }), 'HASH_MISMATCH'],
    ['targets signed with the snapshot key', (r) => r.resign('targets', undefined, { signers: [snapshotKey()] }).relink(), 'SIGNATURE_INVALID'],
    ['"length": 1.5 in a target (checklist 17)', (r) => r.tamper('targets', (s) => void (targetsOf(s).v1!.length = 1.5)).relink(), 'MALFORMED'],
    ['targets/a/b declared in targets (checklist 36)', (r) => r.resign('targets', (s) => void delegationsOf(s).roles.push({ name: 'targets/a/b', keyids: [], threshold: 1, paths: [''] })).relink(), 'MALFORMED'],
    ['expired targets (checklist 26)', (r) => r.resign('targets', (s) => void (s.expires = past)).relink(), 'EXPIRED'],
    ['targets version below the floor (checklist 28)', () => {}, 'ROLLBACK', { floors: { targets: 2 } }],
    // delegations: what notary treats as fatal
    ['delegation with no signatures (fatal)', (r) => r.resign('targets/releases', undefined, { signers: [] }).relink(), 'SIGNATURE_INVALID'],
    ["delegation key in the parent hashing to another ID (checklist 11)", (r) => r.resign('targets', (s) => {
      delegationsOf(s).keys[releasesKey.id] = { keytype: 'ecdsa', keyval: { private: null, public: makeKey('ecdsa', 'ts other').public } };
    }).relink(), 'SIGNATURE_INVALID'],
    ['delegation bytes ≠ snapshot hash', (r) => r.reserialize('targets/releases', { keyOrder: 'reverse' }), 'HASH_MISMATCH'],
    ['delegation version below the floor (checklist 28)', () => {}, 'ROLLBACK', { floors: { 'targets/releases': 2 } }],
    ['delegation rollback is fatal even when it is also unsigned', (r) => r.resign('targets/releases', undefined, { signers: [makeKey('ecdsa', 'ts stranger')] }).relink(), 'ROLLBACK', { floors: { 'targets/releases': 2 } }],
    ['delegation _type "Root"', (r) => r.resign('targets/releases', (s) => void (s._type = 'Root')).relink(), 'MALFORMED'],
  ];
  it.each(rows)('%s', (_what, change, code, o) => {
    const repo = make();
    change(repo);
    expect(() => load(repo, o)).toThrow(expect.objectContaining({ code }));
  });

  it('the rollback message names both versions (checklist 28)', () => {
    expect(() => load(make(), { floors: { snapshot: 5 } })).toThrow(/version 1 is lower than current version 5/);
  });

  it('a delegation whose x509 key is signed with SHA-1 is fatal, not skipped', () => {
    const weak = makeCertKey({ cn: 'releases', algo: 'rsa', sha1: true });
    expect(() => load(make({ delegations: [{ name: 'targets/releases', keys: [weak], tags: { r1: 'r' } }] }))).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
  });

  it('✓ a delegation x509 key whose certificate expired still verifies (no expiry check for delegations)', () => {
    const old = makeCertKey({ cn: 'releases', notAfter: new Date('2029-01-01T00:00:00Z') });
    expect(load(make({ delegations: [{ name: 'targets/releases', keys: [old], tags: { r1: 'r' } }] })).targets.has('targets/releases')).toBe(true);
  });
});

describe('delegations notary skips with a warning (checklist 27, 34, 35)', () => {
  const child = { name: 'targets/releases/ci', tags: { c1: 'c' } };
  type Row = [string, Partial<BuildOptions>, (r: Repo) => void, { role: string; code: string } | null, string[]];
  it.each<Row>([
    ['expired delegation (27)', {}, (r) => r.resign('targets/releases', (s) => void (s.expires = past)).relink(), { role: 'targets/releases', code: 'EXPIRED' }, ['targets']],
    ['signed by a key not in the parent’s delegations.keys (34)', { delegations: [{ name: 'targets/releases', keys: [releasesKey], signers: [makeKey('ecdsa', 'ts stranger')] }] }, () => {}, { role: 'targets/releases', code: 'SIGNATURE_INVALID' }, ['targets']],
    ['threshold 2 met by one key', { delegations: [{ name: 'targets/releases', keys: [releasesKey, makeKey('ed25519', 'ts second')], threshold: 2, signers: [releasesKey] }] }, () => {}, { role: 'targets/releases', code: 'THRESHOLD_NOT_MET' }, ['targets']],
    ['a skipped role’s children are not walked', { delegations: [{ name: 'targets/releases', expires: past }, child] }, () => {}, { role: 'targets/releases', code: 'EXPIRED' }, ['targets']],
    ['absent from the snapshot: skipped silently (35)', { delegations: [{ name: 'targets/releases', inSnapshot: false }] }, () => {}, null, ['targets']],
    ['a child absent from the snapshot, its parent loads', { delegations: [{ name: 'targets/releases' }, { ...child, inSnapshot: false }] }, () => {}, null, ['targets', 'targets/releases']],
    ['✓ a child is walked when its parent is valid', { delegations: [{ name: 'targets/releases' }, child] }, () => {}, null, ['targets', 'targets/releases', 'targets/releases/ci']],
  ])('%s', (_what, o, change, skipped, loaded) => {
    const repo = make(o);
    change(repo);
    const set = load(repo);
    expect([...set.targets.keys()]).toEqual(loaded);
    expect(set.skipped).toEqual(skipped ? [expect.objectContaining(skipped)] : []);
  });

  it('pre-order DFS: children before siblings, in declaration order', () => {
    const names = ['targets/a', 'targets/a/x', 'targets/b', 'targets/a/y'];
    const set = load(make({ delegations: names.map((name) => ({ name })) }));
    expect([...set.targets.keys()]).toEqual(['targets', 'targets/a', 'targets/a/x', 'targets/a/y', 'targets/b']);
  });
});

describe('limits notary lacks', () => {
  it('✗ a delegation deeper than maxDelegationDepth → TOO_LARGE', () => {
    const names = ['targets/a', 'targets/a/b', 'targets/a/b/c'];
    expect(() => load(make({ delegations: names.map((name) => ({ name })) }), { limits: { maxDelegationDepth: 2, maxDelegations: 64 } })).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
    expect(() => load(make({ delegations: names.map((name) => ({ name })) }), { limits: { maxDelegationDepth: 3, maxDelegations: 64 } })).not.toThrow();
  });
  it('✗ more delegations than maxDelegations → TOO_LARGE', () => {
    const repo = make({ delegations: ['a', 'b', 'c'].map((n) => ({ name: `targets/${n}` })) });
    expect(() => load(repo, { limits: { maxDelegationDepth: 8, maxDelegations: 2 } })).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
    expect(() => load(repo, { limits: { maxDelegationDepth: 8, maxDelegations: 3 } })).not.toThrow();
  });
});

describe('path restriction (checklist 37, 38)', () => {
  it('children keep only the paths under one of their parent’s paths', () => {
    const set = load(
      make({
        delegations: [
          { name: 'targets/releases', paths: ['prod-', 'stage-'] },
          { name: 'targets/releases/ci', paths: ['prod-x', 'dev-', 'stage-', 'prod'] },
        ],
      }),
    );
    const [ci] = set.childrenOf(set.targets.get('targets/releases')!);
    expect(ci!.role.paths).toEqual(['prod-x', 'stage-']);
    expect(set.targets.get('targets/releases/ci')!.role.paths).toEqual(['prod-x', 'stage-']);
  });

  it('top-level targets has the implicit path ""', () => {
    expect(load(make()).targets.get('targets')!.role).toMatchObject({ name: 'targets', paths: [''] });
  });

  it('a role with only path_hash_prefixes gets no paths', () => {
    const set = load(make({ delegations: [{ name: 'targets/releases', paths: null, extra: { path_hash_prefixes: ['00'] } }] }));
    expect(set.targets.get('targets/releases')!.role.paths).toEqual([]);
  });
});

describe('the root the snapshot lists (checklist 33)', () => {
  it('rootIsCurrent is false when snapshot meta.root names other bytes', () => {
    const repo = make();
    repo.resign('snapshot', (s) => void (metaOf(s).root!.hashes.sha256 = Buffer.alloc(32, 1).toString('base64'))).relink({ timestampOnly: true });
    const root = validateRoot({ gun: GUN, env: parseEnvelope(repo.file('root'), 'root'), now: NOW, checkExpiry: true });
    const set = new TrustedSet(GUN, root, NOW, {});
    set.loadTimestamp(repo.file('timestamp'));
    set.loadSnapshot(repo.file('snapshot'));
    expect(set.rootIsCurrent()).toBe(false);
  });

  it('a key/ID mismatch for the targets role in root is fatal (checklist 11)', () => {
    const repo = make();
    const targetsKey = repo.keys.get('targets')![0]!;
    const impostor = withKey(makeKey('ecdsa', 'ts impostor'), { id: targetsKey.id });
    repo.resign('root', (s) => void ((s.keys as Record<string, Json>)[targetsKey.id] = { keytype: 'ecdsa', keyval: { private: null, public: impostor.public } }));
    repo.resign('targets', undefined, { signers: [impostor] }).relink();
    expect(() => load(repo)).toThrow(/not valid for its key content/);
  });
});
