// Docker's tag rule over a verified set (NOTARY.md §7 "Target lookup", §8; checklist 3–6, 27, 37, 38):
// look in targets/releases and its subtree, then targets and the rest; accept only a hit in
// targets/releases or targets.
import { describe, expect, it } from 'vitest';
import { resolveTag } from '../../../src/signatures/dct/resolve-tag.js';
import { buildRepo, digestOf, makeKey, type DelegationOptions, type TargetValue } from '../../support/notary-builder/index.js';
import { loadSet } from './load-set.js';

const GUN = 'example.com/team/app';
const NOW = new Date('2030-01-01T00:00:00Z');
const past = new Date(NOW.getTime() - 1000);

function resolve(tags: Record<string, TargetValue>, delegations: DelegationOptions[], tag: string) {
  const set = loadSet(buildRepo({ gun: GUN, now: NOW, tags, delegations }));
  return resolveTag(GUN, tag, set.targets, set.skipped);
}
const rel = (tags: Record<string, TargetValue>, o: Partial<DelegationOptions> = {}): DelegationOptions => ({ name: 'targets/releases', tags, ...o });

describe('accepted (checklist 3, 4, 27, 37)', () => {
  type Row = [string, Record<string, TargetValue>, DelegationOptions[], string, { role: string; content: string }];
  it.each<Row>([
    ['tag only in targets, no delegations (3)', { v1: 'top' }, [], 'v1', { role: 'targets', content: 'top' }],
    ['tag in targets/releases (4)', {}, [rel({ v1: 'rel' })], 'v1', { role: 'targets/releases', content: 'rel' }],
    ['tag in both, different digests: releases wins (4)', { v1: 'top' }, [rel({ v1: 'rel' })], 'v1', { role: 'targets/releases', content: 'rel' }],
    ['releases declared after other roles still wins', { v1: 'top' }, [{ name: 'targets/alice', tags: { v1: 'alice' } }, rel({ v1: 'rel' })], 'v1', { role: 'targets/releases', content: 'rel' }],
    ['releases beats its own child', {}, [rel({ v1: 'rel' }), { name: 'targets/releases/x', tags: { v1: 'x' } }], 'v1', { role: 'targets/releases', content: 'rel' }],
    ['releases beats targets/alice', {}, [{ name: 'targets/alice', tags: { v1: 'alice' } }, rel({ v1: 'rel' })], 'v1', { role: 'targets/releases', content: 'rel' }],
    ['targets beats targets/alice', { v1: 'top' }, [{ name: 'targets/alice', tags: { v1: 'alice' } }], 'v1', { role: 'targets', content: 'top' }],
    ['releases with paths [""] (37)', {}, [rel({ v1: 'rel' }, { paths: [''] })], 'v1', { role: 'targets/releases', content: 'rel' }],
    ['tag under the releases path prefix (37)', {}, [rel({ 'v1.2': 'rel' }, { paths: ['v1.'] })], 'v1.2', { role: 'targets/releases', content: 'rel' }],
    ['prefix, not glob: "v*" is a literal prefix', {}, [rel({ 'v*x': 'rel' }, { paths: ['v*'] })], 'v*x', { role: 'targets/releases', content: 'rel' }],
    ['tag outside the releases paths falls through to targets', { latest: 'top' }, [rel({ latest: 'rel' }, { paths: ['v'] })], 'latest', { role: 'targets', content: 'top' }],
    ['tag in an expired releases and in targets: targets (27)', { v1: 'top' }, [rel({ v1: 'rel' }, { expires: past })], 'v1', { role: 'targets', content: 'top' }],
    ['releases absent from the snapshot: targets', { v1: 'top' }, [rel({ v1: 'rel' }, { inSnapshot: false })], 'v1', { role: 'targets', content: 'top' }],
  ])('✓ %s', (_what, tags, delegations, tag, want) => {
    expect(resolve(tags, delegations, tag)).toEqual({ gun: GUN, tag, digest: digestOf(want.content), length: Buffer.byteLength(want.content), role: want.role });
  });

  it('digest = "sha256:" + hex of the base64-decoded hashes.sha256; length as signed', () => {
    const sha = Buffer.from('0123456789abcdef0123456789abcdef');
    const r = resolve({ v1: { hashes: { sha256: sha.toString('base64') }, length: 4242 } }, [], 'v1');
    expect(r).toMatchObject({ digest: 'sha256:' + sha.toString('hex'), length: 4242 });
  });
});

describe('refused with TAG_NOT_SIGNED (checklist 5, 6, 27, 34, 37, 38)', () => {
  const sha512only = { hashes: { sha512: Buffer.alloc(64, 1).toString('base64') }, length: 3 };
  const shortSha = { hashes: { sha256: Buffer.alloc(20, 1).toString('base64') }, length: 3 };
  type Row = [string, Record<string, TargetValue>, DelegationOptions[], string, RegExp?];
  it.each<Row>([
    ['tag only in targets/alice (5)', {}, [{ name: 'targets/alice', tags: { v1: 'alice' } }], 'v1', /signed only by targets\/alice/],
    ['tag only in targets/releases/x (5)', {}, [rel({}), { name: 'targets/releases/x', tags: { v1: 'x' } }], 'v1', /signed only by targets\/releases\/x/],
    // docker takes the first hit of GetTargetByName("targets/releases", "targets"), then checks its role.
    ['tag in targets/releases/x and in targets: the releases subtree is searched first', { v1: 'top' }, [rel({}), { name: 'targets/releases/x', tags: { v1: 'x' } }], 'v1', /signed only by targets\/releases\/x/],
    ['tag only in targets/alice/releases', {}, [{ name: 'targets/alice' }, { name: 'targets/alice/releases', tags: { v1: 'x' } }], 'v1'],
    ['tag absent everywhere (6)', { v2: 'top' }, [rel({ v3: 'rel' })], 'v1', /no valid trust data for v1/],
    ['tag names are case-sensitive', { V1: 'top' }, [], 'v1'],
    ['target meta without sha256 (6)', { v1: sha512only }, [], 'v1', /expecting sha256/],
    ['target sha256 of 20 bytes', { v1: shortSha }, [], 'v1', /expecting sha256/],
    ['releases entry without sha256 shadows a good targets entry', { v1: 'top' }, [rel({ v1: sha512only })], 'v1', /expecting sha256/],
    ['tag outside the releases paths, not in targets (37)', {}, [rel({ latest: 'rel' }, { paths: ['v'] })], 'latest'],
    ['releases with paths [] signs nothing', {}, [rel({ v1: 'rel' }, { paths: [] })], 'v1'],
    ['releases with only path_hash_prefixes signs nothing (38)', {}, [rel({ v1: 'rel' }, { paths: null, extra: { path_hash_prefixes: [''] } })], 'v1'],
    ['tag only in an expired releases (27)', {}, [rel({ v1: 'rel' }, { expires: past })], 'v1', /ignored: targets\/releases expired/],
    ['tag only in a releases signed by a key its parent does not list (34)', {}, [rel({ v1: 'rel' }, { signers: [makeKey('ecdsa', 'rt stranger')] })], 'v1', /ignored: targets\/releases/],
    ['tag only in a releases child outside releases’ paths (37)', {}, [rel({}, { paths: ['prod-'] }), { name: 'targets/releases/ci', paths: ['dev-'], tags: { 'dev-1': 'ci' } }], 'dev-1'],
  ])('✗ %s', (_what, tags, delegations, tag, message) => {
    expect(() => resolve(tags, delegations, tag)).toThrow(expect.objectContaining({ code: 'TAG_NOT_SIGNED', ...(message ? { message: expect.stringMatching(message) } : {}) }));
  });
});
