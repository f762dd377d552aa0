// X.509 helpers for notary's certificate-carrying keys (ecdsa-x509, rsa-x509). Pure: bytes in, values out.
// node:crypto's X509Certificate parses and verifies; the few fields Node 20 does not expose
// (signature algorithm, exact validity instants) are read from the DER here.
import { X509Certificate } from 'node:crypto';
import { boundedMemo } from './memo.js';

export interface CertInfo {
  cert: X509Certificate;
  der: Buffer;
  /** Last CN in the subject, as Go's pkix.Name.CommonName keeps it. */
  cn: string | undefined;
  notBefore: Date;
  notAfter: Date;
  isCA: boolean;
  signatureAlgorithmOid: string;
  /** 'ec' | 'rsa' | 'ed25519' | … from the certificate's public key. */
  keyAlgorithm: string | undefined;
  rsaBits: number | undefined;
}

/**
 * Decode every PEM block in `text`. Returns null when any block is not a CERTIFICATE or fails to parse
 * (notary's LoadCertBundleFromPEM refuses the whole bundle then). Like Go's pem.Decode, text between
 * blocks is ignored and header lines inside a block are skipped; the key ID computed from a re-encoded
 * chain then differs from the stored one, which is how notary refuses such keys.
 */
export const parsePemCertificates: (text: string) => CertInfo[] | null = boundedMemo(decodePemCertificates);

function decodePemCertificates(text: string): CertInfo[] | null {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
  const out: CertInfo[] = [];
  for (const m of text.matchAll(re)) {
    if (m[1] !== 'CERTIFICATE') return null;
    const body = m[2]!
      .split(/\r?\n/)
      .filter((line) => !line.includes(':'))
      .join('');
    if (!/^[A-Za-z0-9+/=\s]*$/.test(body)) return null;
    const der = Buffer.from(body, 'base64');
    const info = certInfo(der);
    if (!info) return null;
    out.push(info);
  }
  return out.length > 0 ? out : null;
}

export function certInfo(der: Buffer): CertInfo | null {
  let cert: X509Certificate;
  let fields: ReturnType<typeof readCertFields>;
  try {
    cert = new X509Certificate(der);
    fields = readCertFields(der);
  } catch {
    return null;
  }
  const key = cert.publicKey;
  return {
    cert,
    der,
    cn: lastCommonName(cert.subject),
    notBefore: fields.notBefore,
    notAfter: fields.notAfter,
    isCA: cert.ca,
    signatureAlgorithmOid: fields.signatureAlgorithmOid,
    keyAlgorithm: key.asymmetricKeyType,
    rsaBits: key.asymmetricKeyType === 'rsa' ? key.asymmetricKeyDetails?.modulusLength : undefined,
  };
}

function lastCommonName(subject: string): string | undefined {
  let cn: string | undefined;
  for (const line of subject.split('\n')) if (line.startsWith('CN=')) cn = line.slice(3);
  return cn;
}

/** notary tuf/utils/x509.go CertChainToPEM: the exact text whose hash becomes the rebuilt key ID. */
export function certChainToPem(certs: readonly CertInfo[]): string {
  let out = '';
  for (const c of certs) {
    const b64 = c.der.toString('base64');
    out += '-----BEGIN CERTIFICATE-----\n';
    for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + '\n';
    out += '-----END CERTIFICATE-----\n';
  }
  return out;
}

// Signature algorithms notary refuses for root certificates (tuf/utils/x509.go ValidateCertificate):
// SHA1WithRSA, DSAWithSHA1, ECDSAWithSHA1.
export const WEAK_SIGNATURE_OIDS = new Set(['1.2.840.113549.1.1.5', '1.2.840.10040.4.3', '1.2.840.10045.4.1']);

// ---- minimal DER reader: only what the fields above need ----

interface Tlv {
  tag: number;
  start: number; // first content byte
  end: number; // one past the last content byte
}

function readTlv(buf: Buffer, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new Error('DER: truncated');
  const tag = buf[pos]!;
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > limit) throw new Error('DER: bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    p += n;
  }
  if (p + len > limit) throw new Error('DER: truncated');
  return { tag, start: p, end: p + len };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = parent.start;
  while (p < parent.end) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

function decodeOid(bytes: Buffer): string {
  const parts: number[] = [];
  let v = 0;
  for (const b of bytes) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

function decodeTime(buf: Buffer, t: Tlv): Date {
  const s = buf.subarray(t.start, t.end).toString('latin1');
  let m: RegExpMatchArray | null;
  if (t.tag === 0x17 && (m = s.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    const yy = Number(m[1]);
    // RFC 5280 4.1.2.5.1: UTCTime years 50–99 are 19xx.
    return new Date(Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, Number(m[2]) - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  }
  if (t.tag === 0x18 && (m = s.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  }
  throw new Error('DER: unsupported time');
}

function readCertFields(der: Buffer): { notBefore: Date; notAfter: Date; signatureAlgorithmOid: string } {
  const outer = readTlv(der, 0, der.length);
  const [tbs, sigAlg] = children(der, outer);
  if (!tbs || !sigAlg) throw new Error('DER: not a certificate');
  const tbsFields = children(der, tbs);
  const i = tbsFields[0]?.tag === 0xa0 ? 1 : 0; // [0] EXPLICIT version is optional
  const validity = tbsFields[i + 3];
  if (!validity) throw new Error('DER: no validity');
  const [nb, na] = children(der, validity);
  const [oid] = children(der, sigAlg);
  if (!nb || !na || !oid || oid.tag !== 0x06) throw new Error('DER: bad certificate');
  return {
    notBefore: decodeTime(der, nb),
    notAfter: decodeTime(der, na),
    signatureAlgorithmOid: decodeOid(der.subarray(oid.start, oid.end)),
  };
}
