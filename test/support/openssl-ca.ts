// A certificate authority run with the openssl CLI as operators run one: `openssl ca` with its index
// (certificates with exact validity periods, revocation, CRLs), `openssl ocsp` as an OCSP responder on
// 127.0.0.1, and `openssl ts -reply` as an RFC 3161 timestamp authority. Nothing leaves the machine.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CA_EXT, type KeyKind, type KeyPair } from './notation-sign.js';
import { freePort } from './spawn-server.js';

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
const asn1Time = (d: Date) => d.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z'); // YYYYMMDDHHMMSSZ

function genKey(dir: string, file: string, kind: KeyKind): void {
  if (kind.startsWith('ec')) openssl(dir, ['ecparam', '-name', { ec256: 'prime256v1', ec384: 'secp384r1', ec521: 'secp521r1' }[kind as 'ec256'], '-genkey', '-noout', '-out', file]);
  else openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${kind.slice(3)}`, '-out', file]);
}

export interface IssueOptions {
  key?: KeyKind;
  notBefore?: Date;
  notAfter?: Date;
}

export class OpensslCa implements KeyPair {
  readonly dir: string;
  readonly key: string;
  readonly cert: string;
  private readonly cnf: string;

  /** A self-signed root (or, with `parent`, an intermediate) with its own `openssl ca` database. */
  constructor(base: string, readonly name: string, parent?: OpensslCa, ext = CA_EXT) {
    this.dir = join(base, `ca-${name}`);
    mkdirSync(join(this.dir, 'certs'), { recursive: true });
    this.key = join(this.dir, 'ca.key');
    this.cert = join(this.dir, 'ca.pem');
    this.cnf = join(this.dir, 'ca.cnf');
    writeFileSync(join(this.dir, 'index.txt'), '');
    writeFileSync(join(this.dir, 'serial'), `${createHash('sha1').update(name).digest('hex').slice(0, 16)}\n`);
    writeFileSync(join(this.dir, 'crlnumber'), '01\n');
    writeFileSync(
      this.cnf,
      [
        '[ca]',
        'default_ca = CA_default',
        '[CA_default]',
        `dir = ${this.dir}`,
        'database = $dir/index.txt',
        'new_certs_dir = $dir/certs',
        'serial = $dir/serial',
        'crlnumber = $dir/crlnumber',
        'certificate = $dir/ca.pem',
        'private_key = $dir/ca.key',
        'default_md = sha256',
        'default_days = 30',
        'default_crl_days = 7',
        'policy = policy_any',
        'unique_subject = no',
        'copy_extensions = none',
        '[policy_any]',
        'countryName = optional',
        'stateOrProvinceName = optional',
        'organizationName = optional',
        'organizationalUnitName = optional',
        'commonName = supplied',
        '',
      ].join('\n'),
    );
    genKey(this.dir, this.key, 'ec256');
    if (parent) {
      const issued = parent.issue(`ca-${name}`, `/C=US/ST=WA/O=${name}/CN=${name} CA`, ext, {}, this.key);
      writeFileSync(this.cert, readFileSync(issued.cert));
    } else {
      // Self-signed through `openssl ca -selfsign`, so that it too is valid from an hour ago (a timestamp's
      // range must lie within every certificate's validity, and the test would otherwise race the clock).
      openssl(this.dir, ['req', '-new', '-key', this.key, '-subj', `/C=US/ST=WA/O=${name}/CN=${name} Root`, '-out', 'ca.csr']);
      writeFileSync(join(this.dir, 'ca.ext'), ext);
      const dates = ['-startdate', asn1Time(new Date(Date.now() - 3600e3)), '-enddate', asn1Time(new Date(Date.now() + 60 * 86400e3))];
      openssl(this.dir, ['ca', '-batch', '-selfsign', '-config', this.cnf, '-keyfile', this.key, '-preserveDN', '-notext', '-in', 'ca.csr', '-out', this.cert, '-extfile', 'ca.ext', ...dates]);
    }
  }

  /** Issue a certificate with `ext` (openssl extension lines) and exact validity when given. */
  issue(name: string, subject: string, ext: string, o: IssueOptions = {}, existingKey?: string): KeyPair {
    const key = existingKey ?? join(this.dir, `${name}.key`);
    if (!existingKey) genKey(this.dir, key, o.key ?? 'ec256');
    const csr = join(this.dir, `${name}.csr`);
    openssl(this.dir, ['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
    writeFileSync(join(this.dir, `${name}.ext`), ext);
    const cert = join(this.dir, `${name}.pem`);
    const dates = ['-startdate', asn1Time(o.notBefore ?? new Date(Date.now() - 3600e3)), '-enddate', asn1Time(o.notAfter ?? new Date(Date.now() + 10 * 86400e3))];
    openssl(this.dir, ['ca', '-batch', '-config', this.cnf, '-preserveDN', '-notext', '-in', csr, '-out', cert, '-extfile', join(this.dir, `${name}.ext`), ...dates]);
    return { key, cert };
  }

  revoke(certFile: string, reason = 'keyCompromise'): void {
    openssl(this.dir, ['ca', '-config', this.cnf, '-revoke', certFile, '-crl_reason', reason]);
  }

  /** A DER CRL of what this CA has revoked. */
  crl(): Buffer {
    openssl(this.dir, ['ca', '-config', this.cnf, '-gencrl', '-out', join(this.dir, 'crl.pem')]);
    openssl(this.dir, ['crl', '-in', join(this.dir, 'crl.pem'), '-outform', 'DER', '-out', join(this.dir, 'crl.der')]);
    return readFileSync(join(this.dir, 'crl.der'));
  }

  /** `openssl ocsp` answering for this CA on 127.0.0.1, signing with a delegated responder certificate. */
  async startOcsp(port?: number): Promise<{ url: string; stop(): void }> {
    port ??= await freePort();
    const responder = this.issue(`ocsp-${port}`, `/C=US/ST=WA/O=${this.name}/CN=${this.name} OCSP`, 'keyUsage=critical,digitalSignature\nextendedKeyUsage=critical,OCSPSigning\nnoCheck=ignored\n');
    const proc: ChildProcess = spawn('openssl', ['ocsp', '-port', String(port), '-index', join(this.dir, 'index.txt'), '-CA', this.cert, '-rsigner', responder.cert, '-rkey', responder.key, '-nmin', '5', '-ignore_err'], {
      cwd: this.dir,
      stdio: 'ignore',
    });
    const url = `http://127.0.0.1:${port}`;
    // Ready when it accepts connections (a GET of the root is a malformed request it answers or drops).
    for (let i = 0; i < 100; i++) {
      const ok = await fetch(url, { signal: AbortSignal.timeout(500) }).then(
        () => true,
        (e: Error) => !/ECONNREFUSED/.test(String((e.cause as Error | undefined)?.message ?? e.message)) && e.name !== 'TypeError',
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      url,
      stop: () => {
        if (proc.pid && proc.exitCode === null) process.kill(proc.pid);
      },
    };
  }
}

/**
 * An RFC 3161 timestamp token of `data` (the envelope's primitive signature), answered by
 * `openssl ts -reply` for `tsa` (its certificate chain in the token, signing-certificate-v2).
 */
export function timestampToken(dir: string, tsa: KeyPair, chain: string[], data: Buffer, hash = 'sha256'): Buffer {
  const id = createHash('sha256').update(data).update(String(Math.random())).digest('hex').slice(0, 12);
  const tsDir = join(dir, `ts-${id}`);
  mkdirSync(tsDir, { recursive: true });
  writeFileSync(join(tsDir, 'serial'), '01\n');
  writeFileSync(join(tsDir, 'chain.pem'), chain.map((f) => readFileSync(f, 'utf8')).join(''));
  writeFileSync(
    join(tsDir, 'ts.cnf'),
    [
      '[tsa]',
      'default_tsa = tsa1',
      '[tsa1]',
      `serial = ${join(tsDir, 'serial')}`,
      `signer_cert = ${tsa.cert}`,
      `signer_key = ${tsa.key}`,
      `certs = ${join(tsDir, 'chain.pem')}`,
      'signer_digest = sha256',
      'default_policy = 1.2.3.4.1',
      'digests = sha256, sha384, sha512',
      'accuracy = secs:1, millisecs:500',
      'ordering = no',
      'tsa_name = no',
      'ess_cert_id_chain = no',
      'ess_cert_id_alg = sha256',
      '',
    ].join('\n'),
  );
  const digest = createHash(hash).update(data).digest('hex');
  openssl(tsDir, ['ts', '-query', '-digest', digest, `-${hash}`, '-cert', '-no_nonce', '-out', 'req.tsq']);
  openssl(tsDir, ['ts', '-reply', '-config', 'ts.cnf', '-queryfile', 'req.tsq', '-token_out', '-out', 'token.der']);
  return readFileSync(join(tsDir, 'token.der'));
}

export const TSA_EXT = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n';
