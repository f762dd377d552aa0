// Keyed cosign signatures in the classic form, verified offline: every refusal path, with signatures
// made from the specification (ECDSA P-256 over the simple-signing payload, node:crypto).
import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkSimpleSigningPayload } from '../../../src/signatures/cosign/signed-subject.js';
import { verifyClassicSignature, type CosignTrust } from '../../../src/signatures/cosign/verify-signature.js';
import { makeCosignKey, signPayload, simpleSigningPayload } from '../../support/cosign-sign.js';

const digest = `sha256:${'a'.repeat(64)}`;
const other = `sha256:${'b'.repeat(64)}`;
const signer = makeCosignKey();
const stranger = makeCosignKey();
const trustOf = (...pems: string[]): CosignTrust => ({ keys: pems.map((p, i) => ({ name: `k${i}.pem`, key: createPublicKey(p) })), identities: [] });

describe('classic keyed signature', () => {
  const payload = simpleSigningPayload(digest);
  const signature = signPayload(payload, signer.privateKey);

  it('verifies with the signing key and names it', () => {
    expect(verifyClassicSignature({ payload, signature }, digest, trustOf(signer.publicPem)).by).toBe('key k0.pem');
  });

  it('tries every configured key', () => {
    expect(verifyClassicSignature({ payload, signature }, digest, trustOf(stranger.publicPem, signer.publicPem)).by).toBe('key k1.pem');
  });

  it('refuses another key', () => {
    expect(() => verifyClassicSignature({ payload, signature }, digest, trustOf(stranger.publicPem))).toThrow(/key k0.pem: signature verification failed/);
  });

  it('refuses a payload for another digest, though its signature is valid', () => {
    const p = simpleSigningPayload(other);
    expect(() => verifyClassicSignature({ payload: p, signature: signPayload(p, signer.privateKey) }, digest, trustOf(signer.publicPem))).toThrow(`the payload signs ${other}, not ${digest}`);
  });

  it('refuses an altered signature', () => {
    const sig = Buffer.from(signature, 'base64');
    sig.writeUInt8(sig.readUInt8(sig.length - 1) ^ 1, sig.length - 1);
    expect(() => verifyClassicSignature({ payload, signature: sig.toString('base64') }, digest, trustOf(signer.publicPem))).toThrow(/signature verification failed/);
  });

  it('refuses an altered payload (same digest, a claim added after signing)', () => {
    const altered = Buffer.from(JSON.stringify({ ...JSON.parse(payload.toString()), optional: { added: 'later' } }));
    expect(() => verifyClassicSignature({ payload: altered, signature }, digest, trustOf(signer.publicPem))).toThrow(/signature verification failed/);
  });

  it('refuses a certificate-bearing signature when only keys are configured', () => {
    expect(() => verifyClassicSignature({ payload, signature, certificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' }, digest, trustOf(signer.publicPem))).toThrow(/no cosign trustedRoot is configured/);
  });

  it('refuses when no keys are configured', () => {
    expect(() => verifyClassicSignature({ payload, signature }, digest, trustOf())).toThrow(/no cosign keys are configured/);
  });
});

describe('simple-signing payload', () => {
  it.each([
    ['not JSON', Buffer.from('nope'), /not JSON/],
    ['no critical', Buffer.from('{}'), /no critical section/],
    ['another type', simpleSigningPayload(digest, { type: 'atomic container signature' }), /critical.type is "atomic container signature"/],
    ['no image', Buffer.from(JSON.stringify({ critical: { type: 'cosign container image signature' } })), /no critical.image/],
    ['another spelling', Buffer.from(JSON.stringify({ critical: { type: 'cosign container image signature', image: { 'Docker-manifest-digest': digest } } })), /exactly once, in that spelling/],
    [
      'two spellings',
      Buffer.from(JSON.stringify({ critical: { type: 'cosign container image signature', image: { 'docker-manifest-digest': digest, 'Docker-Manifest-Digest': other } } })),
      /exactly once/,
    ],
    ['another digest', simpleSigningPayload(other), /signs sha256:b+, not sha256:a+/],
  ])('refuses %s', (_n, payload, re) => {
    expect(() => checkSimpleSigningPayload(payload, digest)).toThrow(re);
  });

  it('accepts the payload cosign writes', () => {
    expect(() => checkSimpleSigningPayload(simpleSigningPayload(digest), digest)).not.toThrow();
  });
});
