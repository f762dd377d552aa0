// Fetch one piece of signature material by digest (a signature manifest, a payload, an envelope, a
// bundle) through the signature pool, within the item's own size cap and what is left of the
// request's byte budget (signature-budget.ts), checked against its digest. The answer says whether a
// failure is a property of the digest's bytes (cacheable forever) or of this moment (the registry, the
// network, the budget: try again another time).
import { createHash } from 'node:crypto';
import { isTrustgateError } from '../errors.js';
import { readBodyCapped } from '../http/read-capped.js';
import type { RegistryClient } from './registry-client.js';
import type { SignatureBudget } from './signature-budget.js';

/**
 * `permanent`: a property of the digest's bytes. `transient`: the registry's answer about this digest
 * (it does not have it, or served other bytes), remembered for a while. Neither: the network, the
 * registry's health or the request's budget, never remembered.
 */
export type Fetched = { bytes: Buffer } | { reason: string; permanent: boolean; transient?: boolean };

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function capped(budget: SignatureBudget | undefined, itemMax: number, what: string, read: (cap: number) => Promise<Buffer | null>): Promise<Fetched> {
  const cap = budget ? budget.reserve(itemMax) : itemMax;
  if (cap <= 0) return { reason: `${what}: the signature byte budget of this request is spent`, permanent: false };
  let bytes: Buffer | null = null;
  try {
    bytes = await read(cap);
    if (bytes === null) return { reason: `${what} is not in the registry`, permanent: false, transient: true };
    return { bytes };
  } catch (err) {
    const code = isTrustgateError(err) ? err.code : (err as { code?: string }).code;
    if (code === 'TOO_LARGE' || code === 'MANIFEST_TOO_LARGE') {
      // Over the item's own cap: the bytes behind a digest never change, so that is permanent. Over
      // what the budget had left: only this request could not afford it.
      return cap < itemMax ? { reason: `${what}: the signature byte budget of this request is spent`, permanent: false } : { reason: `${what} is larger than ${itemMax} bytes`, permanent: true };
    }
    return { reason: `${what}: ${(err as Error).message}`, permanent: false };
  } finally {
    budget?.refund(cap - (bytes?.length ?? 0));
  }
}

/** A blob by digest; bytes that do not hash to it are the registry's doing, not the candidate's. */
export async function fetchSignatureBlob(registry: RegistryClient, repo: string, digest: string, itemMax: number, what: string, budget?: SignatureBudget): Promise<Fetched> {
  const r = await capped(budget, itemMax, what, async (cap) => {
    const res = await registry.send(`/v2/${repo}/blobs/${digest}`, { method: 'GET', repo, signal: AbortSignal.timeout(30_000), pool: 'signatures' });
    if (res.statusCode === 404) {
      await res.body.dump();
      return null;
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => {});
      throw new Error(`the registry answered ${res.statusCode}`);
    }
    return Buffer.from(await readBodyCapped(res.body, cap, what, res.headers['content-length']));
  });
  if ('bytes' in r && sha256(r.bytes) !== digest) return { reason: `the registry served other bytes for ${what}`, permanent: false, transient: true };
  return r;
}

/** A manifest by digest, likewise. */
export async function fetchSignatureManifest(registry: RegistryClient, repo: string, digest: string, accept: readonly string[], itemMax: number, what: string, budget?: SignatureBudget): Promise<Fetched> {
  const r = await capped(budget, itemMax, what, async (cap) => (await registry.fetchManifest(repo, digest, accept, cap, { pool: 'signatures' }))?.bytes ?? null);
  if ('bytes' in r && sha256(r.bytes) !== digest) return { reason: `the registry served other bytes for ${what}`, permanent: false, transient: true };
  return r;
}
