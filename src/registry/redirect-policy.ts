// Where an upstream may send us. Registries redirect blob GETs to storage (S3, a CDN), so redirects are
// followed — but a hostile or compromised upstream could point one at a cloud metadata service or an
// internal admin port and have trustgate fetch it for an anonymous client (SSRF). So: no https → http
// downgrade; no target that resolves to a loopback, link-local, private, unique-local or otherwise
// special address unless its host is the upstream's own host, is listed in `redirects.allowHosts`, or
// the upstream has `redirects.allowPrivate: true`; and never trustgate's own listen address (a loop).
import { lookup as dnsLookupCb, type LookupAddress, type LookupOptions } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { fail } from '../errors.js';

export interface RedirectPolicy {
  /** The upstream's registry URL: its host is where the upstream lives, always allowed. */
  registry: URL;
  /** Hostnames (or host:port) an operator allows even when they resolve to private addresses. */
  allowHosts: readonly string[];
  /** Allow private and loopback targets altogether (a registry whose storage is on the LAN). */
  allowPrivate: boolean;
  /** trustgate's own listen address. */
  self?: { host: string; port: number } | undefined;
  /** Resolve a hostname to its addresses (injected in tests; default the system resolver). */
  resolve?: ((hostname: string) => Promise<string[]>) | undefined;
}

// IANA special-purpose ranges (RFC 6890 and its updates) that are never a public storage service.
const SPECIAL = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private (RFC 1918)
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local: cloud metadata services live here (169.254.169.254)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  SPECIAL.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  SPECIAL.addSubnet(net, bits, 'ipv6');
}

/** True for addresses a redirect may not reach without an explicit allowance. */
export function isSpecialAddress(address: string): boolean {
  const ip = address.replace(/^\[|\]$/g, '');
  const family = isIP(ip);
  if (family === 4) return SPECIAL.check(ip, 'ipv4');
  if (family !== 6) return true; // not an address at all: refuse rather than guess
  // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4 address: judge that one.
  const mapped = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return SPECIAL.check(mapped[1]!, 'ipv4');
  return SPECIAL.check(ip, 'ipv6');
}

async function systemResolve(hostname: string): Promise<string[]> {
  return (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => a.address);
}

function isSelf(addresses: readonly string[], port: number, self: RedirectPolicy['self']): boolean {
  if (!self || port !== self.port) return false;
  const unspecified = self.host === '0.0.0.0' || self.host === '::' || self.host === '';
  const mine = new Set<string>([self.host]);
  if (unspecified) {
    // Listening everywhere: every local interface address is us.
    for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) mine.add(i.address);
  }
  return addresses.some((a) => mine.has(a) || (unspecified && isSpecialAddress(a) && /^(127\.|::1$|::ffff:127\.)/.test(a)));
}

function defaultPort(u: URL): number {
  return Number(u.port || (u.protocol === 'https:' ? 443 : 80));
}

/** Throws UPSTREAM_INVALID when the redirect from `from` to `to` is not allowed. */
export async function checkRedirect(from: URL, to: URL, policy: RedirectPolicy): Promise<void> {
  const where = `${policy.registry.host} redirected to ${to.protocol}//${to.host}`;
  if (to.protocol !== 'https:' && to.protocol !== 'http:') throw fail('UPSTREAM_INVALID', `${where}: only http and https are followed`);
  if (from.protocol === 'https:' && to.protocol === 'http:') throw fail('UPSTREAM_INVALID', `${where}: a redirect from https to plain http is a downgrade`);
  const hostname = to.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(hostname) ? [hostname] : await (policy.resolve ?? systemResolve)(hostname);
  } catch (err) {
    throw fail('UPSTREAM_UNAVAILABLE', `${where}: cannot resolve ${hostname}: ${(err as Error).message}`, err);
  }
  if (isSelf(addresses, defaultPort(to), policy.self)) throw fail('UPSTREAM_INVALID', `${where}: that is trustgate's own address`);
  const own = to.hostname === policy.registry.hostname;
  const listed = policy.allowHosts.includes(to.host) || policy.allowHosts.includes(hostname);
  if (own || listed || policy.allowPrivate) return;
  const special = addresses.find(isSpecialAddress);
  if (special !== undefined) {
    throw fail('UPSTREAM_INVALID', `${where}, which resolves to ${special} (loopback, link-local or private): not followed unless listed in redirects.allowHosts`);
  }
}

/** Error code of a connection refused by guardedLookup: mapped to UPSTREAM_INVALID by the client. */
export const REFUSED_ADDRESS = 'ETRUSTGATE_REFUSED_ADDRESS';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * The same rule at connect time, as a `lookup` for net/tls.connect: checkRedirect resolved the name
 * once, but a hostile DNS server can answer the connection's own lookup differently (DNS rebinding).
 * Names for which `allowed` is true (the registry's host, token realms, allowHosts) are not checked.
 */
export function guardedLookup(allowed: (hostname: string) => boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookupCb(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as LookupAddress[];
      const bad = allowed(hostname) ? undefined : list.find((a) => isSpecialAddress(a.address));
      if (bad) {
        const e: NodeJS.ErrnoException = new Error(`${hostname} resolves to ${bad.address} (loopback, link-local or private): refused by the redirect policy`);
        e.code = REFUSED_ADDRESS;
        return callback(e, []);
      }
      if (options.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(Object.assign(new Error(`${hostname}: no addresses`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}
