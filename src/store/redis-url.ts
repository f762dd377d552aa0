// The three forms `store.url` takes, parsed once so that config validation and the connection agree:
//   redis://[:pw@]host:port[/db] | rediss://…                       one server (rediss: TLS)
//   redis://h1:p1,redis://h2:p2,…  (or redis://h1:p1,h2:p2,…)      a Cluster: its seed nodes
//   redis+sentinel://[:pw@]h1:p1,h2:p2,…/<master name>             Sentinel: the sentinels + master name
// WHATWG URL cannot hold several hosts, which is why a plain `new URL()` refused the Cluster and Sentinel
// forms: the node list is split off and each node checked as host:port.
export interface RedisNode {
  host: string;
  port: number;
}

export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: RedisNode[]; password?: string | undefined; tls: boolean }
  | { kind: 'sentinel'; sentinels: RedisNode[]; name: string; password?: string | undefined; db: number };

export type ParsedRedisUrl = { ok: true; target: RedisTarget } | { ok: false; expected: string };

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/;

/** "host:port" with an explicit port (a Cluster or Sentinel node list without ports is a typo, not a default). */
function parseNode(s: string): RedisNode | undefined {
  const m = HOST_PORT.exec(s.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** Split "[user:pw@]rest" off the authority; the password is percent-decoded like a URL's. */
function splitAuth(authority: string): { password?: string | undefined; hosts: string } {
  const at = authority.lastIndexOf('@');
  if (at < 0) return { hosts: authority };
  const cred = authority.slice(0, at);
  const pw = cred.includes(':') ? cred.slice(cred.indexOf(':') + 1) : cred;
  return { password: pw ? decodeURIComponent(pw) : undefined, hosts: authority.slice(at + 1) };
}

function parseSentinel(v: string): ParsedRedisUrl {
  const expected = 'redis+sentinel://host:port[,host:port…]/<master name>';
  const rest = v.slice('redis+sentinel://'.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return { ok: false, expected: `${expected} (the master name is missing)` };
  const { password, hosts } = splitAuth(rest.slice(0, slash));
  const [name, db = '0'] = rest.slice(slash + 1).replace(/\/+$/, '').split('/');
  if (!name || !/^[A-Za-z0-9._-]+$/.test(name)) return { ok: false, expected: `${expected} (the master name is missing or not [A-Za-z0-9._-])` };
  if (!/^\d{1,2}$/.test(db)) return { ok: false, expected: `${expected}[/db] (db a number)` };
  const sentinels = hosts.split(',').map(parseNode);
  if (sentinels.length === 0 || sentinels.some((n) => !n)) return { ok: false, expected: `${expected} (each sentinel a host:port)` };
  return { ok: true, target: { kind: 'sentinel', sentinels: sentinels as RedisNode[], name, password, db: Number(db) } };
}

function parseCluster(v: string): ParsedRedisUrl {
  const expected = 'redis://host:port,redis://host:port,… (each Cluster node a host:port)';
  const parts = v.split(',').map((s) => s.trim());
  const scheme = /^(rediss?):\/\//.exec(parts[0]!)?.[1];
  if (!scheme) return { ok: false, expected };
  let password: string | undefined;
  const nodes: RedisNode[] = [];
  for (const part of parts) {
    const m = /^(rediss?):\/\/(.*)$/.exec(part);
    if (m && m[1] !== scheme) return { ok: false, expected: `${expected}, all with the same scheme` };
    const auth = splitAuth((m ? m[2]! : part).replace(/\/+$/, ''));
    password ??= auth.password;
    const node = parseNode(auth.hosts);
    if (!node) return { ok: false, expected };
    nodes.push(node);
  }
  return { ok: true, target: { kind: 'cluster', nodes, password, tls: scheme === 'rediss' } };
}

export function parseRedisUrl(value: string): ParsedRedisUrl {
  const v = value.trim();
  if (v.startsWith('redis+sentinel://')) return parseSentinel(v);
  if (v.includes(',')) return parseCluster(v);
  try {
    const u = new URL(v);
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return { ok: false, expected: 'a URL with scheme redis:, rediss: or redis+sentinel:' };
    if (!u.hostname) return { ok: false, expected: 'redis://host:port' };
    return { ok: true, target: { kind: 'single', url: v } };
  } catch {
    return { ok: false, expected: 'redis://host:port, rediss://…, redis://h1:p1,redis://h2:p2 (Cluster) or redis+sentinel://h1:p1,h2:p2/<master name>' };
  }
}
