// Keyless cosign signatures (Sigstore bundles) made with @sigstore/sign against local Fulcio and Rekor
// stand-ins, verified offline against a trusted_root.json the test writes: identity and issuer rules,
// transparency-log proof, CA, and what the statement signs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CosignIdentity } from '../../src/config/schema.js';
import { createPublicKey } from 'node:crypto';
import { parseTrustedRoot, verifyBundleSignature, verifyClassicSignature, type CosignTrust } from '../../src/signatures/cosign/verify-signature.js';
import { makeCosignKey, signPayload, simpleSigningPayload } from '../support/cosign-sign.js';
import { cosignSignStatement, logKeyedSignature, signKeyedBundle, signKeyless, startFulcio, startRekor, trustedRootJson, type FulcioStandIn, type RekorStandIn } from '../support/sigstore-lab.js';

const digest = `sha256:${'c'.repeat(64)}`;
const ISSUER = 'https://token.actions.githubusercontent.com';
const WORKFLOW = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main';
let fulcio: FulcioStandIn;
let rogue: FulcioStandIn;
let rekor: RekorStandIn;
let root: ReturnType<typeof parseTrustedRoot>;
let good: Buffer;

const trust = (...identities: CosignIdentity[]): CosignTrust => ({ keys: [], root, identities });
const sign = (o: { ca?: FulcioStandIn; tlog?: boolean; sub?: string; iss?: string; statement?: Buffer } = {}) =>
  signKeyless({ fulcio: o.ca ?? fulcio, rekor: o.tlog === false ? undefined : rekor, identity: { iss: o.iss ?? ISSUER, sub: o.sub ?? WORKFLOW }, statement: o.statement ?? cosignSignStatement(digest) });

beforeAll(async () => {
  [fulcio, rogue, rekor] = await Promise.all([startFulcio(), startFulcio(), startRekor()]);
  // Only the first CA is trusted; the rogue one is a CA of the same name with another key.
  root = parseTrustedRoot(trustedRootJson([fulcio], [rekor]));
  good = await sign();
});

afterAll(async () => {
  for (const s of [fulcio, rogue, rekor]) await new Promise((r) => s?.server.close(r));
});

describe('keyless Sigstore bundle', () => {
  it('verifies a valid identity and names the signer and issuer', () => {
    expect(verifyBundleSignature(good, digest, trust({ issuer: ISSUER, subject: WORKFLOW })).by).toBe(`${WORKFLOW} (issuer ${ISSUER})`);
  });

  it('matches a subject regular expression, and tries every identity rule', () => {
    const by = verifyBundleSignature(good, digest, trust({ issuer: ISSUER, subject: 'https://github.com/other/x' }, { issuer: ISSUER, subjectRegExp: '^https://github\\.com/acme/' })).by;
    expect(by).toContain(WORKFLOW);
  });

  it('refuses another subject', () => {
    expect(() => verifyBundleSignature(good, digest, trust({ issuer: ISSUER, subject: 'https://github.com/acme/app/.github/workflows/nightly.yml@refs/heads/main' }))).toThrow(/no identity rule matches.*certificate identity error/);
  });

  it('anchors an exact subject: a longer identity with the same prefix does not match', async () => {
    const longer = await sign({ sub: `${WORKFLOW}.evil` });
    expect(() => verifyBundleSignature(longer, digest, trust({ issuer: ISSUER, subject: WORKFLOW }))).toThrow(/no identity rule matches/);
  });

  it('refuses another issuer', () => {
    expect(() => verifyBundleSignature(good, digest, trust({ issuer: 'https://accounts.google.com', subject: WORKFLOW }))).toThrow(/no identity rule matches.*issuer/);
  });

  it('refuses a signature without transparency-log proof', async () => {
    const noTlog = await sign({ tlog: false });
    expect(() => verifyBundleSignature(noTlog, digest, trust({ issuer: ISSUER, subject: WORKFLOW }))).toThrow(/no transparency-log entry/);
  });

  it('refuses a signed entry timestamp that Rekor did not sign', () => {
    const doc = JSON.parse(good.toString());
    const entry = doc.verificationMaterial.tlogEntries[0];
    const set = Buffer.from(entry.inclusionPromise.signedEntryTimestamp, 'base64');
    set.writeUInt8(set.readUInt8(set.length - 1) ^ 1, set.length - 1);
    entry.inclusionPromise.signedEntryTimestamp = set.toString('base64');
    expect(() => verifyBundleSignature(Buffer.from(JSON.stringify(doc)), digest, trust({ issuer: ISSUER, subject: WORKFLOW }))).toThrow(/inclusion promise could not be verified/);
  });

  it('refuses a certificate from another CA', async () => {
    const other = await sign({ ca: rogue });
    expect(() => verifyBundleSignature(other, digest, trust({ issuer: ISSUER, subject: WORKFLOW }))).toThrow('Failed to verify certificate chain');
  });

  it('refuses a statement for another digest', () => {
    expect(() => verifyBundleSignature(good, `sha256:${'d'.repeat(64)}`, trust({ issuer: ISSUER, subject: WORKFLOW }))).toThrow(/subject is not sha256:d+/);
  });

  it('refuses an attestation that is not a cosign signature (another predicate)', async () => {
    const sbom = Buffer.from(JSON.stringify({ ...JSON.parse(cosignSignStatement(digest).toString()), predicateType: 'https://spdx.dev/Document' }));
    const b = await sign({ statement: sbom });
    expect(() => verifyBundleSignature(b, digest, trust({ issuer: ISSUER, subject: WORKFLOW }))).toThrow(/predicateType is "https:\/\/spdx.dev\/Document"/);
  });

  it('refuses a keyless bundle when no trusted root is configured', () => {
    expect(() => verifyBundleSignature(good, digest, { keys: [], identities: [{ issuer: ISSUER, subject: WORKFLOW }] })).toThrow(/no cosign trustedRoot is configured/);
  });
});

describe('keyed classic signature logged in Rekor (cosign sign --key, the default upload)', () => {
  const key = makeCosignKey();
  const payload = simpleSigningPayload(digest);
  const signature = signPayload(payload, key.privateKey);
  const keys = [{ name: 'release.pub', key: createPublicKey(key.publicPem) }];
  const forge = (annotation: string) => {
    const doc = JSON.parse(annotation);
    const set = Buffer.from(doc.SignedEntryTimestamp, 'base64');
    set.writeUInt8(set.readUInt8(set.length - 1) ^ 1, set.length - 1);
    return JSON.stringify({ ...doc, SignedEntryTimestamp: set.toString('base64') });
  };

  it('verifies with the key, its log entry checked against the trusted root', async () => {
    const rekorBundle = await logKeyedSignature(rekor, payload, signature, key.publicPem);
    expect(verifyClassicSignature({ payload, signature, rekorBundle }, digest, { keys, root, identities: [] }).by).toBe('key release.pub');
  });

  it('refuses a log entry Rekor did not sign when a trusted root is configured', async () => {
    const rekorBundle = forge(await logKeyedSignature(rekor, payload, signature, key.publicPem));
    expect(() => verifyClassicSignature({ payload, signature, rekorBundle }, digest, { keys, root, identities: [] })).toThrow(/inclusion promise could not be verified/);
  });

  it('keys only (no trusted root): the key is the anchor and log entries are not consulted', async () => {
    const rekorBundle = forge(await logKeyedSignature(rekor, payload, signature, key.publicPem));
    expect(verifyClassicSignature({ payload, signature, rekorBundle }, digest, { keys, identities: [] }).by).toBe('key release.pub');
  });
});

describe('cosign.tlog for keyed signatures', () => {
  const key = makeCosignKey();
  const payload = simpleSigningPayload(digest);
  const signature = signPayload(payload, key.privateKey);
  const keys = [{ name: 'release.pub', key: createPublicKey(key.publicPem) }];

  it('required (the default with a trusted root): refuses a keyed signature without a log entry', () => {
    expect(() => verifyClassicSignature({ payload, signature }, digest, { keys, root, identities: [] })).toThrow(/no transparency-log entry, and cosign tlog is required/);
    expect(() => verifyClassicSignature({ payload, signature }, digest, { keys, root, identities: [], tlog: 'required' })).toThrow(/no transparency-log entry/);
  });

  it('required: accepts one whose Rekor entry verifies against the trusted root', async () => {
    const rekorBundle = await logKeyedSignature(rekor, payload, signature, key.publicPem);
    expect(verifyClassicSignature({ payload, signature, rekorBundle }, digest, { keys, root, identities: [], tlog: 'required' }).by).toBe('key release.pub');
  });

  it("required: refuses a Rekor entry of another signature (the log must record this one)", async () => {
    const otherPayload = simpleSigningPayload(`sha256:${'e'.repeat(64)}`);
    const rekorBundle = await logKeyedSignature(rekor, otherPayload, signPayload(otherPayload, key.privateKey), key.publicPem);
    expect(() => verifyClassicSignature({ payload, signature, rekorBundle }, digest, { keys, root, identities: [], tlog: 'required' })).toThrow(/key release\.pub: .*(signature|digest) mismatch/);
  });

  it('required: refuses a keyed bundle without a log entry', async () => {
    const b = await signKeyedBundle(key.privateKey, key.publicPem, cosignSignStatement(digest));
    expect(() => verifyBundleSignature(b, digest, { keys, root, identities: [], tlog: 'required' })).toThrow(/no transparency-log entry/);
  });

  it('required without a trusted root cannot be satisfied', () => {
    expect(() => verifyClassicSignature({ payload, signature }, digest, { keys, identities: [], tlog: 'required' })).toThrow(/no trustedRoot holds the Rekor keys/);
  });

  it('optional: accepts the key alone, with or without a trusted root', async () => {
    expect(verifyClassicSignature({ payload, signature }, digest, { keys, root, identities: [], tlog: 'optional' }).by).toBe('key release.pub');
    expect(verifyClassicSignature({ payload, signature }, digest, { keys, identities: [] }).by).toBe('key release.pub');
    const b = await signKeyedBundle(key.privateKey, key.publicPem, cosignSignStatement(digest));
    expect(verifyBundleSignature(b, digest, { keys, root, identities: [], tlog: 'optional' }).by).toBe('key release.pub');
  });
});

describe('keyed Sigstore bundle (cosign sign --key --new-bundle-format)', () => {
  const key = makeCosignKey();
  const other = makeCosignKey();

  it('verifies with the configured key, whatever key hint the bundle claims', async () => {
    const b = await signKeyedBundle(key.privateKey, key.publicPem, cosignSignStatement(digest));
    expect(verifyBundleSignature(b, digest, { keys: [{ name: 'other.pub', key: createPublicKey(other.publicPem) }, { name: 'release.pub', key: createPublicKey(key.publicPem) }], identities: [] }).by).toBe('key release.pub');
  });

  it('refuses it under another key', async () => {
    const b = await signKeyedBundle(key.privateKey, key.publicPem, cosignSignStatement(digest));
    expect(() => verifyBundleSignature(b, digest, { keys: [{ name: 'other.pub', key: createPublicKey(other.publicPem) }], identities: [] })).toThrow(/key other.pub: signature verification failed/);
  });

  it('refuses a keyed statement for another digest', async () => {
    const b = await signKeyedBundle(key.privateKey, key.publicPem, cosignSignStatement(`sha256:${'d'.repeat(64)}`));
    expect(() => verifyBundleSignature(b, digest, { keys: [{ name: 'release.pub', key: createPublicKey(key.publicPem) }], identities: [] })).toThrow(/subject is not/);
  });
});
