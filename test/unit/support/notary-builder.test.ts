// The test repository builder checked on its own, without src: its canonical encoder, its wire forms,
// its signatures (verified here with node:crypto directly), hash links, certificates and helpers.
// A builder bug would otherwise make every trust test meaningless.
import { constants, createHash, createPublicKey, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildRepo,
  canonicalJson,
  DEFAULT_NOW,
  fileMeta,
  keyId,
  makeCa,
  makeCertKey,
  makeKey,
  MemoryFetcher,
  pemOf,
  readFiles,
  repoFetcher,
  wireJson,
  type EnvelopeJson,
  type Json,
  type Repo,
} from '../../support/notary-builder/index.js';

const GUN = 'example.com/team/app';

/** Verify one signature with node:crypto only (NOTARY.md §5), independent of src. */
function nodeVerify(key: { keytype: string; keyval: { public: string } }, method: string, msg: Buffer, sig: Buffer): boolean {
  const raw = Buffer.from(key.keyval.public, 'base64');
  let k: KeyObject;
  if (key.keytype.endsWith('-x509')) k = new X509Certificate(raw.toString('utf8')).publicKey;
  else if (key.keytype === 'ed25519') k = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  else k = createPublicKey({ key: raw, format: 'der', type: 'spki' });
  if (method === 'eddsa') return verify(null, msg, k, sig);
  if (method === 'ecdsa') return verify('sha256', msg, { key: k, dsaEncoding: 'ieee-p1363' }, sig);
  if (method === 'rsapss') return verify('sha256', msg, { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig);
  return verify('sha256', msg, { key: k, padding: constants.RSA_PKCS1_PADDING }, sig);
}
type KeysJson = Record<string, { keytype: string; keyval: { public: string } }>;
function verifiedKeyIds(repo: Repo, file: string, keys: KeysJson): string[] {
  const env = repo.envelope(file);
  const msg = canonicalJson(env.signed);
  return env.signatures.filter((s) => keys[s.keyid] && nodeVerify(keys[s.keyid]!, s.method, msg, Buffer.from(s.sig, 'base64'))).map((s) => s.keyid);
}

describe('canonicalJson', () => {
  it.each<[Json, string]>([
    [{ b: 1, a: [true, null, 'x'] }, '{"a":[true,null,"x"],"b":1}'],
    [{ s: 'q" b\\ <>&\u0001\n é😀' }, '{"s":"q\\" b\\\\ <>&\u0001\n é😀"}'],
    [{ '😀': 1, '\ue000': 2 }, '{"\ue000":2,"😀":1}'],
    [{ n: -0, m: 100 }, '{"m":100,"n":0}'],
    [{ a: undefined as unknown as Json, b: 1 }, '{"b":1}'],
  ])('%j', (value, want) => {
    expect(canonicalJson(value)).toEqual(Buffer.from(want, 'utf8'));
  });

  it('computes the notary fixture’s key IDs', () => {
    const root = JSON.parse(readFileSync(new URL('../../fixtures/notary0.3-tst/root.json', import.meta.url), 'utf8'));
    for (const [id, k] of Object.entries<{ keytype: string; keyval: { public: string } }>(root.signed.keys)) expect(keyId(k.keytype, k.keyval.public)).toBe(id);
  });
});

describe('wireJson', () => {
  const value = { signed: { b: [1, { y: 'é<&>\u2028', x: 2 }], a: '😀"\\\u0001' }, signatures: [] } as unknown as Json;
  it.each([
    [{}, (t: string) => t.startsWith('{"signed":{"a":') && t.includes('\\u003c\\u0026\\u003e\\u2028') && !t.includes('\n')],
    [{ indent: 2 }, (t: string) => t.includes('\n    "a": ')],
    [{ keyOrder: 'reverse' as const }, (t: string) => t.startsWith('{"signatures":[],"signed":{"b":')],
    [{ keyOrder: 'insertion' as const }, (t: string) => t.startsWith('{"signed":{"b":[1,{"y":')],
    [{ htmlEscape: false }, (t: string) => t.includes('é<&>\u2028')],
    [{ asciiOnly: true }, (t: string) => /^[\x00-\x7f]*$/.test(t) && t.includes('\\ud83d\\ude00')],
    [{ floatIntegers: true }, (t: string) => t.includes('[1.0,') && t.includes('"x":2.0')],
    [{ trailingNewline: true }, (t: string) => t.endsWith('}\n')],
  ])('%j writes what it says and parses back to the same value', (opts, check) => {
    const text = wireJson(value, opts).toString('utf8');
    expect(check(text)).toBe(true);
    expect(JSON.parse(text)).toEqual(value);
  });
});

describe('buildRepo', () => {
  const repo = buildRepo({
    gun: GUN,
    tags: { v1: 'manifest' },
    targets: { keys: [makeKey('ed25519', 'b t1'), makeKey('rsa', 'b t2')], threshold: 2 },
    delegations: [
      { name: 'targets/releases', keys: [makeKey('rsa-pkcs1', 'b rel')], tags: { r: 'r' }, paths: ['r'] },
      { name: 'targets/releases/ci', tags: {} },
    ],
  });
  const root = repo.signed('root');
  const rootKeys = root.keys as KeysJson;

  it('serves the files notary-server would', () => {
    expect([...repo.files.keys()].sort()).toEqual(['1.root.json', 'root.json', 'snapshot.json', 'targets.json', 'targets/releases.json', 'targets/releases/ci.json', 'timestamp.json']);
    expect(repo.file('1.root.json')).toEqual(repo.file('root'));
  });

  it('writes root as notary does', () => {
    expect(root).toMatchObject({ _type: 'Root', version: 1, consistent_snapshot: false, expires: '2031-01-01T00:00:00Z' });
    const roles = root.roles as Record<string, { keyids: string[]; threshold: number }>;
    expect(Object.keys(roles).sort()).toEqual(['root', 'snapshot', 'targets', 'timestamp']);
    expect(roles.targets).toEqual({ keyids: repo.keys.get('targets')!.map((k) => k.id), threshold: 2 });
    expect(rootKeys[roles.root!.keyids[0]!]!.keytype).toBe('ecdsa-x509');
    for (const [id, k] of Object.entries(rootKeys)) expect(keyId(k.keytype, k.keyval.public)).toBe(id);
    expect(repo.file('root').toString().startsWith('{"signed":{"_type":"Root","consistent_snapshot":false,')).toBe(true);
  });

  it('signs every file over the canonical form with the right keys (checked with node:crypto)', () => {
    const roles = root.roles as Record<string, { keyids: string[] }>;
    for (const role of ['root', 'targets', 'snapshot', 'timestamp']) expect(verifiedKeyIds(repo, role, rootKeys).sort()).toEqual([...roles[role]!.keyids].sort());
    const dkeys = (repo.signed('targets').delegations as { keys: KeysJson }).keys;
    expect(verifiedKeyIds(repo, 'targets/releases', dkeys)).toEqual(repo.keys.get('targets/releases')!.map((k) => k.id));
    expect(repo.envelope('targets/releases').signatures[0]!.method).toBe('rsapkcs1v15');
  });

  it('declares delegations in their parent, with keys, threshold and paths', () => {
    const d = repo.signed('targets/releases').delegations as { roles: Array<Record<string, Json>>; keys: KeysJson };
    expect(d.roles).toEqual([{ name: 'targets/releases/ci', keyids: repo.keys.get('targets/releases/ci')!.map((k) => k.id), threshold: 1, paths: [''] }]);
    expect((repo.signed('targets').delegations as { roles: Array<Record<string, Json>> }).roles[0]).toMatchObject({ name: 'targets/releases', paths: ['r'] });
  });

  it('hashes targets content and links every file from snapshot and timestamp over exact bytes', () => {
    expect((repo.signed('targets').targets as Record<string, Json>).v1).toEqual({ hashes: { sha256: createHash('sha256').update('manifest').digest('base64') }, length: 8 });
    const snap = repo.signed('snapshot').meta as Record<string, Json>;
    expect(Object.keys(snap).sort()).toEqual(['root', 'targets', 'targets/releases', 'targets/releases/ci']);
    for (const role of Object.keys(snap)) expect(snap[role]).toEqual(fileMeta(repo.file(role)));
    expect(repo.signed('timestamp').meta).toEqual({ snapshot: fileMeta(repo.file('snapshot')) });
  });

  it('uses DEFAULT_NOW + a year unless told otherwise', () => {
    expect(repo.now).toEqual(DEFAULT_NOW);
    expect(buildRepo({ gun: GUN, now: new Date('2040-05-06T07:08:09.123Z') }).signed('timestamp').expires).toBe('2041-05-06T07:08:09.123Z');
  });
});

describe('Repo editing helpers', () => {
  const fresh = () => buildRepo({ gun: GUN, tags: { v1: 'm' } });
  const keysOf = (r: Repo) => r.signed('root').keys as KeysJson;

  it('resign keeps signatures valid; tamper breaks them; relink fixes the hashes', () => {
    const r = fresh();
    r.resign('targets', (s) => void (s.version = 2));
    expect(verifiedKeyIds(r, 'targets', keysOf(r))).toHaveLength(1);
    expect((r.signed('snapshot').meta as Record<string, Json>).targets).not.toEqual(fileMeta(r.file('targets')));
    r.relink();
    expect((r.signed('snapshot').meta as Record<string, Json>).targets).toEqual(fileMeta(r.file('targets')));
    expect(r.signed('timestamp').meta).toEqual({ snapshot: fileMeta(r.file('snapshot')) });
    r.tamper('targets', (s) => void (s.version = 3));
    expect(verifiedKeyIds(r, 'targets', keysOf(r))).toEqual([]);
  });

  it('relink({ bump }) raises snapshot and timestamp versions; timestampOnly leaves the snapshot alone', () => {
    const r = fresh();
    const snap = r.file('snapshot');
    r.relink({ bump: true, timestampOnly: true });
    expect(r.file('snapshot')).toEqual(snap);
    expect([r.version('snapshot'), r.version('timestamp')]).toEqual([1, 2]);
    r.relink({ bump: true });
    expect([r.version('snapshot'), r.version('timestamp')]).toEqual([2, 3]);
  });

  it('reserialize changes the bytes, not the value or the signatures', () => {
    const r = fresh();
    const before = r.envelope('targets');
    r.reserialize('targets', { indent: 3 });
    expect(r.file('targets').toString()).toContain('\n   "signed"');
    expect(r.envelope('targets')).toEqual(before);
  });

  it('rotateRoot publishes N+1 signed by old and new keys, keeps N.root.json, relinks', () => {
    const r = fresh();
    const old = r.keys.get('root')![0]!;
    const next = makeCertKey({ cn: GUN, label: 'builder rotation' });
    r.rotateRoot([next]);
    expect(r.version('root')).toBe(2);
    expect(r.file('2.root.json')).toEqual(r.file('root'));
    expect(JSON.parse(r.file('1.root.json').toString()).signed.version).toBe(1);
    expect(verifiedKeyIds(r, 'root', { ...keysOf(r), [old.id]: { keytype: old.keytype, keyval: { public: old.public } } }).sort()).toEqual([old.id, next.id].sort());
    expect(Object.keys(keysOf(r))).not.toContain(old.id);
    expect((r.signed('root').roles as Record<string, { keyids: string[] }>).root!.keyids).toEqual([next.id]);
    expect((r.signed('snapshot').meta as Record<string, Json>).root).toEqual(fileMeta(r.file('root')));
    expect([r.version('snapshot'), r.version('timestamp')]).toEqual([2, 2]);
    r.rotateRoot([makeCertKey({ cn: GUN, label: 'builder rotation 3' })], { signWithOld: false });
    expect(verifiedKeyIds(r, 'root', { [next.id]: { keytype: next.keytype, keyval: { public: next.public } } })).toEqual([]);
  });

  it('signers can change keyid, method and encoding', () => {
    const k = makeKey('ecdsa', 'builder signer');
    const r = buildRepo({ gun: GUN, timestamp: { keys: [k], signers: [{ key: k, method: 'ECDSA' }, { key: k, keyid: 'ab'.repeat(32) }, { key: k, ecdsaEncoding: 'der' }] } });
    const sigs = r.envelope('timestamp').signatures;
    expect(sigs.map((s) => s.method)).toEqual(['ECDSA', 'ecdsa', 'ecdsa']);
    expect(sigs[1]!.keyid).toBe('ab'.repeat(32));
    expect(Buffer.from(sigs[0]!.sig, 'base64')).toHaveLength(64);
    expect(Buffer.from(sigs[2]!.sig, 'base64')[0]).toBe(0x30); // ASN.1 SEQUENCE
  });

  it('copy is independent', () => {
    const r = fresh();
    const c = r.copy();
    r.bump('targets');
    expect(c.version('targets')).toBe(1);
  });

  it('writeTo lays files out as the server does; readFiles reads them back', async () => {
    const r = fresh();
    const dir = mkdtempSync(join(tmpdir(), 'notary-builder-out-'));
    await r.writeTo(dir);
    expect(await readFiles(dir)).toEqual(r.files);
  });
});

describe('certificates', () => {
  const ca = makeCa('builder CA');
  const inter = makeCertKey({ cn: 'builder intermediate', isCA: true, issuer: ca });
  it('PEM exactly as notary writes it: 64-character lines, \\n ends, leaf first', () => {
    const k = makeCertKey({ cn: GUN, label: 'builder pem', issuer: inter }, [inter]);
    const text = Buffer.from(k.public, 'base64').toString('utf8');
    expect(text).toMatch(/^(-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n){2}$/);
    expect(text).toBe(pemOf([k.certDer, inter.certDer]));
    expect(new X509Certificate(k.certDer).checkIssued(new X509Certificate(inter.certDer))).toBe(true);
    expect(new X509Certificate(inter.certDer).verify(new X509Certificate(ca.certDer).publicKey)).toBe(true);
  });

  it('honours CN, dates, CA flag, hash and key size', () => {
    const nb = new Date('2031-02-03T04:05:06Z');
    const na = new Date('2032-02-03T04:05:06Z');
    const c = new X509Certificate(makeCertKey({ cn: 'docker.com/notary0.3/*', notBefore: nb, notAfter: na }).certDer);
    expect(c.subject).toBe('CN=docker.com/notary0.3/*');
    expect([new Date(c.validFrom), new Date(c.validTo)]).toEqual([nb, na]);
    expect(c.ca).toBe(false);
    expect(new X509Certificate(ca.certDer).ca).toBe(true);
    // sha1WithRSAEncryption = 1.2.840.113549.1.1.5: its DER encoding appears in the certificate.
    const sha1Rsa = Buffer.from('06092a864886f70d010105', 'hex');
    expect(makeCertKey({ cn: GUN, algo: 'rsa-1024', sha1: true }).certDer.includes(sha1Rsa)).toBe(true);
    expect(makeCertKey({ cn: GUN, algo: 'rsa-1024' }).certDer.includes(sha1Rsa)).toBe(false);
    expect(new X509Certificate(makeCertKey({ cn: GUN, algo: 'rsa-1024' }).certDer).publicKey.asymmetricKeyDetails?.modulusLength).toBe(1024);
  });

  it('caches identical requests within a file', () => {
    expect(makeCertKey({ cn: GUN, label: 'builder cache' })).toBe(makeCertKey({ cn: GUN, label: 'builder cache' }));
    expect(makeKey('ecdsa', 'builder cache')).toBe(makeKey('ecdsa', 'builder cache'));
    expect(makeKey('ecdsa')).not.toBe(makeKey('ecdsa'));
  });
});

describe('MemoryFetcher', () => {
  it('maps requests to files, logs them, enforces maxBytes and lets a test intercept', async () => {
    const r = buildRepo({ gun: GUN });
    const f = repoFetcher(r);
    expect(await f.fetch({ gun: GUN, role: 'root', version: 1, maxBytes: 1 << 20 })).toEqual(r.file('1.root.json'));
    expect(await f.fetch({ gun: GUN, role: 'snapshot', sha256: 'ab'.repeat(32), maxBytes: 1 << 20 })).toEqual(r.file('snapshot'));
    expect(await f.fetch({ gun: GUN, role: 'targets/none', maxBytes: 1 << 20 })).toBeNull();
    await expect(f.fetch({ gun: GUN, role: 'timestamp', maxBytes: 10 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    f.intercept = () => null;
    expect(await f.fetch({ gun: GUN, role: 'timestamp', maxBytes: 1 << 20 })).toBeNull();
    expect(f.log).toEqual(['1.root.json', `snapshot.${'ab'.repeat(32)}.json`, 'targets/none.json', 'timestamp.json', 'timestamp.json']);
    expect(new MemoryFetcher(new Map(), { enforceMaxBytes: false }).source).toBe('memory-notary');
  });
});

// Keep the envelope type honest: what the builder writes is what EnvelopeJson says.
it('envelopes are {signed, signatures[{keyid, method, sig}]}', () => {
  const env: EnvelopeJson = buildRepo({ gun: GUN }).envelope('timestamp');
  expect(Object.keys(env)).toEqual(['signed', 'signatures']);
  expect(Object.keys(env.signatures[0]!).sort()).toEqual(['keyid', 'method', 'sig']);
});
