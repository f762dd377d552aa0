// `config check` parses the Notation trust policy and loads the trust stores it names, as `start` does
// (issue 25): a policy start would refuse fails the check, naming the problem; a good one passes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { runConfigCheck } from '../../../src/cli/config-check.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-check-notation-'));

// A CA certificate in the trust store the policy names (start refuses an empty store).
mkdirSync(join(dir, 'store', 'x509', 'ca', 'lab'), { recursive: true });
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'store', 'x509', 'ca', 'lab', 'ca.crt'), '-days', '30', '-subj', '/CN=lab', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], { stdio: 'pipe' });

async function run(policy: unknown): Promise<{ code: number; out: Record<string, unknown> }> {
  const name = `c${Math.random().toString(36).slice(2)}`;
  writeFileSync(join(dir, `${name}.json`), typeof policy === 'string' ? policy : JSON.stringify(policy));
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      store: { kind: 'file', path: join(dir, 'data') },
      upstreams: [{ name: 'local', registry: 'http://127.0.0.1:5000', gun: '127.0.0.1:5000', policy: 'enforce', require: 'notation', notation: { trustPolicy: join(dir, `${name}.json`), trustStore: join(dir, 'store') } }],
      default: 'local',
    }),
  );
  const lines: string[] = [];
  const code = await runConfigCheck(['check', file], { stdout: (l) => lines.push(l), stderr: () => undefined }, {});
  return { code, out: JSON.parse(lines.at(-1) ?? '{}') as Record<string, unknown> };
}

const good = {
  version: '1.0',
  trustPolicies: [{ name: 'p', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:lab'], trustedIdentities: ['*'] }],
};

describe('config check: Notation trust policy', () => {
  it('accepts a valid policy', async () => {
    const r = await run(good);
    expect(r, JSON.stringify(r.out)).toMatchObject({ code: 0, out: { ok: true } });
  });

  it.each([
    ['not JSON', '{'],
    ['an unknown version', { ...good, version: '9.9' }],
    ['an unknown verification level', { ...good, trustPolicies: [{ ...good.trustPolicies[0], signatureVerification: { level: 'lenient' } }] }],
    ['no policies', { version: '1.0', trustPolicies: [] }],
  ])('refuses %s', async (_name, policy) => {
    const r = await run(policy);
    expect(r.code).toBe(1);
    expect(r.out.error).toBeDefined();
  });
});
