// A small signed Notary v1 repository built in-process, for unit tests of cases the real notary CLI
// cannot produce on demand (RSA PKCS#1 v1.5, thresholds of 2, pinned CAs, weak certificates).
// Keys come from node:crypto, certificates from the openssl CLI. Signatures use src's canonical JSON:
// the real-notary tests (lookup-lifecycle, attack-suite) are what prove that canonicalizer right.
import { execFileSync } from 'node:child_process';
import { constants, createHash, createPrivateKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalBytes, type JsonValue } from '../../src/signatures/dct/verify/canonical-json.js';
import { keyIdOf } from '../../src/signatures/dct/verify/keys.js';

export type KeyKind = 'ecdsa' | 'ed25519' | 'rsa-pss' | 'rsa-pkcs1' | 'rsa-1024';

export interface TestKey {
  keytype: string;
  publicB64: string;
  id: string;
  priv: KeyObject;
  method: string;
}

function signWith(k: TestKey, msg: Buffer): string {
  switch (k.method) {
    case 'ecdsa':
      return sign('sha256', msg, { key: k.priv, dsaEncoding: 'ieee-p1363' }).toString('base64');
    case 'eddsa':
      return sign(null, msg, k.priv).toString('base64');
    case 'rsapss':
      return sign('sha256', msg, { key: k.priv, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }).toString('base64');
    default:
      return sign('sha256', msg, { key: k.priv, padding: constants.RSA_PKCS1_PADDING }).toString('base64');
  }
}

function finish(keytype: string, publicB64: string, priv: KeyObject, method: string): TestKey {
  return { keytype, publicB64, id: keyIdOf(keytype, publicB64), priv, method };
}

export function makeKey(kind: KeyKind): TestKey {
  if (kind === 'ed25519') {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    return finish('ed25519', Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64'), privateKey, 'eddsa');
  }
  if (kind === 'ecdsa') {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return finish('ecdsa', publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), privateKey, 'ecdsa');
  }
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: kind === 'rsa-1024' ? 1024 : 2048 });
  return finish('rsa', publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), privateKey, kind === 'rsa-pkcs1' ? 'rsapkcs1v15' : 'rsapss');
}

/** notary's PEM form of a certificate chain (CertChainToPEM). */
export function chainPem(ders: Buffer[]): string {
  return ders
    .map((d) => {
      const b64 = d.toString('base64').match(/.{1,64}/g)!.join('\n');
      return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
    })
    .join('');
}

const work = mkdtempSync(join(tmpdir(), 'trustgate-signed-repo-'));
let serial = 0;

export interface CertOptions {
  cn: string;
  algo?: 'ec' | 'rsa' | 'rsa-1024';
  sha1?: boolean;
  /** openssl -days; negative not allowed, use notAfterDays with a clock instead. */
  days?: number;
  /** Sign with this CA (its key and cert files) instead of self-signing. */
  ca?: { keyFile: string; certFile: string };
  isCA?: boolean;
}

/** An X.509 key for root or delegation roles: keytype *-x509, public = base64 of the PEM chain. */
export function makeCertKey(opts: CertOptions, chainExtra: Buffer[] = []): TestKey & { certDer: Buffer; keyFile: string; certFile: string } {
  const n = ++serial;
  const keyFile = join(work, `k${n}.pem`);
  const certFile = join(work, `c${n}.pem`);
  const algo = opts.algo ?? 'ec';
  if (algo === 'ec') execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
  else execFileSync('openssl', ['genrsa', '-out', keyFile, algo === 'rsa-1024' ? '1024' : '2048'], { stdio: 'ignore' });
  const md = opts.sha1 ? '-sha1' : '-sha256';
  const subj = `/CN=${opts.cn.replace(/\//g, '\\/')}`; // '/' separates RDNs in -subj
  const ext = opts.isCA ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'] : ['-addext', 'basicConstraints=critical,CA:FALSE'];
  if (opts.ca) {
    const csr = join(work, `r${n}.csr`);
    execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', subj, '-out', csr]);
    const extFile = join(work, `e${n}.cnf`);
    writeFileSync(extFile, opts.isCA ? 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n' : 'basicConstraints=critical,CA:FALSE\n');
    execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', opts.ca.certFile, '-CAkey', opts.ca.keyFile, '-CAcreateserial', md, '-days', String(opts.days ?? 365), '-extfile', extFile, '-out', certFile], { stdio: 'ignore' });
  } else {
    execFileSync('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', subj, md, '-days', String(opts.days ?? 365), ...ext, '-out', certFile]);
  }
  const certDer = Buffer.from(new X509Certificate(readFileSync(certFile)).raw);
  const priv = createPrivateKey(readFileSync(keyFile));
  const pem = chainPem([certDer, ...chainExtra]);
  const keytype = algo === 'ec' ? 'ecdsa-x509' : 'rsa-x509';
  const method = algo === 'ec' ? 'ecdsa' : 'rsapss';
  return { ...finish(keytype, Buffer.from(pem).toString('base64'), priv, method), certDer, keyFile, certFile };
}

export function envelope(signed: JsonValue, signers: TestKey[]): Buffer {
  const msg = canonicalBytes(signed);
  return Buffer.from(JSON.stringify({ signed, signatures: signers.map((k) => ({ keyid: k.id, method: k.method, sig: signWith(k, msg) })) }));
}

const keyJson = (k: TestKey) => ({ keytype: k.keytype, keyval: { private: null, public: k.publicB64 } });
const meta = (b: Buffer) => ({ hashes: { sha256: createHash('sha256').update(b).digest('base64') }, length: b.length });

export interface DelegationSpec {
  /** targets/<name>[/<child>…]; declared in its parent's file. */
  name: string;
  keys: TestKey[];
  threshold?: number;
  paths?: string[];
  tags?: Record<string, Buffer>;
  signers?: TestKey[];
  expires?: string;
  version?: number;
  /** false: declared by the parent but left out of the snapshot. */
  inSnapshot?: boolean;
}

export interface RepoSpec {
  gun: string;
  root: TestKey[];
  rootThreshold?: number;
  rootSigners?: TestKey[];
  targets: TestKey[];
  targetsThreshold?: number;
  targetsSigners?: TestKey[];
  snapshot?: TestKey;
  timestamp?: TestKey;
  tags: Record<string, Buffer>;
  expires?: string;
  /** Expiry of the server-managed roles (timestamp, snapshot) when it differs from `expires`. */
  serverExpires?: string;
  version?: number;
  delegations?: DelegationSpec[];
  /** Edit the top-level targets `signed` object before it is signed (for structure attacks). */
  editTargets?: (signed: Record<string, unknown>) => void;
}

/** Files of a complete repository (role name → bytes), as a MetadataFetcher would serve them. */
export function buildRepo(spec: RepoSpec): Map<string, Buffer> {
  const expires = spec.expires ?? '2100-01-01T00:00:00Z';
  const version = spec.version ?? 1;
  const snapshot = spec.snapshot ?? makeKey('ecdsa');
  const timestamp = spec.timestamp ?? makeKey('ed25519');
  const all = [...spec.root, ...spec.targets, snapshot, timestamp];
  const root = envelope(
    {
      _type: 'Root',
      consistent_snapshot: false,
      expires,
      keys: Object.fromEntries(all.map((k) => [k.id, keyJson(k)])),
      roles: {
        root: { keyids: spec.root.map((k) => k.id), threshold: spec.rootThreshold ?? 1 },
        targets: { keyids: spec.targets.map((k) => k.id), threshold: spec.targetsThreshold ?? 1 },
        snapshot: { keyids: [snapshot.id], threshold: 1 },
        timestamp: { keyids: [timestamp.id], threshold: 1 },
      },
      version,
    },
    spec.rootSigners ?? spec.root,
  );
  const delegations = spec.delegations ?? [];
  const targetsFile = (role: string, tags: Record<string, Buffer>, exp: string, ver: number, signers: TestKey[]) => {
    const children = delegations.filter((d) => d.name.slice(0, d.name.lastIndexOf('/')) === role);
    const signed = {
        _type: 'Targets',
        delegations: {
          keys: Object.fromEntries(children.flatMap((c) => c.keys.map((k) => [k.id, keyJson(k)]))),
          roles: children.map((c) => ({ name: c.name, keyids: c.keys.map((k) => k.id), threshold: c.threshold ?? 1, paths: c.paths ?? [''] })),
        },
        expires: exp,
        targets: Object.fromEntries(Object.entries(tags).map(([t, b]) => [t, meta(b)])),
        version: ver,
      };
    if (role === 'targets') spec.editTargets?.(signed);
    return envelope(signed as JsonValue, signers);
  };
  const targets = targetsFile('targets', spec.tags, expires, version, spec.targetsSigners ?? spec.targets);
  const delegated = delegations.map((d) => [d.name, targetsFile(d.name, d.tags ?? {}, d.expires ?? expires, d.version ?? 1, d.signers ?? d.keys), d] as const);
  const snapMeta: Record<string, unknown> = { root: meta(root), targets: meta(targets) };
  for (const [name, file, d] of delegated) if (d.inSnapshot !== false) snapMeta[name] = meta(file);
  const serverExpires = spec.serverExpires ?? expires;
  const snap = envelope({ _type: 'Snapshot', expires: serverExpires, meta: snapMeta as JsonValue, version }, [snapshot]);
  const ts = envelope({ _type: 'Timestamp', expires: serverExpires, meta: { snapshot: meta(snap) }, version }, [timestamp]);
  return new Map([
    ['root', root],
    ['targets', targets],
    ['snapshot', snap],
    ['timestamp', ts],
    ...delegated.map(([name, file]) => [name, file] as [string, Buffer]),
  ]);
}
