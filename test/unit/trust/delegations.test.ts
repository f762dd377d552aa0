// Delegations and Docker's tag rule: targets/releases first, then targets; path restrictions; what
// notary skips (expired, under threshold, absent from the snapshot) and what is fatal; limits.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TrustClient, type MetadataFetcher } from '../../../src/signatures/dct/client.js';
import { MemoryTrustState } from '../../../src/signatures/dct/state/memory-state.js';
import { buildRepo, makeCertKey, makeKey, type DelegationSpec } from '../../support/signed-repo.js';

const GUN = 'example.com/team/app';
const root = makeCertKey({ cn: GUN });
const targetsKey = makeKey('ecdsa');
const relKey = makeCertKey({ cn: 'releases' });
const other = makeKey('ecdsa');
const b = (s: string) => Buffer.from(s);
const dig = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

function repo(tags: Record<string, Buffer>, delegations: DelegationSpec[], editTargets?: (s: Record<string, unknown>) => void) {
  return buildRepo({ gun: GUN, root: [root], targets: [targetsKey], tags, delegations, editTargets });
}
const declare = (name: string) => (s: Record<string, unknown>) =>
  void (s.delegations as { roles: unknown[] }).roles.push({ name, keyids: [], threshold: 1, paths: [''] });

async function lookup(files: Map<string, Buffer>, tag: string) {
  const fetcher: MetadataFetcher = { source: 'memory', fetch: async (r) => files.get(r.role) ?? null };
  return new TrustClient({ fetcher, state: new MemoryTrustState(), clock: { now: () => new Date() } }).lookup(GUN, tag);
}

const rel = (over: Partial<DelegationSpec> = {}): DelegationSpec => ({ name: 'targets/releases', keys: [relKey], tags: { r: b('rel') }, ...over });

describe("Docker's tag rule", () => {
  it('a tag in targets/releases resolves there', async () => {
    await expect(lookup(repo({}, [rel()]), 'r')).resolves.toMatchObject({ role: 'targets/releases', digest: dig('rel') });
  });
  it('a tag in both resolves to the releases entry, even with another digest', async () => {
    await expect(lookup(repo({ r: b('top') }, [rel()]), 'r')).resolves.toMatchObject({ role: 'targets/releases', digest: dig('rel') });
  });
  it('a tag only in targets/alice is not trusted', async () => {
    await expect(lookup(repo({}, [{ name: 'targets/alice', keys: [other], tags: { a: b('alice') } }]), 'a')).rejects.toMatchObject({ code: 'TAG_NOT_SIGNED' });
  });
  it('a tag only in targets/releases/x is not trusted', async () => {
    const files = repo({}, [rel({ tags: {} }), { name: 'targets/releases/x', keys: [other], tags: { x: b('x') } }]);
    await expect(lookup(files, 'x')).rejects.toMatchObject({ code: 'TAG_NOT_SIGNED', message: expect.stringContaining('targets/releases/x') });
  });
  it('a tag outside the releases paths falls through to targets', async () => {
    const files = repo({ x1: b('top') }, [rel({ paths: ['v'], tags: { x1: b('rel'), v1: b('v1') } })]);
    await expect(lookup(files, 'x1')).resolves.toMatchObject({ role: 'targets', digest: dig('top') });
    await expect(lookup(files, 'v1')).resolves.toMatchObject({ role: 'targets/releases' });
  });
  it("a child's paths are restricted to its parent's", async () => {
    const files = repo({}, [rel({ paths: ['v'], tags: {} }), { name: 'targets/releases/ci', keys: [other], paths: ['', 'x'], tags: { x: b('x') } }]);
    await expect(lookup(files, 'x')).rejects.toMatchObject({ code: 'TAG_NOT_SIGNED' });
  });
  it('a delegation with no paths signs nothing', async () => {
    await expect(lookup(repo({}, [rel({ paths: [] })]), 'r')).rejects.toMatchObject({ code: 'TAG_NOT_SIGNED' });
  });
});

describe('delegation failures', () => {
  it('an expired releases role is skipped; its tags are refused, targets still resolve', async () => {
    const files = repo({ t: b('t') }, [rel({ expires: '2001-01-01T00:00:00Z' })]);
    await expect(lookup(files, 'r')).rejects.toMatchObject({ code: 'TAG_NOT_SIGNED', message: expect.stringContaining('expired') });
    await expect(lookup(files, 't')).resolves.toMatchObject({ role: 'targets' });
  });
  it('a releases role signed by a key its parent does not list is skipped', async () => {
    await expect(lookup(repo({}, [rel({ signers: [other] })]), 'r')).rejects.toMatchObject({ code: 'TAG_NOT_SIGNED' });
  });
  it('a role declared but absent from the snapshot is skipped silently', async () => {
    const files = repo({ t: b('t') }, [rel({ inSnapshot: false })]);
    await expect(lookup(files, 'r')).rejects.toMatchObject({ code: 'TAG_NOT_SIGNED' });
    await expect(lookup(files, 't')).resolves.toMatchObject({ role: 'targets' });
  });
  it.each(['targets/a/b', 'targets/../x', 'targets/A', 'targets/a//b', 'targets/', 'releases'])(
    'a validly signed targets declaring %s is invalid as a whole',
    async (name) => {
      await expect(lookup(repo({ t: b('t') }, [], declare(name)), 't')).rejects.toMatchObject({ code: 'MALFORMED' });
    },
  );
  it('refuses delegation trees deeper than 8', async () => {
    const chain: DelegationSpec[] = [];
    let name = 'targets';
    for (let i = 0; i < 9; i++) chain.push({ name: (name = `${name}/d${i}`), keys: [other] });
    await expect(lookup(repo({ t: b('t') }, chain), 't')).rejects.toMatchObject({ code: 'TOO_LARGE' });
  });
  it('refuses more than 64 delegated roles', async () => {
    const many = Array.from({ length: 70 }, (_, i) => ({ name: `targets/r${i}`, keys: [other] }));
    await expect(lookup(repo({ t: b('t') }, many), 't')).rejects.toMatchObject({ code: 'TOO_LARGE' });
  });
});
