// Certificate-carrying keys (ecdsa-x509, rsa-x509) for root and delegation roles. Certificates come
// from the openssl CLI (`openssl ca`, which takes exact -startdate/-enddate on OpenSSL 3.0 where
// `x509 -req` only has -days); private keys from node:crypto. Each distinct certificate is made once
// per test file.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyId, rsaPair, type TestKey } from './keys.js';

export interface CertOptions {
  /** Subject CN; the repository's GUN for a root key. */
  cn: string;
  /** Tells otherwise identical certificates apart (and makes a new key pair). */
  label?: string;
  algo?: 'ec' | 'rsa' | 'rsa-1024';
  /** Default 2020-01-01 → 2099-12-31: valid at any clock a test is likely to pick. */
  notBefore?: Date;
  notAfter?: Date;
  /** Sign with SHA-1 (ecdsa-with-SHA1 / sha1WithRSAEncryption), which notary refuses. */
  sha1?: boolean;
  /** basicConstraints CA:TRUE (+ keyCertSign); a CA certificate can never be a root leaf. */
  isCA?: boolean;
  /** Issuing CA (default: self-signed). */
  issuer?: CertKey;
}

export interface CertKey extends TestKey {
  readonly certDer: Buffer;
  /** This certificate alone, in notary's PEM form. */
  readonly certPem: string;
  /** Files for openssl: the private key and the certificate. */
  readonly keyFile: string;
  readonly certFile: string;
  readonly options: Readonly<CertOptions>;
}

export const DEFAULT_NOT_BEFORE = new Date('2020-01-01T00:00:00Z');
export const DEFAULT_NOT_AFTER = new Date('2099-12-31T23:59:59Z');

/** notary tuf/utils/x509.go CertChainToPEM: base64 DER in 64-character lines, `\n` line ends. */
export function pemOf(ders: readonly Buffer[]): string {
  let out = '';
  for (const der of ders) {
    const b64 = der.toString('base64');
    out += '-----BEGIN CERTIFICATE-----\n';
    for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + '\n';
    out += '-----END CERTIFICATE-----\n';
  }
  return out;
}

let workDir: string | undefined;
function work(): string {
  workDir ??= mkdtempSync(join(tmpdir(), 'notary-builder-'));
  return workDir;
}

const certs = new Map<string, CertKey>();
let serial = 0;

/** openssl ca wants YYYYMMDDHHMMSSZ. */
function asn1Time(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * A certificate key: keytype ecdsa-x509/rsa-x509, public = base64 of the PEM of the leaf followed by
 * `chain` (intermediates), exactly as notary writes it. `pem` rewrites the PEM text (CRLF, headers…)
 * before it becomes the public key, for tests of what notary refuses.
 */
export function makeCertKey(opts: CertOptions, chain: readonly CertKey[] = [], pem?: (text: string) => string): CertKey {
  const base = issue(opts);
  if (chain.length === 0 && !pem) return base;
  let text = pemOf([base.certDer, ...chain.map((c) => c.certDer)]);
  if (pem) text = pem(text);
  const pub = Buffer.from(text, 'utf8').toString('base64');
  return { ...base, public: pub, id: keyId(base.keytype, pub) };
}

/** The same certificate key with a different PEM text (CRLF, headers, junk) as its public key. */
export function withPem(k: CertKey, rewrite: (text: string) => string): CertKey {
  const pub = Buffer.from(rewrite(Buffer.from(k.public, 'base64').toString('utf8')), 'utf8').toString('base64');
  return { ...k, public: pub, id: keyId(k.keytype, pub) };
}

/** A CA certificate key (for issuing leaves, intermediates, and `ca` trust pinning). */
export function makeCa(cn: string, opts: Omit<CertOptions, 'cn' | 'isCA'> = {}): CertKey {
  return makeCertKey({ ...opts, cn, isCA: true });
}

function issue(opts: CertOptions): CertKey {
  const cacheKey = JSON.stringify({ ...opts, issuer: opts.issuer?.id });
  const hit = certs.get(cacheKey);
  if (hit) return hit;
  const n = ++serial;
  const dir = join(work(), `c${n}`);
  mkdirSync(dir);
  const algo = opts.algo ?? 'ec';
  const privateKey: KeyObject =
    algo === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
      : rsaPair(algo === 'rsa-1024' ? 1024 : 2048, `cert ${opts.label ?? ''} ${opts.cn} ${n}`).privateKey;
  const keyFile = join(dir, 'key.pem');
  writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const csr = join(dir, 'req.csr');
  // In -subj, `/` separates RDNs: a GUN's slashes are escaped.
  execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', `/CN=${opts.cn.replace(/\//g, '\\/')}`, '-out', csr], { stdio: 'pipe' });
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), (0x1000 + n).toString(16) + '\n');
  const ext = opts.isCA ? 'basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n' : 'basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n';
  writeFileSync(
    join(dir, 'ca.cnf'),
    `[ ca ]\ndefault_ca = tg\n[ tg ]\ndatabase = ${join(dir, 'index.txt')}\nserial = ${join(dir, 'serial')}\nnew_certs_dir = ${dir}\n` +
      `default_md = sha256\npolicy = pol\nunique_subject = no\nemail_in_dn = no\n[ pol ]\ncommonName = supplied\n[ ext ]\n${ext}`,
  );
  const certFile = join(dir, 'cert.pem');
  const signer = opts.issuer ? ['-cert', opts.issuer.certFile, '-keyfile', opts.issuer.keyFile] : ['-selfsign', '-keyfile', keyFile];
  execFileSync(
    'openssl',
    ['ca', '-batch', '-notext', '-config', join(dir, 'ca.cnf'), '-extensions', 'ext', '-in', csr, '-out', certFile, ...signer,
      '-md', opts.sha1 ? 'sha1' : 'sha256',
      '-startdate', asn1Time(opts.notBefore ?? DEFAULT_NOT_BEFORE), '-enddate', asn1Time(opts.notAfter ?? DEFAULT_NOT_AFTER)],
    { stdio: 'pipe' },
  );
  const certDer = Buffer.from(new X509Certificate(readFileSync(certFile)).raw);
  const certPem = pemOf([certDer]);
  const keytype = algo === 'ec' ? 'ecdsa-x509' : 'rsa-x509';
  const pub = Buffer.from(certPem, 'utf8').toString('base64');
  const k: CertKey = {
    keytype,
    public: pub,
    id: keyId(keytype, pub),
    privateKey,
    method: algo === 'ec' ? 'ecdsa' : 'rsapss',
    label: opts.label ?? opts.cn,
    certDer,
    certPem,
    keyFile,
    certFile,
    options: opts,
  };
  certs.set(cacheKey, k);
  return k;
}

/** tuf/utils/utils.go CanonicalKeyID: an x509 key's ID as the bare public key (SPKI DER of the leaf). */
export function canonicalKeyIdOf(k: Pick<TestKey, 'keytype' | 'public' | 'id'>): string {
  if (k.keytype !== 'ecdsa-x509' && k.keytype !== 'rsa-x509') return k.id;
  const text = Buffer.from(k.public, 'base64').toString('utf8');
  const first = /-----BEGIN CERTIFICATE-----\n([\s\S]*?)-----END CERTIFICATE-----/.exec(text);
  if (!first) throw new Error('no certificate in key');
  const spki = new X509Certificate(Buffer.from(first[1]!.replace(/\s+/g, ''), 'base64')).publicKey.export({ format: 'der', type: 'spki' });
  return keyId(k.keytype === 'ecdsa-x509' ? 'ecdsa' : 'rsa', spki.toString('base64'));
}
