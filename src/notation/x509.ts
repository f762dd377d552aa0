// What Notation verification needs from an X.509 certificate beyond node:crypto's X509Certificate:
// the extensions with their criticality (basicConstraints with path length, keyUsage bits,
// extendedKeyUsage), revocation pointers (OCSP in authorityInfoAccess, CRL distribution points), the
// signature algorithm, the raw issuer/subject names and the subject's attributes. Read from the DER
// with der.ts; parsed once per certificate and memoised.
import { X509Certificate } from 'node:crypto';
import { bigInt, bitString, bool, children, CONTEXT, DerError, directoryString, expect, int, isCtx, oid, octets, parseDer, seq, T, time, type Tlv } from './der.js';

export const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  crlDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocspAccess: '1.3.6.1.5.5.7.48.1',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
  ekuServerAuth: '1.3.6.1.5.5.7.3.1',
  ekuClientAuth: '1.3.6.1.5.5.7.3.2',
  ekuCodeSigning: '1.3.6.1.5.5.7.3.3',
  ekuEmailProtection: '1.3.6.1.5.5.7.3.4',
  ekuTimeStamping: '1.3.6.1.5.5.7.3.8',
  ekuOcspSigning: '1.3.6.1.5.5.7.3.9',
  ekuAny: '2.5.29.37.0',
} as const;

export const EKU_NAMES: Record<string, string> = {
  [OID.ekuServerAuth]: 'serverAuth',
  [OID.ekuClientAuth]: 'clientAuth',
  [OID.ekuCodeSigning]: 'codeSigning',
  [OID.ekuEmailProtection]: 'emailProtection',
  [OID.ekuTimeStamping]: 'timeStamping',
  [OID.ekuOcspSigning]: 'OCSPSigning',
  [OID.ekuAny]: 'anyExtendedKeyUsage',
};

/** keyUsage bit positions (RFC 5280 4.2.1.3). */
export const KU = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'] as const;
export type KeyUsageName = (typeof KU)[number];

/** Signature algorithms the specification forbids in a chain (SHA-1, and weaker). */
export const WEAK_SIGNATURE_ALGORITHMS: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.2': 'md2WithRSAEncryption',
  '1.2.840.10040.4.3': 'dsa-with-sha1',
};

// Subject attribute names as Go's pkix.Name.String() (and so notation) prints them; others by OID.
const ATTRIBUTE_NAMES: Record<string, string> = {
  '2.5.4.6': 'C',
  '2.5.4.8': 'ST',
  '2.5.4.7': 'L',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.3': 'CN',
  '2.5.4.5': 'SERIALNUMBER',
  '2.5.4.9': 'STREET',
  '2.5.4.17': 'POSTALCODE',
};

export interface Extension {
  critical: boolean;
  value: Buffer;
}

export interface CertInfo {
  cert: X509Certificate;
  raw: Buffer;
  /** DER of TBSCertificate.serialNumber (the whole INTEGER TLV), and its value. */
  serialRaw: Buffer;
  serial: bigint;
  issuerRaw: Buffer;
  subjectRaw: Buffer;
  /** Subject attributes in order, e.g. [['C','US'],['ST','WA'],['O','acme'],['CN','x']]. */
  subject: Array<[string, string]>;
  /** DER of subjectPublicKeyInfo.subjectPublicKey's content (the key bits; for OCSP key hashes). */
  publicKeyBits: Buffer;
  notBefore: Date;
  notAfter: Date;
  signatureAlgorithm: string;
  extensions: Map<string, Extension>;
  basicConstraints?: { critical: boolean; ca: boolean; pathLen?: number | undefined } | undefined;
  keyUsage?: { critical: boolean; bits: Set<KeyUsageName> } | undefined;
  extKeyUsage?: { critical: boolean; oids: string[] } | undefined;
  ocspUrls: string[];
  crlUrls: string[];
}

const memo = new WeakMap<X509Certificate, CertInfo>();

/** One-line subject for messages: "CN=x, O=acme, ...". */
export const subjectLine = (c: X509Certificate): string => c.subject.replace(/\n/g, ', ');

function parseName(t: Tlv): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const rdn of seq(t, 'name')) {
    for (const atv of children(expect(rdn, T.SET, 'relative distinguished name'))) {
      const [type, value] = seq(atv, 'attribute');
      const o = oid(type, 'attribute type');
      out.push([ATTRIBUTE_NAMES[o] ?? o, directoryString(value!)]);
    }
  }
  return out;
}

function generalNameUris(names: Tlv[]): string[] {
  // GeneralName uniformResourceIdentifier is [6] IMPLICIT IA5String.
  return names.filter((n) => n.cls === CONTEXT && n.tag === 6 && !n.constructed).map((n) => n.value.toString('latin1'));
}

function parse(cert: X509Certificate): CertInfo {
  const raw = Buffer.from(cert.raw);
  try {
    const [tbs, sigAlg] = seq(parseDer(raw), 'certificate');
    const f = seq(tbs, 'tbsCertificate');
    let i = 0;
    if (isCtx(f[0], 0)) i++; // [0] EXPLICIT version
    const serialTlv = f[i++]!;
    const serial = bigInt(serialTlv, 'serial number');
    i++; // signature AlgorithmIdentifier (repeated outside)
    const issuer = expect(f[i++], T.SEQUENCE, 'issuer');
    const [nb, na] = seq(f[i++], 'validity');
    const subject = expect(f[i++], T.SEQUENCE, 'subject');
    const [, keyBits] = seq(f[i++], 'subjectPublicKeyInfo');
    const extensions = new Map<string, Extension>();
    for (; i < f.length; i++) {
      if (!isCtx(f[i], 3)) continue;
      for (const e of seq(children(f[i]!)[0], 'extensions')) {
        const parts = seq(e, 'extension');
        const id = oid(parts[0], 'extension id');
        const critical = parts.length === 3 ? bool(parts[1], 'critical') : false;
        if (extensions.has(id)) throw new DerError(`extension ${id} appears twice`);
        extensions.set(id, { critical, value: octets(parts[parts.length - 1], 'extension value') });
      }
    }
    const info: CertInfo = {
      cert,
      raw,
      serialRaw: serialTlv.raw,
      serial,
      issuerRaw: issuer.raw,
      subjectRaw: subject.raw,
      subject: parseName(subject),
      publicKeyBits: bitString(keyBits, 'subjectPublicKey').bytes,
      notBefore: time(nb, 'notBefore'),
      notAfter: time(na, 'notAfter'),
      signatureAlgorithm: oid(seq(sigAlg, 'signatureAlgorithm')[0]),
      extensions,
      ocspUrls: [],
      crlUrls: [],
    };
    const bc = extensions.get(OID.basicConstraints);
    if (bc) {
      const items = seq(parseDer(bc.value), 'basicConstraints');
      let ca = false;
      let pathLen: number | undefined;
      for (const it of items) {
        if (it.tag === T.BOOLEAN) ca = bool(it, 'cA');
        else pathLen = int(it, 'pathLenConstraint');
      }
      info.basicConstraints = { critical: bc.critical, ca, pathLen };
    }
    const ku = extensions.get(OID.keyUsage);
    if (ku) {
      const { bytes } = bitString(parseDer(ku.value), 'keyUsage');
      const bits = new Set<KeyUsageName>();
      KU.forEach((name, n) => {
        if (n < bytes.length * 8 && bytes[n >> 3]! & (0x80 >> (n & 7))) bits.add(name);
      });
      info.keyUsage = { critical: ku.critical, bits };
    }
    const eku = extensions.get(OID.extKeyUsage);
    if (eku) info.extKeyUsage = { critical: eku.critical, oids: seq(parseDer(eku.value), 'extKeyUsage').map((o) => oid(o, 'key purpose')) };
    const aia = extensions.get(OID.authorityInfoAccess);
    if (aia) {
      for (const ad of seq(parseDer(aia.value), 'authorityInfoAccess')) {
        const [method, location] = seq(ad, 'accessDescription');
        if (oid(method) === OID.ocspAccess) info.ocspUrls.push(...generalNameUris([location!]));
      }
    }
    const cdp = extensions.get(OID.crlDistributionPoints);
    if (cdp) {
      for (const dp of seq(parseDer(cdp.value), 'cRLDistributionPoints')) {
        const name = seq(dp, 'distributionPoint').find((x) => isCtx(x, 0));
        const full = name && children(name).find((x) => isCtx(x, 0));
        if (full) info.crlUrls.push(...generalNameUris(children(full)));
      }
    }
    return info;
  } catch (err) {
    if (err instanceof DerError) throw new DerError(`certificate ${subjectLine(cert)}: ${err.message}`);
    throw err;
  }
}

/** The parsed view of a certificate (throws DerError on a structure we cannot read). */
export function certInfo(cert: X509Certificate): CertInfo {
  let info = memo.get(cert);
  if (!info) {
    info = parse(cert);
    memo.set(cert, info);
  }
  return info;
}

/** Issued by: the issuer's key verifies the signature and the issuer name matches byte for byte (as Go does). */
export function isIssuedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return certInfo(child).issuerRaw.equals(certInfo(issuer).subjectRaw) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

export const isSelfSigned = (c: X509Certificate): boolean => isIssuedBy(c, c);

export const within = (c: X509Certificate, t: Date): boolean => {
  const i = certInfo(c);
  return t >= i.notBefore && t <= i.notAfter;
};
