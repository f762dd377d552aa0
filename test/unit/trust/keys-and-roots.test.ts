// Key types, thresholds, root certificate rules and trust pinning, on repositories built in-process
// (test/support/signed-repo.ts) — the cases the real notary CLI cannot be made to produce on demand.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TrustClient, type MetadataFetcher } from '../../../src/signatures/dct/client.js';
import { MemoryTrustState } from '../../../src/signatures/dct/state/memory-state.js';
import type { TrustPinning } from '../../../src/signatures/dct/verify/root.js';
import { buildRepo, makeCertKey, makeKey, type RepoSpec } from '../../support/signed-repo.js';

const GUN = 'example.com/team/app';
const manifest = Buffer.from('{"schemaVersion":2}');
const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;

async function lookup(files: Map<string, Buffer>, opts: { now?: Date; pinning?: TrustPinning; gun?: string } = {}) {
  const fetcher: MetadataFetcher = { source: 'memory', fetch: async (r) => files.get(r.role) ?? null };
  const client = new TrustClient({ fetcher, state: new MemoryTrustState(), clock: { now: () => opts.now ?? new Date() }, pinning: opts.pinning });
  return client.lookup(opts.gun ?? GUN, 'v1');
}

const rootKey = makeCertKey({ cn: GUN });
const repo = (over: Partial<RepoSpec> = {}) => buildRepo({ gun: GUN, root: [rootKey], targets: [makeKey('ecdsa')], tags: { v1: manifest }, ...over });

describe('key types notary produces', () => {
  it.each(['ecdsa', 'ed25519', 'rsa-pss', 'rsa-pkcs1'] as const)('targets signed with %s verify', async (kind) => {
    await expect(lookup(repo({ targets: [makeKey(kind)] }))).resolves.toMatchObject({ digest, length: manifest.length, role: 'targets' });
  });

  it('an rsa-x509 root key (rsapss) verifies', async () => {
    const rsaRoot = makeCertKey({ cn: GUN, algo: 'rsa' });
    await expect(lookup(repo({ root: [rsaRoot] }))).resolves.toMatchObject({ digest });
  });

  it('refuses RSA keys under 2048 bits', async () => {
    await expect(lookup(repo({ targets: [makeKey('rsa-1024')] }))).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
  });
});

describe('thresholds count distinct keys', () => {
  const a = makeKey('ecdsa');
  const b = makeKey('ed25519');
  it('threshold 2 met by two different keys', async () => {
    await expect(lookup(repo({ targets: [a, b], targetsThreshold: 2 }))).resolves.toMatchObject({ digest });
  });
  it('threshold 2 is not met by one key signing twice', async () => {
    await expect(lookup(repo({ targets: [a, b], targetsThreshold: 2, targetsSigners: [a, a] }))).rejects.toMatchObject({ code: 'THRESHOLD_NOT_MET' });
  });
  it('a signature by a key outside the role does not count', async () => {
    await expect(lookup(repo({ targets: [a], targetsSigners: [b] }))).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
  });
  it('a root signed by fewer root keys than its threshold is refused', async () => {
    const r2 = makeCertKey({ cn: GUN });
    await expect(lookup(repo({ root: [rootKey, r2], rootThreshold: 2, rootSigners: [rootKey] }))).rejects.toMatchObject({ code: 'THRESHOLD_NOT_MET' });
  });
});

describe('root certificates', () => {
  it('refuses a leaf whose CN is not the GUN', async () => {
    await expect(lookup(repo({ root: [makeCertKey({ cn: 'example.com/other' })] }))).rejects.toMatchObject({ code: 'ROOT_CN_MISMATCH' });
  });
  it('accepts a wildcard CN that prefixes the GUN', async () => {
    await expect(lookup(repo({ root: [makeCertKey({ cn: 'example.com/team/*' })] }))).resolves.toMatchObject({ digest });
  });
  it('refuses a SHA-1-signed leaf', async () => {
    await expect(lookup(repo({ root: [makeCertKey({ cn: GUN, algo: 'rsa', sha1: true })] }))).rejects.toMatchObject({ code: 'ROOT_CERT_INVALID' });
  });
  it('refuses an RSA-1024 leaf', async () => {
    await expect(lookup(repo({ root: [makeCertKey({ cn: GUN, algo: 'rsa-1024' })] }))).rejects.toMatchObject({ code: 'ROOT_CERT_INVALID' });
  });
  it('allows a day of clock skew on NotBefore, not two', async () => {
    const now = Date.now();
    await expect(lookup(repo(), { now: new Date(now - 12 * 3600e3) })).resolves.toMatchObject({ digest });
    await expect(lookup(repo(), { now: new Date(now - 2 * 86400e3) })).rejects.toMatchObject({ code: 'ROOT_CERT_INVALID' });
  });
  it('refuses a root whose certificate has expired on first contact', async () => {
    await expect(lookup(repo(), { now: new Date(Date.now() + 400 * 86400e3) })).rejects.toMatchObject({ code: 'EXPIRED' });
  });
  it('refuses a plain ecdsa root key: it carries no certificate', async () => {
    await expect(lookup(repo({ root: [makeKey('ecdsa')] }))).rejects.toMatchObject({ code: 'ROOT_CERT_INVALID' });
  });
});

describe('trust pinning', () => {
  const ca = makeCertKey({ cn: 'pinning-ca', isCA: true });
  const issued = makeCertKey({ cn: GUN, ca: { keyFile: ca.keyFile, certFile: ca.certFile } });
  const caPem = readFileSync(ca.certFile, 'utf8');
  const inter = makeCertKey({ cn: 'pinning-intermediate', isCA: true, ca: { keyFile: ca.keyFile, certFile: ca.certFile } });
  const viaInter = makeCertKey({ cn: GUN, ca: { keyFile: inter.keyFile, certFile: inter.certFile } }, [inter.certDer]);
  it.each<[string, () => Map<string, Buffer>, TrustPinning, string | undefined]>([
    ['certs pin matches', () => repo(), { certs: { [GUN]: [rootKey.id] } }, undefined],
    ['certs pin mismatches', () => repo(), { certs: { [GUN]: ['0'.repeat(64)] } }, 'PINNING_FAILED'],
    ['wildcard certs pin matches', () => repo(), { certs: { 'example.com/*': [rootKey.id] } }, undefined],
    ['longest wildcard wins', () => repo(), { certs: { 'example.com/*': [rootKey.id], 'example.com/team/*': ['0'.repeat(64)] } }, 'PINNING_FAILED'],
    ['CA pin with a leaf the CA issued', () => repo({ root: [issued] }), { ca: { 'example.com/': caPem } }, undefined],
    ['CA pin with a leaf issued through an intermediate the root carries', () => repo({ root: [viaInter] }), { ca: { 'example.com/': caPem } }, undefined],
    ['CA pin for a longer prefix wins over a shorter one', () => repo({ root: [issued] }), { ca: { 'example.com/': caPem, 'example.com/team/': readFileSync(inter.certFile, 'utf8') } }, 'PINNING_FAILED'],
    ['CA pin with a self-signed leaf', () => repo(), { ca: { 'example.com/': caPem } }, 'PINNING_FAILED'],
    ['TOFU disabled and no pin', () => repo(), { disableTofu: true }, 'PINNING_FAILED'],
    ['TOFU disabled, pin for another GUN', () => repo(), { disableTofu: true, certs: { 'other/*': [rootKey.id] } }, 'PINNING_FAILED'],
    ['TOFU allowed, no pin', () => repo(), {}, undefined],
  ])('%s', async (_n, files, pinning, code) => {
    const p = lookup(files(), { pinning });
    if (code) await expect(p).rejects.toMatchObject({ code });
    else await expect(p).resolves.toMatchObject({ digest });
  });
});
