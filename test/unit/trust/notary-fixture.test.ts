// Real notary 0.3 metadata (test/fixtures/notary0.3-tst, see SOURCE.md): GUN docker.com/notary0.3/tst,
// root ecdsa-x509 (leaf valid until 2026-07-25T22:56:32Z), targets/snapshot/timestamp ecdsa,
// targets/releases rsa-x509 signed rsapss, expiries written with -05:00 offsets and 8–9 fraction
// digits. Checklist 1, 2, 8, 18, 39.
import { beforeAll, describe, expect, it } from 'vitest';
import { TrustClient } from '../../../src/signatures/dct/client.js';
import { MemoryTrustState } from '../../../src/signatures/dct/state/memory-state.js';
import { MemoryFetcher, readFiles } from '../../support/notary-builder/index.js';

const GUN = 'docker.com/notary0.3/tst';
const DIR = new URL('../../fixtures/notary0.3-tst/', import.meta.url).pathname;
const BEFORE = new Date('2026-01-01T00:00:00Z');
const AFTER = new Date('2026-08-01T00:00:00Z');
const HELLO = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'; // sha256 of empty data
const LICENSE = 'sha256:9395bac6fccb26bcb55efb083d1b4b0fe72a1c25f959f056c016120b3bb56a62';

let files: Map<string, Buffer>;
beforeAll(async () => {
  files = await readFiles(DIR);
});
const client = (now: Date, state = new MemoryTrustState()) => new TrustClient({ fetcher: new MemoryFetcher(files), state, clock: { now: () => now } });

describe('notary 0.3 fixture before its root certificate expires (checklist 1)', () => {
  it('has the five files notary wrote', () => {
    expect([...files.keys()].sort()).toEqual(['root.json', 'snapshot.json', 'targets.json', 'targets/releases.json', 'timestamp.json']);
  });

  it('verifies all five roles', async () => {
    const set = await client(BEFORE).update(GUN);
    expect(set.root.root.version).toBe(1);
    expect(set.timestamp!.ts.version).toBe(4);
    expect(set.snapshot!.snap.version).toBe(5);
    expect([...set.targets.keys()]).toEqual(['targets', 'targets/releases']);
    expect(set.skipped).toEqual([]);
    expect(set.versions()).toEqual({ root: 1, timestamp: 4, snapshot: 5, targets: 5, 'targets/releases': 1 });
  });

  it('the releases delegation is an rsa-x509 key signing rsapss (checklist 8)', async () => {
    const set = await client(BEFORE).update(GUN);
    const releases = set.targets.get('targets/releases')!;
    const [keyid] = releases.role.keyids;
    expect(set.targets.get('targets')!.targets.delegationKeys.get(keyid!)?.keytype).toBe('rsa-x509');
    expect(releases.env.signatures.map((s) => [s.method, s.sig.length])).toEqual([['rsapss', 256]]);
  });

  it.each([
    ['hello', { digest: HELLO, length: 0, role: 'targets/releases' }],
    ['LICENSE', { digest: LICENSE, length: 11309, role: 'targets' }],
    ['change', { digest: HELLO, length: 0, role: 'targets' }],
  ])('resolves %s', async (tag, want) => {
    await expect(client(BEFORE).lookup(GUN, tag)).resolves.toEqual({ gun: GUN, tag, ...want });
  });

  it('✗ a tag the fixture does not sign', async () => {
    await expect(client(BEFORE).lookup(GUN, 'latest')).rejects.toMatchObject({ code: 'TAG_NOT_SIGNED' });
  });

  it('parses the -05:00 / 8–9-digit expiries to the right instants (checklist 39)', async () => {
    const set = await client(BEFORE).update(GUN);
    expect(set.root.root.expires.toISOString()).toBe('2116-07-03T22:56:36.027Z'); // 17:56:36.027379879-05:00
    expect(set.targets.get('targets')!.targets.expires.toISOString()).toBe('2116-07-03T23:08:08.418Z'); // .41836542-05:00
    expect(set.timestamp!.ts.expires.toISOString()).toBe('2116-07-03T23:08:08.447Z'); // Z
  });

  it('✗ another GUN: the root certificate CN does not match', async () => {
    await expect(client(BEFORE).lookup('docker.com/notary0.3/other', 'hello')).rejects.toMatchObject({ code: 'ROOT_CN_MISMATCH' });
  });

  it('✓ certs pin of the fixture root key; ✗ a pin of its canonical ID', async () => {
    const pinned = (ids: string[]) =>
      new TrustClient({ fetcher: new MemoryFetcher(files), state: new MemoryTrustState(), clock: { now: () => BEFORE }, pinning: { certs: { [GUN]: ids }, disableTofu: true } });
    await expect(pinned(['354e203ba09dbe17807b6a9d191bff887167c06d121e738d849446a9c76c2866']).lookup(GUN, 'hello')).resolves.toMatchObject({ digest: HELLO });
    await expect(pinned(['f4eaf871a74aa3b3a0ff95cef2455a1e4d461639f5625418e76756fc5c948690']).lookup(GUN, 'hello')).rejects.toMatchObject({ code: 'PINNING_FAILED' });
  });
});

describe('notary 0.3 fixture after its root certificate expired (checklist 2)', () => {
  it('✗ first contact → EXPIRED "unable to retrieve valid leaf certificates"', async () => {
    await expect(client(AFTER).lookup(GUN, 'hello')).rejects.toMatchObject({
      code: 'EXPIRED',
      message: expect.stringContaining('unable to retrieve valid leaf certificates'),
    });
  });

  it('✓ one second before the certificate NotAfter; ✗ one second after', async () => {
    await expect(client(new Date('2026-07-25T22:56:31Z')).lookup(GUN, 'hello')).resolves.toMatchObject({ digest: HELLO });
    await expect(client(new Date('2026-07-25T22:56:33Z')).lookup(GUN, 'hello')).rejects.toMatchObject({ code: 'EXPIRED' });
  });

  it('✗ with the root cached before expiry there is no newer root to move to → EXPIRED', async () => {
    const state = new MemoryTrustState();
    await client(BEFORE, state).update(GUN);
    await expect(client(AFTER, state).lookup(GUN, 'hello')).rejects.toMatchObject({ code: 'EXPIRED' });
  });
});

describe('tampering with the fixture', () => {
  it('✗ a byte changed inside signed targets (hash fails first)', async () => {
    const targets = Buffer.from(files.get('targets.json')!);
    targets.write('11308', targets.indexOf('11309'));
    const f = new Map(files).set('targets.json', targets);
    const c = new TrustClient({ fetcher: new MemoryFetcher(f), state: new MemoryTrustState(), clock: { now: () => BEFORE } });
    await expect(c.lookup(GUN, 'LICENSE')).rejects.toMatchObject({ code: 'HASH_MISMATCH' });
  });

  it('✗ the releases signature flipped: the snapshot hash catches the new bytes first', async () => {
    const env = JSON.parse(files.get('targets/releases.json')!.toString());
    const sig = Buffer.from(env.signatures[0].sig, 'base64');
    sig[0]! ^= 1;
    env.signatures[0].sig = sig.toString('base64');
    const f = new Map(files).set('targets/releases.json', Buffer.from(JSON.stringify(env)));
    const c = new TrustClient({ fetcher: new MemoryFetcher(f), state: new MemoryTrustState(), clock: { now: () => BEFORE } });
    await expect(c.lookup(GUN, 'hello')).rejects.toMatchObject({ code: 'HASH_MISMATCH' });
  });
});
