// CosignVerifier's choice of where to look: a trust naming a signature repository (cosign.repository)
// is read through the client wired for it, and without one the verifier fails closed, before any I/O.
import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CosignVerifier } from '../../../src/signatures/cosign/cosign-verifier.js';
import type { RegistryClient } from '../../../src/registry/registry-client.js';
import { makeCosignKey } from '../../support/cosign-sign.js';

const trust = { keys: [{ name: 'k.pub', key: createPublicKey(makeCosignKey().publicPem) }], identities: [], repository: 'sig.test/sigs/store' };
const digest = `sha256:${'a'.repeat(64)}`;
/** A client that records what it was asked and has nothing. */
function emptyRegistry(asked: string[]): RegistryClient {
  const none = { statusCode: 404, headers: {}, body: { dump: async () => undefined } };
  return {
    send: async (path: string) => (asked.push(path), none),
    fetchManifest: async (repo: string, ref: string) => (asked.push(`${repo}:${ref}`), undefined),
  } as unknown as RegistryClient;
}

describe('CosignVerifier and cosign.repository', () => {
  it('reads the signature repository through its own client, never the image repository', async () => {
    const image: string[] = [];
    const store: string[] = [];
    const v = new CosignVerifier(trust, 4, (name) => ({ registry: emptyRegistry(store), repo: 'sigs/store', name }));
    await expect(v.verify(emptyRegistry(image), 'reg.test/team/app', 'team/app', { digest })).rejects.toMatchObject({
      code: 'COSIGN_UNSIGNED',
      message: expect.stringContaining('has no cosign signature in signature repository sig.test/sigs/store'),
    });
    expect(image).toEqual([]);
    expect(store).toContain(`sigs/store:sha256-${'a'.repeat(64)}.sig`);
    expect(store.some((p) => p.startsWith('/v2/sigs/store/referrers/'))).toBe(true);
  });

  it('fails closed when no client was wired for the repository', async () => {
    const image: string[] = [];
    await expect(new CosignVerifier(trust).verify(emptyRegistry(image), 'reg.test/team/app', 'team/app', { digest })).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(image).toEqual([]);
  });
});
