// Notary Project (Notation) trust policy — notation's own trustpolicy.json, version 1.0, read as
// notation reads it so a site can reuse its files unchanged (notaryproject/specifications
// specs/trust-store-trust-policy.md). Pure: parse and validate, select the policy for an artifact,
// decide per check whether a failure is enforced or logged, match trusted identities.
// First step of issue 9: envelope verification and the proxy's dct/notation policy build on this.
import { fail } from '../../errors.js';

export type VerificationLevel = 'strict' | 'permissive' | 'audit' | 'skip';
export type Check = 'integrity' | 'authenticity' | 'authenticTimestamp' | 'expiry' | 'revocation';
export type Action = 'enforce' | 'log' | 'skip';

export interface TrustStoreRef {
  type: 'ca' | 'signingAuthority' | 'tsa';
  name: string;
}

export interface TrustPolicy {
  name: string;
  registryScopes: string[];
  level: VerificationLevel;
  actions: Record<Check, Action>;
  trustStores: TrustStoreRef[];
  /** '*' or parsed `x509.subject:` DNs (attribute → value). */
  trustedIdentities: Array<'*' | Map<string, string>>;
  /** When a timestamp countersignature is verified (with a tsa store): always, or only once the chain has expired. */
  verifyTimestamp: 'always' | 'afterCertExpiry';
}

export interface TrustPolicyDocument {
  version: '1.0';
  trustPolicies: TrustPolicy[];
}

// specs/trust-store-trust-policy.md "Signature Verification details", the level table.
const LEVELS: Record<VerificationLevel, Record<Check, Action>> = {
  strict: { integrity: 'enforce', authenticity: 'enforce', authenticTimestamp: 'enforce', expiry: 'enforce', revocation: 'enforce' },
  permissive: { integrity: 'enforce', authenticity: 'enforce', authenticTimestamp: 'log', expiry: 'log', revocation: 'log' },
  audit: { integrity: 'enforce', authenticity: 'log', authenticTimestamp: 'log', expiry: 'log', revocation: 'log' },
  skip: { integrity: 'skip', authenticity: 'skip', authenticTimestamp: 'skip', expiry: 'skip', revocation: 'skip' },
};
// "Custom Verification Level": integrity cannot be overridden; only revocation may be skipped.
const OVERRIDES: Partial<Record<Check, readonly Action[]>> = {
  authenticity: ['enforce', 'log'],
  authenticTimestamp: ['enforce', 'log'],
  expiry: ['enforce', 'log'],
  revocation: ['enforce', 'log', 'skip'],
};

const bad = (msg: string) => fail('CONFIG_INVALID', `trust policy: ${msg}`);

/**
 * RFC 4514-style DN as notation writes it: comma-separated RDNs, `\` escapes (`\,` `\;` `\\`,
 * leading/trailing `\ `). Multi-valued RDNs (`+`) are not supported by notation either.
 */
export function parseDn(dn: string): Map<string, string> {
  const out = new Map<string, string>();
  let cur = '';
  const parts: string[] = [];
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i]!;
    if (c === '\\' && i + 1 < dn.length) {
      cur += '\\' + dn[++i];
      continue;
    }
    if (c === ',') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  for (const p of parts) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw bad(`invalid distinguished name ${JSON.stringify(dn)}`);
    // The specification writes the state as ST or S; both mean the same attribute (OID 2.5.4.8).
    const t = p.slice(0, eq).trim().toUpperCase();
    const type = t === 'S' ? 'ST' : t;
    const raw = p.slice(eq + 1).replace(/^\s+/, '').replace(/(?<!\\)\s+$/, '');
    const value = raw.replace(/\\(.)/g, '$1');
    if (out.has(type)) throw bad(`distinguished name ${JSON.stringify(dn)} repeats ${type}`);
    out.set(type, value);
  }
  return out;
}

function parseIdentity(s: string, policy: string): '*' | Map<string, string> {
  if (s === '*') return '*';
  const m = /^x509\.subject:\s*(.+)$/.exec(s);
  if (!m) throw bad(`${policy}: trusted identity ${JSON.stringify(s)} must be "*" or start with "x509.subject:"`);
  const dn = parseDn(m[1]!);
  // "Each identity ... MUST contain country (C), state or province (ST or S), and organization (O)".
  for (const required of ['C', 'ST', 'O']) if (!dn.has(required)) throw bad(`${policy}: trusted identity ${JSON.stringify(s)} lacks ${required === 'ST' ? 'ST (or S)' : required}`);
  return dn;
}

/** Identities overlap when one DN's attributes are a subset of the other's: both would match a certificate. */
function overlaps(a: Map<string, string>, b: Map<string, string>): boolean {
  const subset = (x: Map<string, string>, y: Map<string, string>) => [...x].every(([k, v]) => y.get(k) === v);
  return subset(a, b) || subset(b, a);
}

export function parseTrustPolicy(text: string): TrustPolicyDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(`not valid JSON: ${(err as Error).message}`);
  }
  const d = doc as { version?: unknown; trustPolicies?: unknown };
  if (d?.version !== '1.0') throw bad(`version must be "1.0", got ${JSON.stringify(d?.version)}`);
  if (!Array.isArray(d.trustPolicies) || d.trustPolicies.length === 0) throw bad('trustPolicies must be a non-empty list');
  const names = new Set<string>();
  const scopes = new Map<string, string>();
  let globals = 0;
  const policies = d.trustPolicies.map((raw: unknown, i: number): TrustPolicy => {
    const p = raw as Record<string, unknown>;
    const name = typeof p?.name === 'string' && p.name ? p.name : undefined;
    if (!name) throw bad(`trustPolicies[${i}]: name is required`);
    if (names.has(name)) throw bad(`policy name ${JSON.stringify(name)} is used twice`);
    names.add(name);
    const rs = p.registryScopes;
    if (!Array.isArray(rs) || rs.length === 0 || rs.some((x) => typeof x !== 'string' || !x)) throw bad(`${name}: registryScopes must be a non-empty list of strings`);
    if (rs.includes('*')) {
      if (rs.length > 1) throw bad(`${name}: the global scope "*" must be the only scope of its policy`);
      if (++globals > 1) throw bad('only one policy may use the global scope "*"');
    }
    for (const s of rs as string[]) {
      if (s !== '*' && s.includes('*')) throw bad(`${name}: scope ${JSON.stringify(s)} must not contain "*"`);
      if (s !== '*' && !/^[^/]+\/.+/.test(s)) throw bad(`${name}: scope ${JSON.stringify(s)} must be a fully qualified repository (registry/namespace/repository)`);
      if (scopes.has(s)) throw bad(`scope ${JSON.stringify(s)} appears in both ${scopes.get(s)} and ${name}`);
      scopes.set(s, name);
    }
    const sv = p.signatureVerification as { level?: unknown; override?: unknown; verifyTimestamp?: unknown } | undefined;
    const vt = sv?.verifyTimestamp ?? 'always';
    if (vt !== 'always' && vt !== 'afterCertExpiry') throw bad(`${name}: signatureVerification.verifyTimestamp must be always or afterCertExpiry`);
    const verifyTimestamp = vt as TrustPolicy['verifyTimestamp'];
    const level = sv?.level as VerificationLevel;
    if (!(level in LEVELS)) throw bad(`${name}: signatureVerification.level must be strict, permissive, audit or skip`);
    if (level === 'skip' && rs.includes('*')) throw bad(`${name}: level skip cannot be used with the global scope`);
    const actions = { ...LEVELS[level] };
    if (sv?.override !== undefined) {
      if (level === 'skip') throw bad(`${name}: a skip level cannot be customized`);
      for (const [check, action] of Object.entries(sv.override as Record<string, unknown>)) {
        const allowed = OVERRIDES[check as Check];
        if (!allowed) throw bad(`${name}: ${JSON.stringify(check)} cannot be overridden`);
        if (!allowed.includes(action as Action)) throw bad(`${name}: override ${check} must be one of ${allowed.join(', ')}`);
        actions[check as Check] = action as Action;
      }
    }
    const stores = p.trustStores;
    const ids = p.trustedIdentities;
    if (level === 'skip') {
      if ((Array.isArray(stores) && stores.length) || (Array.isArray(ids) && ids.length)) throw bad(`${name}: a skip policy has no trustStores or trustedIdentities`);
      return { name, registryScopes: rs as string[], level, actions, trustStores: [], trustedIdentities: [], verifyTimestamp };
    }
    if (!Array.isArray(stores) || stores.length === 0) throw bad(`${name}: trustStores must be a non-empty list`);
    const trustStores = (stores as unknown[]).map((s) => {
      const m = typeof s === 'string' ? /^(ca|signingAuthority|tsa):([A-Za-z0-9_.-]+)$/.exec(s) : null;
      if (!m) throw bad(`${name}: trust store ${JSON.stringify(s)} must be "ca:<name>", "signingAuthority:<name>" or "tsa:<name>"`);
      return { type: m[1] as TrustStoreRef['type'], name: m[2]! };
    });
    if (!Array.isArray(ids) || ids.length === 0 || ids.some((x) => typeof x !== 'string')) throw bad(`${name}: trustedIdentities must be a non-empty list of strings`);
    if (ids.includes('*') && ids.length > 1) throw bad(`${name}: "*" must be the only trusted identity when used`);
    const trustedIdentities = (ids as string[]).map((s) => parseIdentity(s, name));
    const dns = trustedIdentities.filter((x): x is Map<string, string> => x !== '*');
    for (let a = 0; a < dns.length; a++) for (let b = a + 1; b < dns.length; b++) if (overlaps(dns[a]!, dns[b]!)) throw bad(`${name}: trusted identities ${a} and ${b} overlap`);
    return { name, registryScopes: rs as string[], level, actions, trustStores, trustedIdentities, verifyTimestamp };
  });
  return { version: '1.0', trustPolicies: policies };
}

/** "Selecting a trust policy based on artifact URI": exact repository match, else the global policy. */
export function selectPolicy(doc: TrustPolicyDocument, repositoryUri: string): TrustPolicy | undefined {
  return doc.trustPolicies.find((p) => p.registryScopes.includes(repositoryUri)) ?? doc.trustPolicies.find((p) => p.registryScopes[0] === '*');
}

/** Does a signing certificate's subject satisfy one of the policy's trusted identities? */
export function isTrustedIdentity(policy: TrustPolicy, subject: ReadonlyMap<string, string | undefined>): boolean {
  return policy.trustedIdentities.some((id) => id === '*' || [...id].every(([k, v]) => subject.get(k) === v));
}
