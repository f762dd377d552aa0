// Root validation as notary's trustpinning/certs.go ValidateRoot (NOTARY.md §6; checklist 19–25):
// leaf certificate rules, PEM re-encoding, thresholds, rotation and trust pinning. Pure: `now` is passed.
import { describe, expect, it } from 'vitest';
import { parseEnvelope } from '../../../../src/signatures/dct/model/metadata.js';
import { cnMatchesGun, validateRoot, type TrustedRoot, type TrustPinning } from '../../../../src/signatures/dct/verify/root.js';
import { buildRepo, canonicalKeyIdOf, makeCa, makeCertKey, makeKey, withPem, type BuildOptions, type CertKey, type TestKey } from '../../../support/notary-builder/index.js';

const GUN = 'example.com/team/app';
const NOW = new Date('2030-01-01T00:00:00Z');
const H = 3600 * 1000;
const at = (ms: number) => new Date(NOW.getTime() + ms);

const rootKey = makeCertKey({ cn: GUN, label: 'root' });
const rootEnv = (o: Partial<BuildOptions> = {}) => parseEnvelope(buildRepo({ gun: GUN, now: NOW, ...o }).file('root'), 'root');
const validate = (o: Partial<BuildOptions>, extra: { pinning?: TrustPinning; now?: Date; checkExpiry?: boolean; prev?: TrustedRoot } = {}) =>
  validateRoot({ gun: GUN, env: rootEnv({ rootKeys: [rootKey], ...o }), now: extra.now ?? NOW, checkExpiry: extra.checkExpiry ?? true, pinning: extra.pinning, prev: extra.prev });

/** Expect success (undefined) or a refusal with this code. */
function expectOutcome(run: () => unknown, code: string | undefined): void {
  if (code) expect(run).toThrow(expect.objectContaining({ code }));
  else expect(run()).toMatchObject({ root: { type: 'Root' } });
}

describe('CN must match the GUN (checklist 19)', () => {
  it.each<[string, string, boolean]>([
    ['example.com/team/app', GUN, true],
    ['example.com/team/*', GUN, true],
    ['example.com/*', GUN, true],
    ['example.com/team/app*', GUN, true],
    ['example.com/team/**', GUN, true],
    ['docker.com/notary0.3/*', 'docker.com/notary0.3/tst', true],
    ['*', GUN, true], // notary's MatchCNToGun: an empty prefix matches everything
    ['example.com/team/ap', GUN, false],
    ['example.com/team/app/', GUN, false],
    ['EXAMPLE.COM/team/app', GUN, false],
    ['example.com/team/other', GUN, false],
    ['example.com/*/app', GUN, false],
  ])('CN %s for GUN %s → %s', (cn, gun, ok) => {
    expect(cnMatchesGun(cn, gun)).toBe(ok);
  });

  it('✗ a root whose only leaf has another CN → ROOT_CN_MISMATCH', () => {
    expectOutcome(() => validate({ rootKeys: [makeCertKey({ cn: 'example.com/team/other' })] }), 'ROOT_CN_MISMATCH');
  });
  it('✓ a wildcard CN', () => {
    expectOutcome(() => validate({ rootKeys: [makeCertKey({ cn: 'example.com/team/*' })] }), undefined);
  });
  it('✓ one matching leaf is enough when the threshold is 1', () => {
    const other = makeCertKey({ cn: 'example.com/team/other' });
    expectOutcome(() => validate({ rootKeys: [other, rootKey], root: { signers: [rootKey] } }), undefined);
  });
});

describe('leaf certificate validity (checklist 20, 21)', () => {
  type Row = [string, () => TestKey, string | undefined, Date?];
  it.each<Row>([
    ['✓ NotBefore = now + 12 h (a day of skew allowed)', () => makeCertKey({ cn: GUN, notBefore: at(12 * H) }), undefined],
    ['✓ NotBefore = now + 23 h', () => makeCertKey({ cn: GUN, notBefore: at(23 * H) }), undefined],
    ['✗ NotBefore = now + 2 d', () => makeCertKey({ cn: GUN, notBefore: at(48 * H) }), 'ROOT_CERT_INVALID'],
    ['✗ NotAfter < now on first contact', () => makeCertKey({ cn: GUN, notBefore: at(-48 * H), notAfter: at(-H) }), 'EXPIRED'],
    ['✓ NotAfter = now (expired only after it)', () => makeCertKey({ cn: GUN, notBefore: at(-48 * H), notAfter: NOW }), undefined],
    ['✗ NotBefore after NotAfter', () => makeCertKey({ cn: GUN, notBefore: at(H), notAfter: at(-H) }), 'ROOT_CERT_INVALID'],
    ['✗ a plain ecdsa root key (no certificate)', () => makeKey('ecdsa', 'plain root'), 'ROOT_CERT_INVALID'],
    ['✗ a plain rsa root key', () => makeKey('rsa', 'plain root'), 'ROOT_CERT_INVALID'],
    ['✗ a CA certificate as the leaf', () => makeCertKey({ cn: GUN, isCA: true }), 'ROOT_CERT_INVALID'],
    ['✗ a SHA-1-signed RSA leaf', () => makeCertKey({ cn: GUN, algo: 'rsa', sha1: true }), 'ROOT_CERT_INVALID'],
    ['✗ a SHA-1-signed ECDSA leaf', () => makeCertKey({ cn: GUN, sha1: true }), 'ROOT_CERT_INVALID'],
    ['✗ an RSA-1024 leaf', () => makeCertKey({ cn: GUN, algo: 'rsa-1024' }), 'ROOT_CERT_INVALID'],
    ['✓ an RSA-2048 leaf (rsa-x509, rsapss)', () => makeCertKey({ cn: GUN, algo: 'rsa' }), undefined],
  ])('%s', (_what, key, code) => {
    expectOutcome(() => validate({ rootKeys: [key()] }), code);
  });

  it('✓ an expired leaf is accepted when expiry is not checked (a root already trusted)', () => {
    const k = makeCertKey({ cn: GUN, notBefore: at(-48 * H), notAfter: at(-H) });
    expectOutcome(() => validate({ rootKeys: [k] }, { checkExpiry: false }), undefined);
  });
});

describe('certificate chains in a root key (checklist 21, 22)', () => {
  const ca = makeCa('chain CA');
  const inter = makeCertKey({ cn: 'chain intermediate', isCA: true, issuer: ca });
  const oldInter = makeCertKey({ cn: 'chain intermediate', label: 'expired', isCA: true, issuer: ca, notAfter: at(-H) });
  const leaf = (o: { issuer?: CertKey; label?: string } = {}) => makeCertKey({ cn: GUN, label: o.label ?? 'chain leaf', issuer: o.issuer ?? inter });
  const second = makeCertKey({ cn: GUN, label: 'second leaf' });
  type Row = [string, () => TestKey, string | undefined];
  it.each<Row>([
    ['✓ leaf + intermediate', () => makeCertKey({ cn: GUN, label: 'chain leaf', issuer: inter }, [inter]), undefined],
    ['✗ CA certificate first, leaf second', () => makeCertKey({ cn: 'chain intermediate', isCA: true, issuer: ca }, [leaf()]), 'ROOT_CERT_INVALID'],
    ['✗ two leaves in one chain', () => makeCertKey({ cn: GUN, label: 'chain leaf', issuer: inter }, [second]), 'ROOT_CERT_INVALID'],
    // validRootIntCerts drops the expired intermediate; the rebuilt key's ID changes, so the signature no longer counts.
    ['✗ leaf + expired intermediate', () => makeCertKey({ cn: GUN, label: 'leaf of old', issuer: oldInter }, [oldInter]), 'SIGNATURE_INVALID'],
    ['✗ PEM with CRLF line ends', () => withPem(rootKey, (t) => t.replace(/\n/g, '\r\n')), 'SIGNATURE_INVALID'],
    ['✗ PEM with headers', () => withPem(rootKey, (t) => t.replace('-----\n', '-----\nProc-Type: 4,ENCRYPTED\n\n')), 'SIGNATURE_INVALID'],
    ['✗ PEM with text before the block', () => withPem(rootKey, (t) => 'subject=CN = example\n' + t), 'SIGNATURE_INVALID'],
    ['✗ PEM with 76-character lines', () => withPem(rootKey, (t) => t.replace(/\n(?!-)/g, '').replace(/(-----BEGIN CERTIFICATE-----)(.*)(-----END)/s, (_m, a, b: string, c) => `${a}\n${b.match(/.{1,76}/g)!.join('\n')}\n${c}`)), 'SIGNATURE_INVALID'],
    ['✗ a PUBLIC KEY block after the certificate', () => withPem(rootKey, (t) => t + `-----BEGIN PUBLIC KEY-----\n${makeKey('ecdsa', 'pem').public}\n-----END PUBLIC KEY-----\n`), 'ROOT_CERT_INVALID'],
  ])('%s', (_what, key, code) => {
    expectOutcome(() => validate({ rootKeys: [key()] }), code);
  });

  it('the PEM rewrites really change the key ID (they are not no-ops)', () => {
    expect(withPem(rootKey, (t) => t.replace(/\n/g, '\r\n')).id).not.toBe(rootKey.id);
  });
});

describe('root threshold and expiry', () => {
  const second = makeCertKey({ cn: GUN, label: 'second' });
  it.each<[string, Partial<BuildOptions>, string | undefined]>([
    ['✓ threshold 2 met by two root keys', { rootKeys: [rootKey, second], threshold: 2 }, undefined],
    ['✗ threshold 2, one root key signed', { rootKeys: [rootKey, second], threshold: 2, root: { signers: [rootKey] } }, 'THRESHOLD_NOT_MET'],
    ['✗ threshold 2, one root key signed twice', { rootKeys: [rootKey, second], threshold: 2, root: { signers: [rootKey, rootKey] } }, 'THRESHOLD_NOT_MET'],
    ['✗ signed by the targets key only', { root: { signers: [makeKey('ecdsa', 'default targets')] } }, 'SIGNATURE_INVALID'],
    ['✗ no signatures', { root: { signers: [] } }, 'SIGNATURE_INVALID'],
    ['✗ root role expired', { root: { expires: at(-1000) } }, 'EXPIRED'],
    ['✓ root role expires exactly now', { root: { expires: NOW } }, undefined],
    ['✗ a keyid relabelled onto the root key', { root: { signers: [{ key: makeKey('ecdsa', 'relabel'), keyid: rootKey.id }] } }, 'SIGNATURE_INVALID'],
  ])('%s', (_what, o, code) => {
    expectOutcome(() => validate(o), code);
  });

  it('✓ an expired root role is accepted when expiry is not checked (intermediate roots)', () => {
    expectOutcome(() => validate({ root: { expires: at(-1000) } }, { checkExpiry: false }), undefined);
  });
});

describe('rotation: the new root must satisfy the old root (checklist 23)', () => {
  const T1 = new Date('2028-06-01T00:00:00Z');
  const oldKey = makeCertKey({ cn: GUN, label: 'rotation old', notAfter: new Date('2029-01-01T00:00:00Z') });
  const newKey = makeCertKey({ cn: GUN, label: 'rotation new' });
  const stranger = makeCertKey({ cn: GUN, label: 'rotation stranger' });
  const oldKey2 = makeCertKey({ cn: GUN, label: 'rotation old 2' });
  const expires = '2031-01-01T00:00:00Z';

  function rotate(old: TestKey[], opts: Parameters<ReturnType<typeof buildRepo>['rotateRoot']>[1], threshold = 1) {
    const repo = buildRepo({ gun: GUN, now: T1, rootKeys: old, threshold });
    const prev = validateRoot({ gun: GUN, env: parseEnvelope(repo.file('root'), 'root'), now: T1, checkExpiry: true });
    repo.rotateRoot([newKey], { expires, threshold: 1, ...opts });
    return { prev, env: parseEnvelope(repo.file('root'), 'root') };
  }

  it.each<[string, TestKey[], Parameters<ReturnType<typeof buildRepo>['rotateRoot']>[1], number, string | undefined]>([
    ['✓ signed by the old and the new key', [oldKey], {}, 1, undefined],
    ['✗ signed only by the new key', [oldKey], { signWithOld: false }, 1, 'ROOT_ROTATION_FAILED'],
    ['✗ signed only by the old key (new root misses its own threshold)', [oldKey], { signWithNew: false }, 1, 'SIGNATURE_INVALID'],
    ['✗ signed by a stranger and the new key', [oldKey], { signWithOld: false, extraSigners: [stranger] }, 1, 'ROOT_ROTATION_FAILED'],
    ['✓ old threshold 2, both old keys signed', [oldKey, oldKey2], {}, 2, undefined],
    ['✗ old threshold 2, one old key signed', [oldKey, oldKey2], { signWithOld: false, extraSigners: [oldKey] }, 2, 'ROOT_ROTATION_FAILED'],
  ])('%s', (_what, old, opts, threshold, code) => {
    const { prev, env } = rotate(old, opts, threshold);
    expectOutcome(() => validateRoot({ gun: GUN, env, prev, now: NOW, checkExpiry: true }), code);
  });

  it("✓ the old root's certificates count although they expired (notary skips their expiry)", () => {
    const { prev, env } = rotate([oldKey], {});
    expect(NOW > new Date('2029-01-01T00:00:00Z')).toBe(true); // oldKey's NotAfter has passed
    expectOutcome(() => validateRoot({ gun: GUN, env, prev, now: NOW, checkExpiry: true }), undefined);
  });

  it('✓ disable_tofu does not apply when a previous root is trusted', () => {
    const { prev, env } = rotate([oldKey], {});
    expectOutcome(() => validateRoot({ gun: GUN, env, prev, now: NOW, checkExpiry: true, pinning: { disableTofu: true } }), undefined);
  });

  // notary trustpinning/certs.go ValidateRoot: the previous root is checked with
  // CertsToKeys(trustedLeafCerts, allTrustedIntCerts) — *all* its intermediates, expired or not
  // (NOTARY.md §6 step 2: "expiry not checked for old certs, all old intermediates kept"). src filters
  // the previous root's intermediates by expiry, so the old key's rebuilt ID changes and rotation fails.
  it("✓ the old root's key keeps its intermediate even after the intermediate expired [src bug: root.ts usableRootCerts]", () => {
    const ca = makeCa('rotation CA');
    const inter = makeCertKey({ cn: 'rotation intermediate', isCA: true, issuer: ca, notAfter: new Date('2029-01-01T00:00:00Z') });
    const chained = makeCertKey({ cn: GUN, label: 'rotation chained', issuer: inter }, [inter]);
    const { prev, env } = rotate([chained], {});
    expectOutcome(() => validateRoot({ gun: GUN, env, prev, now: NOW, checkExpiry: true }), undefined);
  });
});

describe('trust pinning on first contact (checklist 25)', () => {
  const pinCa = makeCa('pin CA');
  const pinCaPem = pinCa.certPem;
  const issued = makeCertKey({ cn: GUN, label: 'pin issued', issuer: pinCa });
  const pinInter = makeCertKey({ cn: 'pin intermediate', isCA: true, issuer: pinCa });
  const viaInter = makeCertKey({ cn: GUN, label: 'pin via intermediate', issuer: pinInter }, [pinInter]);
  const viaInterNoChain = makeCertKey({ cn: GUN, label: 'pin via intermediate', issuer: pinInter });
  const otherCa = makeCa('other CA');
  const expiredCa = makeCa('expired CA', { notAfter: at(-H) });
  const ofExpiredCa = makeCertKey({ cn: GUN, label: 'pin of expired CA', issuer: expiredCa });
  const second = makeCertKey({ cn: GUN, label: 'pin second' });
  const zero = '0'.repeat(64);

  type Row = [string, TestKey[], TrustPinning, string | undefined, number?];
  it.each<Row>([
    ['✓ TOFU: no pin', [rootKey], {}, undefined],
    ['✓ certs[GUN] lists the root cert key ID', [rootKey], { certs: { [GUN]: [rootKey.id] } }, undefined],
    ['✗ certs[GUN] lists another ID', [rootKey], { certs: { [GUN]: [zero] } }, 'PINNING_FAILED'],
    ['✗ certs[GUN] lists the canonical (SPKI) ID, not the cert ID', [rootKey], { certs: { [GUN]: [canonicalKeyIdOf(rootKey)] } }, 'PINNING_FAILED'],
    ['✗ certs[GUN] is empty', [rootKey], { certs: { [GUN]: [] } }, 'PINNING_FAILED'],
    ['✓ wildcard certs["example.com/*"]', [rootKey], { certs: { 'example.com/*': [rootKey.id] } }, undefined],
    ['✗ wildcard mismatch', [rootKey], { certs: { 'example.com/*': [zero] } }, 'PINNING_FAILED'],
    ['✗ the longest wildcard wins', [rootKey], { certs: { 'example.com/*': [rootKey.id], 'example.com/team/*': [zero] } }, 'PINNING_FAILED'],
    ['✗ an exact pin wins over a matching wildcard', [rootKey], { certs: { [GUN]: [zero], 'example.com/*': [rootKey.id] } }, 'PINNING_FAILED'],
    ['✓ a pin for another GUN leaves TOFU', [rootKey], { certs: { 'other.com/*': [zero] } }, undefined],
    ['✓ ca: leaf issued by the pinned CA', [issued], { ca: { 'example.com/': pinCaPem } }, undefined],
    ['✓ ca: leaf issued through an intermediate the root carries', [viaInter], { ca: { 'example.com/': pinCaPem } }, undefined],
    ['✗ ca: the root lacks the intermediate', [viaInterNoChain], { ca: { 'example.com/': pinCaPem } }, 'PINNING_FAILED'],
    ['✗ ca: self-signed leaf', [rootKey], { ca: { 'example.com/': pinCaPem } }, 'PINNING_FAILED'],
    ['✗ ca: leaf of another CA', [issued], { ca: { 'example.com/': otherCa.certPem } }, 'PINNING_FAILED'],
    ['✗ ca: the pinned CA has expired', [ofExpiredCa], { ca: { 'example.com/': expiredCa.certPem } }, 'PINNING_FAILED'],
    ['✓ ca: a bundle with the right CA among others', [issued], { ca: { 'example.com/': otherCa.certPem + pinCaPem } }, undefined],
    ['✗ ca: the longest prefix wins', [issued], { ca: { 'example.com/': pinCaPem, 'example.com/team/': otherCa.certPem } }, 'PINNING_FAILED'],
    ['✓ certs (wildcard) take precedence over ca', [rootKey], { certs: { 'example.com/*': [rootKey.id] }, ca: { 'example.com/': pinCaPem } }, undefined],
    ['✗ disable_tofu and no pin', [rootKey], { disableTofu: true }, 'PINNING_FAILED'],
    ['✗ disable_tofu and a pin for another GUN only', [rootKey], { disableTofu: true, certs: { 'other.com/*': [rootKey.id] } }, 'PINNING_FAILED'],
    ['✓ disable_tofu with a matching ca pin', [issued], { disableTofu: true, ca: { 'example.com/': pinCaPem } }, undefined],
    ['✗ threshold 2, only one of the two keys pinned', [rootKey, second], { certs: { [GUN]: [rootKey.id] } }, 'THRESHOLD_NOT_MET', 2],
    ['✓ threshold 2, both keys pinned', [rootKey, second], { certs: { [GUN]: [rootKey.id, second.id] } }, undefined, 2],
  ])('%s', (_what, rootKeys, pinning, code, threshold) => {
    expectOutcome(() => validate({ rootKeys, threshold }, { pinning }), code);
  });
});
