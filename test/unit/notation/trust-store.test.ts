import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTrustStore } from '../../../src/signatures/notation/trust-store.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-truststore-'));
const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
o(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
o(['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/C=US/ST=WA/O=acme/CN=root', '-days', '5', '-addext', 'basicConstraints=critical,CA:TRUE', '-out', 'ca.pem']);
o(['x509', '-in', 'ca.pem', '-outform', 'DER', '-out', 'ca.der']);
// A leaf issued by the CA: neither a CA nor self-signed.
o(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'leaf.key']);
o(['req', '-new', '-key', 'leaf.key', '-subj', '/C=US/ST=WA/O=acme/CN=leaf', '-out', 'leaf.csr']);
writeFileSync(join(dir, 'leaf.ext'), 'basicConstraints=critical,CA:FALSE\n');
o(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '5', '-extfile', 'leaf.ext', '-out', 'leaf.pem']);

function store(type: string, name: string, files: Record<string, string>): string {
  const root = mkdtempSync(join(dir, 'root-'));
  const d = join(root, 'x509', type, name);
  mkdirSync(d, { recursive: true });
  for (const [to, from] of Object.entries(files)) copyFileSync(join(dir, from), join(d, to));
  return root;
}

describe('notation trust store layout', () => {
  it('reads PEM and DER certificates of x509/<type>/<name>/', async () => {
    const root = store('ca', 'acme', { 'a.pem': 'ca.pem', 'b.crt': 'ca.der' });
    const certs = await loadTrustStore(root, { type: 'ca', name: 'acme' });
    expect(certs).toHaveLength(2);
    expect(certs[0]!.subject).toContain('CN=root');
  });
  it.each<[string, () => string, string, RegExp]>([
    ['a missing store', () => store('ca', 'other', { 'a.pem': 'ca.pem' }), 'acme', /cannot read/],
    ['an empty store', () => store('ca', 'acme', {}), 'acme', /holds no certificates/],
    ['a CA-issued leaf certificate', () => store('ca', 'acme', { 'l.pem': 'leaf.pem' }), 'acme', /neither a CA nor a self-signed certificate/],
    ['a file that is no certificate', () => {
      const root = store('ca', 'acme', {});
      writeFileSync(join(root, 'x509', 'ca', 'acme', 'junk.pem'), 'not a certificate');
      return root;
    }, 'acme', /does not hold X.509 certificates/],
    ['a certificate file that is a symbolic link', () => {
      const root = store('ca', 'acme', { 'a.pem': 'ca.pem' });
      symlinkSync(join(dir, 'ca.pem'), join(root, 'x509', 'ca', 'acme', 'link.pem'));
      return root;
    }, 'acme', /link.pem is a symbolic link/],
    ['a named store that is a symbolic link', () => {
      const root = store('ca', 'real', { 'a.pem': 'ca.pem' });
      symlinkSync(join(root, 'x509', 'ca', 'real'), join(root, 'x509', 'ca', 'acme'));
      return root;
    }, 'acme', /the named store is a symbolic link/],
  ])('refuses %s', async (_n, make, name, message) => {
    await expect(loadTrustStore(make(), { type: 'ca', name })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(message) });
  });
});
