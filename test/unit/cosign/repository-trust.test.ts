// Per-repository cosign keys/identities: accepted only where the upstream has cosign (its trust is
// the default), chosen by the first matching entry that sets one.
import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/schema.js';
import { cosignTrustSelector } from '../../../src/signatures/cosign/select-trust.js';
import type { CosignTrust } from '../../../src/signatures/cosign/verify-signature.js';
import { makeCosignKey } from '../../support/cosign-sign.js';
import { localUpstream as upstream } from '../support/config.js';

const config = (u: Record<string, unknown>) => ({ listen: '127.0.0.1:5050', upstreams: [{ ...upstream, ...u }], default: 'local' });

describe('repository cosign in the config', () => {
  it('is parsed on a repository entry of an upstream with cosign', () => {
    const u = validateConfig(config({ cosign: { keys: ['up.pem'] }, require: 'cosign', repositories: [{ match: 'team/**', policy: 'enforce', cosign: { keys: ['team.pem'] } }] }), 't').upstreams[0]!;
    expect(u.repositories[0]!.cosign).toEqual({ keys: [{ path: 'team.pem' }], trustedRoot: undefined, identities: [], tlog: 'optional' });
  });

  it('is refused where the upstream has no cosign', () => {
    expect(() => validateConfig(config({ repositories: [{ match: 'team/**', policy: 'enforce', cosign: { keys: ['team.pem'] } }] }), 't')).toThrow(/repositories\[0\]\.cosign: got "\(set\)", expected only on an upstream that has cosign: too/);
  });

  it('is validated like the upstream one', () => {
    expect(() => validateConfig(config({ cosign: { keys: ['up.pem'] }, repositories: [{ match: 'x', policy: 'enforce', cosign: { trustedRoot: 'r.json' } }] }), 't')).toThrow(/repositories\[0\]\.cosign\.identities: got nothing/);
  });
});

describe('cosignTrustSelector', () => {
  const trust = (name: string): CosignTrust => ({ keys: [{ name, key: createPublicKey(makeCosignKey().publicPem) }], identities: [] });
  const up = trust('up.pem');
  const team = trust('team.pem');
  const payments = trust('payments.pem');
  const select = cosignTrustSelector(up, [
    { match: 'team/payments/**', trust: payments },
    { match: 'team/**', trust: team },
  ]);

  it.each([
    ['team/payments/api', 'payments.pem'],
    ['team/web', 'team.pem'],
    ['other/app', 'up.pem'],
    ['teamwork/app', 'up.pem'],
  ])('%s → %s', (repo, key) => {
    expect(select(repo).keys[0]!.name).toBe(key);
  });
});
