// notation's trustpolicy.json read as notation reads it: the spec's own example accepted, every
// constraint of specs/trust-store-trust-policy.md refused with a message, selection and identities.
import { describe, expect, it } from 'vitest';
import { isTrustedIdentity, parseDn, parseTrustPolicy, selectPolicy } from '../../../src/signatures/notation/trust-policy.js';

// The specification's example (notaryproject/specifications specs/trust-store-trust-policy.md), comments removed.
const SPEC_EXAMPLE = {
  version: '1.0',
  trustPolicies: [
    {
      name: 'wabbit-networks-images',
      registryScopes: ['registry.acme-rockets.io/software/net-monitor', 'registry.acme-rockets.io/software/net-logger'],
      signatureVerification: { level: 'strict' },
      trustStores: ['ca:wabbit-networks'],
      trustedIdentities: ['x509.subject: C=US, ST=WA, L=Seattle, O=wabbit-networks.io, OU=Security Tools'],
    },
    { name: 'unsigned-image', registryScopes: ['registry.wabbit-networks.io/software/unsigned/net-utils'], signatureVerification: { level: 'skip' } },
    {
      name: 'use-expired-image',
      registryScopes: ['registry.acme-rockets.io/software/legacy/metrics'],
      signatureVerification: { level: 'strict', override: { expiry: 'log', revocation: 'skip' } },
      trustStores: ['ca:acme-rockets'],
      trustedIdentities: ['*'],
    },
    {
      name: 'global-policy-for-all-other-images',
      registryScopes: ['*'],
      signatureVerification: { level: 'audit' },
      trustStores: ['ca:acme-rockets', 'ca:acme-rockets-ca2'],
      trustedIdentities: ['x509.subject: C=US, ST=WA, L=Seattle, O=acme-rockets.io, OU=Finance, CN=SecureBuilder'],
    },
  ],
};
const parse = (d: unknown) => parseTrustPolicy(JSON.stringify(d));
const withPolicy = (p: Record<string, unknown>) => ({ version: '1.0', trustPolicies: [{ name: 'p', registryScopes: ['r.io/a/b'], signatureVerification: { level: 'strict' }, trustStores: ['ca:x'], trustedIdentities: ['*'], ...p }] });

describe('trust policy', () => {
  const doc = parse(SPEC_EXAMPLE);

  it('reads the specification example, with the level table and overrides', () => {
    expect(doc.trustPolicies.map((p) => p.name)).toHaveLength(4);
    expect(doc.trustPolicies[0]!.actions).toEqual({ integrity: 'enforce', authenticity: 'enforce', authenticTimestamp: 'enforce', expiry: 'enforce', revocation: 'enforce' });
    expect(doc.trustPolicies[2]!.actions).toMatchObject({ expiry: 'log', revocation: 'skip', authenticity: 'enforce' });
    expect(doc.trustPolicies[3]!.actions).toMatchObject({ integrity: 'enforce', authenticity: 'log' });
    expect(doc.trustPolicies[0]!.trustStores).toEqual([{ type: 'ca', name: 'wabbit-networks' }]);
  });

  it.each([
    ['registry.acme-rockets.io/software/net-logger', 'wabbit-networks-images'],
    ['registry.wabbit-networks.io/software/unsigned/net-utils', 'unsigned-image'],
    ['registry.acme-rockets.io/software/other', 'global-policy-for-all-other-images'],
    ['registry.acme-rockets.io/software', 'global-policy-for-all-other-images'], // exact match only, no prefixes
  ])('selects the policy for %s: %s', (uri, name) => {
    expect(selectPolicy(doc, uri)?.name).toBe(name);
  });

  it('selects nothing without a matching or global policy', () => {
    expect(selectPolicy(parse({ ...SPEC_EXAMPLE, trustPolicies: SPEC_EXAMPLE.trustPolicies.slice(0, 3) }), 'x.io/y/z')).toBeUndefined();
  });

  it('matches trusted identities as a subset of the certificate subject', () => {
    const p = doc.trustPolicies[0]!;
    expect(isTrustedIdentity(p, parseDn('C=US, ST=WA, L=Seattle, O=wabbit-networks.io, OU=Security Tools, CN=Builder'))).toBe(true);
    expect(isTrustedIdentity(p, parseDn('C=US, ST=WA, L=Seattle, O=wabbit-networks.io, OU=Other'))).toBe(false);
    expect(isTrustedIdentity(doc.trustPolicies[2]!, parseDn('C=XX, ST=Y, O=anyone'))).toBe(true);
  });

  it('reads escaped DN values', () => {
    expect(parseDn('C=US, ST=WA, O=Acme\\, Inc., OU=a\\;b, CN=back\\\\slash')).toEqual(
      new Map([['C', 'US'], ['ST', 'WA'], ['O', 'Acme, Inc.'], ['OU', 'a;b'], ['CN', 'back\\slash']]),
    );
  });

  it('reads S as ST (both name the state), verifyTimestamp with its default always', () => {
    expect(parseDn('C=US, S=WA, O=acme')).toEqual(new Map([['C', 'US'], ['ST', 'WA'], ['O', 'acme']]));
    const doc = parse(withPolicy({ trustedIdentities: ['x509.subject: C=US, S=WA, O=acme'] }));
    expect(doc.trustPolicies[0]!.verifyTimestamp).toBe('always');
    expect(parse(withPolicy({ signatureVerification: { level: 'strict', verifyTimestamp: 'afterCertExpiry' } })).trustPolicies[0]!.verifyTimestamp).toBe('afterCertExpiry');
    // S and ST for the same identity overlap like any repeated identity.
    expect(() => parse(withPolicy({ trustedIdentities: ['x509.subject: C=US, S=WA, O=acme', 'x509.subject: C=US, ST=WA, O=acme'] }))).toThrow(/overlap/);
  });

  it.each<[string, unknown, RegExp]>([
    ['verifyTimestamp of another value', withPolicy({ signatureVerification: { level: 'strict', verifyTimestamp: 'never' } }), /verifyTimestamp must be always or afterCertExpiry/],
    ['identity without ST or S', withPolicy({ trustedIdentities: ['x509.subject: C=US, O=acme'] }), /lacks ST \(or S\)/],
    ['wrong version', { ...SPEC_EXAMPLE, version: '2.0' }, /version must be "1.0"/],
    ['no policies', { version: '1.0', trustPolicies: [] }, /non-empty list/],
    ['duplicate names', { version: '1.0', trustPolicies: [SPEC_EXAMPLE.trustPolicies[0], SPEC_EXAMPLE.trustPolicies[0]] }, /used twice/],
    ['two global policies', { version: '1.0', trustPolicies: [SPEC_EXAMPLE.trustPolicies[3], { ...SPEC_EXAMPLE.trustPolicies[3], name: 'g2' }] }, /only one policy may use the global scope/],
    ['global with other scopes', withPolicy({ registryScopes: ['*', 'r.io/a/b'] }), /must be the only scope/],
    ['wildcard in a scope', withPolicy({ registryScopes: ['r.io/a/*'] }), /must not contain "\*"/],
    ['scope not fully qualified', withPolicy({ registryScopes: ['registry'] }), /fully qualified/],
    ['scope in two policies', { version: '1.0', trustPolicies: [withPolicy({}).trustPolicies[0], { ...withPolicy({}).trustPolicies[0], name: 'q' }] }, /appears in both/],
    ['unknown level', withPolicy({ signatureVerification: { level: 'lenient' } }), /level must be/],
    ['skip with global scope', withPolicy({ registryScopes: ['*'], signatureVerification: { level: 'skip' }, trustStores: undefined, trustedIdentities: undefined }), /skip cannot be used with the global scope/],
    ['integrity override', withPolicy({ signatureVerification: { level: 'strict', override: { integrity: 'log' } } }), /"integrity" cannot be overridden/],
    ['authenticity skipped', withPolicy({ signatureVerification: { level: 'strict', override: { authenticity: 'skip' } } }), /authenticity must be one of enforce, log/],
    ['skip customized', withPolicy({ signatureVerification: { level: 'skip', override: { expiry: 'log' } }, trustStores: undefined, trustedIdentities: undefined }), /skip level cannot be customized/],
    ['no trust stores', withPolicy({ trustStores: [] }), /trustStores must be a non-empty list/],
    ['bad trust store', withPolicy({ trustStores: ['acme'] }), /must be "ca:<name>"/],
    ['no identities', withPolicy({ trustedIdentities: [] }), /trustedIdentities must be a non-empty list/],
    ['identity without O', withPolicy({ trustedIdentities: ['x509.subject: C=US, ST=WA'] }), /lacks O/],
    ['identity of another kind', withPolicy({ trustedIdentities: ['email: a@b.c'] }), /must be "\*" or start with "x509.subject:"/],
    ['overlapping identities', withPolicy({ trustedIdentities: ['x509.subject: C=US, ST=WA, O=w.io, OU=org1', 'x509.subject: C=US, ST=WA, O=w.io'] }), /overlap/],
    ['star beside others', withPolicy({ trustedIdentities: ['*', 'x509.subject: C=US, ST=WA, O=w.io'] }), /"\*" must be the only trusted identity/],
  ])('refuses %s', (_n, d, message) => {
    expect(() => parse(d)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(message) }));
  });
});
