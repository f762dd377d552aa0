// Key IDs and key material (NOTARY.md §3–§5; checklist 18). IDs are checked against notary's own
// fixture and against the builder's independent computation.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { canonicalKeyId, keyFromCertChain, keyIdOf, makeKey as srcKey, nodeKeyOf } from '../../../../src/signatures/dct/verify/keys.js';
import { certChainToPem, parsePemCertificates } from '../../../../src/signatures/dct/verify/x509.js';
import { canonicalKeyIdOf, keyId, makeCa, makeCertKey, makeKey, type KeyKind, type TestKey } from '../../../support/notary-builder/index.js';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../../../fixtures/notary0.3-tst/${name}`, import.meta.url), 'utf8'));
type KeyJson = { keytype: string; keyval: { public: string } };

describe("the notary 0.3 fixture's key IDs (checklist 18)", () => {
  const root = fixture('root.json').signed as { keys: Record<string, KeyJson>; roles: Record<string, { keyids: string[] }> };
  const delegationKeys = fixture('targets.json').signed.delegations.keys as Record<string, KeyJson>;

  it('has the four root keys notary wrote, of the types NOTARY.md lists', () => {
    expect(Object.fromEntries(Object.entries(root.roles).map(([role, r]) => [role, root.keys[r.keyids[0]!]!.keytype]))).toEqual({
      root: 'ecdsa-x509',
      targets: 'ecdsa',
      snapshot: 'ecdsa',
      timestamp: 'ecdsa',
    });
  });

  it.each(Object.entries({ ...root.keys, ...delegationKeys }))('recomputes key ID %s', (id, k) => {
    expect(keyIdOf(k.keytype, k.keyval.public)).toBe(id);
    expect(keyId(k.keytype, k.keyval.public)).toBe(id); // the builder's encoder agrees
  });

  // theupdateframework/notary fixtures/compatibility/notary0.3/private/root_keys/<canonical ID>.key and
  // private/tuf_keys/<canonical ID>.key: notary names private keys by the bare public key's ID.
  it.each([
    ['root', '354e203ba09dbe17807b6a9d191bff887167c06d121e738d849446a9c76c2866', root.keys, 'f4eaf871a74aa3b3a0ff95cef2455a1e4d461639f5625418e76756fc5c948690'],
    ['targets/releases', '68243a1f948be7841403f65fc8f24d5eda9050c337e727e2eacc3d3cb5227d73', delegationKeys, 'fa842f66cac2dc898677a8660789dcff0e3b0b93b73f8952491f6493199936d3'],
  ])('the %s x509 key %s has canonical ID %s', (_role, id, keys, canonical) => {
    const k = keys[id]!;
    expect(canonicalKeyId(srcKey(k.keytype, k.keyval.public))).toBe(canonical);
    expect(canonicalKeyIdOf({ keytype: k.keytype, public: k.keyval.public, id })).toBe(canonical);
  });

  it('plain keys are their own canonical ID', () => {
    const [id, k] = Object.entries(root.keys).find(([, k]) => k.keytype === 'ecdsa')!;
    expect(canonicalKeyId(srcKey(k.keytype, k.keyval.public))).toBe(id);
  });

  it('rebuilds the root certificate key byte-identically (notary PEM form)', () => {
    const k = root.keys[root.roles.root!.keyids[0]!]!;
    const chain = parsePemCertificates(Buffer.from(k.keyval.public, 'base64').toString('utf8'))!;
    expect(chain).toHaveLength(1);
    expect(chain[0]!.cn).toBe('docker.com/notary0.3/tst');
    expect(keyFromCertChain(chain, certChainToPem(chain))?.id).toBe(root.roles.root!.keyids[0]);
  });
});

describe('builder keys as src sees them', () => {
  it.each<[KeyKind, string, string]>([
    ['ecdsa', 'ecdsa', 'ec'],
    ['ecdsa-p384', 'ecdsa', 'ec'],
    ['ed25519', 'ed25519', 'ed25519'],
    ['rsa', 'rsa', 'rsa'],
    ['rsa-pkcs1', 'rsa', 'rsa'],
  ])('%s: keytype %s, same ID, a node %s key', (kind, keytype, nodeType) => {
    const k = makeKey(kind, 'keys test');
    const pk = srcKey(k.keytype, k.public);
    expect(k.keytype).toBe(keytype);
    expect(pk.id).toBe(k.id);
    expect(nodeKeyOf(pk)?.asymmetricKeyType).toBe(nodeType);
  });

  it('ed25519 public is the raw 32-byte key', () => {
    expect(Buffer.from(makeKey('ed25519', 'keys test').public, 'base64')).toHaveLength(32);
  });

  it.each([
    ['ecdsa-x509', makeCertKey({ cn: 'example.com/app', label: 'keys test' })],
    ['rsa-x509', makeCertKey({ cn: 'example.com/app', label: 'keys test', algo: 'rsa' })],
  ])('%s: the ID covers the PEM text, the canonical ID the SPKI', (keytype, k) => {
    const pk = srcKey(k.keytype, k.public);
    expect(k.keytype).toBe(keytype);
    expect(pk.id).toBe(k.id);
    expect(canonicalKeyId(pk)).toBe(canonicalKeyIdOf(k));
    expect(canonicalKeyId(pk)).not.toBe(k.id);
    const spki = nodeKeyOf(pk)!.export({ format: 'der', type: 'spki' }).toString('base64');
    expect(canonicalKeyId(pk)).toBe(keyIdOf(keytype.replace('-x509', ''), spki));
  });

  it('the ID of a chain (leaf + intermediate) covers the whole chain', () => {
    const ca = makeCa('keys test CA');
    const inter = makeCertKey({ cn: 'keys test intermediate', isCA: true, issuer: ca });
    const leaf = makeCertKey({ cn: 'example.com/app', label: 'chained', issuer: inter });
    const chained = makeCertKey({ cn: 'example.com/app', label: 'chained', issuer: inter }, [inter]);
    expect(chained.id).not.toBe(leaf.id);
    const certs = parsePemCertificates(Buffer.from(chained.public, 'base64').toString('utf8'))!;
    expect(certs.map((c) => c.isCA)).toEqual([false, true]);
    expect(keyFromCertChain(certs, certChainToPem(certs))?.id).toBe(chained.id);
  });
});

describe('key material that can never verify decodes to null', () => {
  const ec = makeKey('ecdsa', 'keys test');
  const rsa = makeKey('rsa', 'keys test');
  const ed = makeKey('ed25519', 'keys test');
  const ecCert = makeCertKey({ cn: 'example.com/app', label: 'keys test' });
  const rsaCert = makeCertKey({ cn: 'example.com/app', label: 'keys test', algo: 'rsa' });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  it.each<[string, Pick<TestKey, 'keytype' | 'public'>]>([
    ['ecdsa keytype holding an RSA key', { keytype: 'ecdsa', public: rsa.public }],
    ['rsa keytype holding an EC key', { keytype: 'rsa', public: ec.public }],
    ['ed25519 key of 31 bytes', { keytype: 'ed25519', public: Buffer.from(ed.public, 'base64').subarray(1).toString('base64') }],
    ['ed25519 keytype holding an SPKI', { keytype: 'ed25519', public: ec.public }],
    ['ecdsa-x509 holding an RSA certificate', { keytype: 'ecdsa-x509', public: rsaCert.public }],
    ['rsa-x509 holding an EC certificate', { keytype: 'rsa-x509', public: ecCert.public }],
    ['ecdsa-x509 holding a bare SPKI', { keytype: 'ecdsa-x509', public: ec.public }],
    ['x509 with a PUBLIC KEY block', { keytype: 'ecdsa-x509', public: b64(`-----BEGIN PUBLIC KEY-----\n${ec.public}\n-----END PUBLIC KEY-----\n`) }],
    ['unknown keytype', { keytype: 'dsa', public: ec.public }],
    ['garbage DER', { keytype: 'ecdsa', public: b64('not a key') }],
  ])('%s', (_what, k) => {
    expect(nodeKeyOf(srcKey(k.keytype, k.public))).toBeNull();
  });
});
