// One tag through resign's plan: the DCT engine (the real notary 0.3 fixture through TrustService) and
// the upstream's bytes decide before any publisher is asked. A registry stand-in (undici MockAgent)
// serves the manifest by digest: the signed bytes, other bytes, or nothing; a recording publisher shows
// that nothing unverified ever reaches it.
import { readFileSync } from 'node:fs';
import { MockAgent } from 'undici';
import { describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../src/registry/registry-client.js';
import { resignTag } from '../../../src/resign/plan.js';
import type { Publisher, SignedSubject } from '../../../src/resign/publisher.js';
import { TrustClient, type MetadataFetcher } from '../../../src/signatures/dct/client.js';
import { MemoryTrustState } from '../../../src/signatures/dct/state/memory-state.js';
import { TrustService } from '../../../src/signatures/dct/trust-service.js';

const GUN = 'docker.com/notary0.3/tst';
const REPO = 'notary0.3/tst';
// The fixture signs `hello` as the empty file: sha256 e3b0c442…, length 0.
const HELLO = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const dir = new URL('../../fixtures/notary0.3-tst/', import.meta.url);
const files = Object.fromEntries(['root', 'timestamp', 'snapshot', 'targets', 'targets/releases'].map((r) => [r, readFileSync(new URL(`${r}.json`, dir))]));

function setup(served: { status: number; body: string } | 'down') {
  const fetcher: MetadataFetcher = { source: 'test', fetch: async (req) => (served === 'down' ? Promise.reject(Object.assign(new Error('down'), { code: 'NOTARY_UNAVAILABLE' })) : (files[req.role] ?? null)) };
  const clock = { now: () => new Date('2026-01-01T00:00:00Z') };
  const service = new TrustService({ client: new TrustClient({ fetcher, state: new MemoryTrustState(), clock }), clock, cacheSeconds: 300 });
  const agent = new MockAgent();
  agent.disableNetConnect();
  const asked: string[] = [];
  agent
    .get('http://reg.test')
    .intercept({ path: (p) => p.startsWith('/v2/'), method: 'GET' })
    .reply((o) => {
      asked.push(o.path);
      return served === 'down' ? { statusCode: 500, data: '' } : { statusCode: served.status, data: served.body, responseOptions: { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } } };
    })
    .persist();
  const reader = new RegistryClient({ registry: 'http://reg.test', timeoutMs: 5000, manifestBytes: 1 << 20, dispatcher: agent });
  const calls: Array<[string, SignedSubject]> = [];
  const publisher: Publisher = {
    kind: 'cosign',
    repository: 'reg.test/sigs',
    findPresent: async (s) => (calls.push(['findPresent', s]), undefined),
    publish: async (s) => (calls.push(['publish', s]), `sha256:${'5'.repeat(64)}`),
  };
  const base = { image: GUN, signature: { kind: 'cosign' as const, digest: null, repository: 'reg.test/sigs' } };
  const run = (tag: string, dryRun = false) => resignTag(GUN, REPO, tag, { service, close: async () => {} }, reader, publisher, dryRun, base);
  return { run, calls, asked };
}

describe('resignTag', () => {
  it('signs the signed digest once the upstream serves exactly the signed bytes, with the provenance', async () => {
    const { run, calls, asked } = setup({ status: 200, body: '' });
    const line = await run('hello');
    expect(asked).toEqual([`/v2/${REPO}/manifests/${HELLO}`]);
    expect(line).toMatchObject({ tag: 'hello', digest: HELLO, result: 'signed', code: null, signature: { digest: `sha256:${'5'.repeat(64)}` }, dct: { role: 'targets/releases', verifiedAt: '2026-01-01T00:00:00.000Z' } });
    expect(calls.map((c) => c[0])).toEqual(['findPresent', 'publish']);
    expect(calls[1]![1]).toEqual({ name: GUN, mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: HELLO, size: 0 });
  });

  it('--dry-run: would-sign, never published', async () => {
    const { run, calls } = setup({ status: 200, body: '' });
    expect(await run('hello', true)).toMatchObject({ result: 'would-sign', digest: HELLO });
    expect(calls.map((c) => c[0])).toEqual(['findPresent']);
  });

  it.each([
    ['an unsigned tag', 'nothere', { status: 200, body: '' }, 'TAG_NOT_SIGNED', null],
    ['other bytes under the signed digest', 'hello', { status: 200, body: '{"schemaVersion":2}' }, 'DIGEST_MISMATCH', HELLO],
    ['a manifest the upstream does not have', 'hello', { status: 404, body: '{"errors":[]}' }, 'MANIFEST_UNKNOWN', HELLO],
    ['an upstream error', 'hello', { status: 503, body: '' }, 'UPSTREAM_UNAVAILABLE', HELLO],
    ['a notary server that cannot be reached', 'hello', 'down' as const, 'NOTARY_UNAVAILABLE', null],
  ])('refuses %s with its code, and no publisher is asked anything', async (_n, tag, served, code, digest) => {
    const { run, calls } = setup(served);
    const line = await run(tag);
    // The signed digest is reported once the tag resolved; the bytes behind it were not what DCT signed.
    expect(line).toMatchObject({ tag, digest, result: 'refused', code, signature: { digest: null } });
    expect(calls).toEqual([]);
  });
});
