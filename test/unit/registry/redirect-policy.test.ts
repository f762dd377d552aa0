// Where an upstream's redirect may lead (SSRF): the address table and the decision, resolver injected.
import { describe, expect, it } from 'vitest';
import { checkRedirect, guardedLookup, isSpecialAddress, REFUSED_ADDRESS } from '../../../src/registry/redirect-policy.js';

describe('isSpecialAddress', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.0.0.2', true],
    ['10.1.2.3', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['192.168.1.1', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['0.0.0.0', true],
    ['::1', true],
    ['::', true],
    ['fe80::1', true],
    ['fd00::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:169.254.169.254', true],
    ['not-an-ip', true],
    ['8.8.8.8', false],
    ['172.32.0.1', false],
    ['52.216.0.1', false],
    ['2606:4700::1111', false],
    ['::ffff:8.8.8.8', false],
  ])('%s → %s', (ip, special) => expect(isSpecialAddress(ip)).toBe(special));
});

const registry = new URL('https://registry.example:5000');
const resolveTo = (map: Record<string, string[]>) => async (h: string) => map[h] ?? [];
const base = { registry, allowHosts: [] as string[], allowPrivate: false, resolve: resolveTo({ 'cdn.example': ['52.216.0.1'], 'rebind.example': ['10.0.0.5'], 'registry.example': ['10.0.0.9'] }) };
const go = (to: string, extra: Partial<typeof base> & { self?: { host: string; port: number } } = {}, from = 'https://registry.example:5000/v2/a/blobs/x') =>
  checkRedirect(new URL(from), new URL(to), { ...base, ...extra });

describe('checkRedirect', () => {
  it('follows a public storage host over https', async () => {
    await expect(go('https://cdn.example/blob')).resolves.toBeUndefined();
  });
  it('refuses an https → http downgrade, even to a public host', async () => {
    await expect(go('http://cdn.example/blob')).rejects.toMatchObject({ code: 'UPSTREAM_INVALID' });
  });
  it('refuses a link-local metadata address and a host that resolves to a private one', async () => {
    await expect(go('https://169.254.169.254/latest/meta-data')).rejects.toMatchObject({ code: 'UPSTREAM_INVALID' });
    await expect(go('https://rebind.example/x')).rejects.toMatchObject({ code: 'UPSTREAM_INVALID' });
    await expect(go('https://[::1]:8080/x')).rejects.toMatchObject({ code: 'UPSTREAM_INVALID' });
  });
  it("allows the upstream's own host, a listed host, or any private address with allowPrivate", async () => {
    await expect(go('https://registry.example:9000/x')).resolves.toBeUndefined();
    await expect(go('https://rebind.example/x', { allowHosts: ['rebind.example'] })).resolves.toBeUndefined();
    await expect(go('https://10.9.9.9:7000/x', { allowHosts: ['10.9.9.9:7000'] })).resolves.toBeUndefined();
    await expect(go('https://10.9.9.9:7001/x', { allowHosts: ['10.9.9.9:7000'] })).rejects.toMatchObject({ code: 'UPSTREAM_INVALID' });
    await expect(go('https://rebind.example/x', { allowPrivate: true })).resolves.toBeUndefined();
  });
  it("never follows a redirect to trustgate's own listen address", async () => {
    await expect(go('https://10.9.9.9:5050/x', { allowPrivate: true, self: { host: '10.9.9.9', port: 5050 } })).rejects.toMatchObject({ code: 'UPSTREAM_INVALID' });
    await expect(go('https://127.0.0.1:5050/x', { allowPrivate: true, self: { host: '0.0.0.0', port: 5050 } })).rejects.toMatchObject({ code: 'UPSTREAM_INVALID' });
    await expect(go('https://10.9.9.9:5051/x', { allowPrivate: true, self: { host: '10.9.9.9', port: 5050 } })).resolves.toBeUndefined();
  });
  it('refuses schemes other than http and https', async () => {
    await expect(go('file:///etc/passwd')).rejects.toMatchObject({ code: 'UPSTREAM_INVALID' });
  });
});

describe('guardedLookup (connect time: DNS rebinding)', () => {
  const lookup = (allowed: boolean, all: boolean) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((resolve) =>
      guardedLookup(() => allowed)('localhost', { all }, (err, address) => resolve({ err, address })),
    );
  it('refuses a name that resolves to loopback unless it is allowed', async () => {
    expect((await lookup(false, true)).err?.code).toBe(REFUSED_ADDRESS);
    expect((await lookup(false, false)).err?.code).toBe(REFUSED_ADDRESS);
    const ok = await lookup(true, false);
    expect(ok.err).toBeNull();
    expect(['127.0.0.1', '::1']).toContain(ok.address);
    const all = await lookup(true, true);
    expect(Array.isArray(all.address) && all.address.length > 0).toBe(true);
  });
});

describe('a registry ca adds to the system roots', () => {
  it('keeps every root node trusts and appends the configured CA', async () => {
    const { rootCertificates } = await import('node:tls');
    const { withSystemRoots } = await import('../../../src/registry/registry-client.js');
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const list = withSystemRoots(Buffer.from(pem));
    expect(rootCertificates.length).toBeGreaterThan(50);
    expect(list.slice(0, rootCertificates.length)).toEqual([...rootCertificates]);
    expect(list[list.length - 1]).toBe(pem);
  });
});
