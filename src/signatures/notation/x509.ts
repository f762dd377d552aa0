// What Notation verification needs from an X.509 certificate beyond node:crypto's X509Certificate:
// the extensions with their criticality (basicConstraints with path length, keyUsage bits,
// extendedKeyUsage), revocation pointers (OCSP in authorityInfoAccess, CRL distribution points), the
// signature algorithm, the raw issuer/subject names and the subject's attributes. Parsed once per
// certificate (memoised) by @sigstore/core's X509Certificate, which npm's provenance checks run on:
// its ASN1Obj tree, extension list, `extension(oid)` (criticality, value) and keyUsage bits. What it
// does not decode (extendedKeyUsage, authorityInfoAccess, cRLDistributionPoints, name attributes) is
// read here from the same ASN1Obj tree. Signatures stay with node:crypto (OpenSSL): `isIssuedBy`
// uses node:crypto's X509Certificate.verify, which covers RSA-PSS and every curve; sigstore's
// `verify` names only RSA PKCS#1 v1.5 and ECDSA hashes.
import { X509Certificate } from 'node:crypto';
import { X509Certificate as Asn1Certificate, type ASN1Obj } from '@sigstore/core';
import { DerError, expect, inner, isCtx, oid, seq, T, time, tlvOf } from './der.js';

export const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  crlDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocspAccess: '1.3.6.1.5.5.7.48.1',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
  subjectKeyIdentifier: '2.5.29.14',
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
// node:crypto's `subject` is no substitute: OpenSSL's short names (serialNumber, street) and RFC 2253
// escaping differ from Go's.
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

/** The one DER value an extension's OCTET STRING holds. */
function extValue(asn1: Asn1Certificate, id: string, what: string): ASN1Obj | undefined {
  const e = asn1.extension(id);
  return e ? inner(e.valueObj, what) : undefined;
}

function directoryString(o: ASN1Obj): string {
  switch (o.tag.number) {
    case T.UTF8String:
      return o.value.toString('utf8');
    case T.BMPString:
      return Buffer.from(o.value).swap16().toString('utf16le');
    default: // PrintableString, IA5String, T61String and anything else, as before
      return o.value.toString('latin1');
  }
}

function parseName(name: ASN1Obj): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const rdn of seq(name, 'name')) {
    for (const atv of expect(rdn, T.SET, 'relative distinguished name').subs) {
      const [type, value] = seq(atv, 'attribute');
      const o = oid(type, 'attribute type');
      out.push([ATTRIBUTE_NAMES[o] ?? o, directoryString(value!)]);
    }
  }
  return out;
}

// GeneralName uniformResourceIdentifier is [6] IMPLICIT IA5String.
const generalNameUris = (names: ASN1Obj[]): string[] => names.filter((n) => isCtx(n, 6) && !n.tag.constructed).map((n) => n.value.toString('latin1'));

function parse(cert: X509Certificate): CertInfo {
  const raw = Buffer.from(cert.raw);
  try {
    // node:crypto (OpenSSL) has already accepted the DER; sigstore reads the same bytes into a tree.
    const asn1 = Asn1Certificate.parse(raw);
    const [tbs, sigAlg] = seq(asn1.root, 'certificate');
    // Indexed here rather than through sigstore's notBefore/subject/... getters, which assume the
    // [0] version field is present (they would misread a v1 trust anchor).
    const f = seq(tbs, 'tbsCertificate');
    const i = isCtx(f[0], 0) ? 1 : 0;
    const [serialObj, , issuer, validity, subject, spki] = f.slice(i);
    expect(serialObj, T.INTEGER, 'serial number');
    const [nb, na] = seq(validity, 'validity');
    const keyBits = seq(spki, 'subjectPublicKeyInfo')[1];
    if (expect(keyBits, T.BIT_STRING, 'subjectPublicKey').value.length === 0) throw new DerError('subjectPublicKey: malformed');
    const extensions = new Map<string, Extension>();
    for (const e of asn1.extensions) {
      const id = oid(seq(e, 'extension')[0], 'extension id');
      if (extensions.has(id)) throw new DerError(`extension ${id} appears twice`);
      const x = asn1.extension(id)!;
      extensions.set(id, { critical: x.critical, value: x.value });
    }
    const info: CertInfo = {
      cert,
      raw,
      serialRaw: tlvOf(serialObj!),
      serial: serialObj!.toInteger(),
      issuerRaw: tlvOf(expect(issuer, T.SEQUENCE, 'issuer')),
      subjectRaw: tlvOf(expect(subject, T.SEQUENCE, 'subject')),
      subject: parseName(subject!),
      publicKeyBits: keyBits!.value.subarray(1),
      notBefore: time(nb, 'notBefore'),
      notAfter: time(na, 'notAfter'),
      signatureAlgorithm: oid(seq(sigAlg, 'signatureAlgorithm')[0], 'signatureAlgorithm'),
      extensions,
      ocspUrls: [],
      crlUrls: [],
    };
    // basicConstraints read from its SEQUENCE: sigstore's `isCA` throws when cA is omitted (DER's
    // encoding of the default FALSE) and a pathLenConstraint follows.
    const bc = extValue(asn1, OID.basicConstraints, 'basicConstraints');
    if (bc) {
      let ca = false;
      let pathLen: number | undefined;
      for (const it of seq(bc, 'basicConstraints')) {
        if (it.tag.isBoolean()) ca = it.toBoolean();
        else pathLen = Number(it.toInteger());
      }
      info.basicConstraints = { critical: extensions.get(OID.basicConstraints)!.critical, ca, pathLen };
    }
    // sigstore names the keyUsage extension `extKeyUsage`; its bit string comes decoded, one entry per bit.
    const ku = asn1.extKeyUsage;
    if (ku) {
      const bitList = extValue(asn1, OID.keyUsage, 'keyUsage')!.toBitString();
      info.keyUsage = { critical: ku.critical, bits: new Set(KU.filter((_, n) => bitList[n] === 1)) };
    }
    const eku = extValue(asn1, OID.extKeyUsage, 'extKeyUsage');
    if (eku) info.extKeyUsage = { critical: extensions.get(OID.extKeyUsage)!.critical, oids: seq(eku, 'extKeyUsage').map((o) => oid(o, 'key purpose')) };
    const aia = extValue(asn1, OID.authorityInfoAccess, 'authorityInfoAccess');
    for (const ad of aia ? seq(aia, 'authorityInfoAccess') : []) {
      const [method, location] = seq(ad, 'accessDescription');
      if (oid(method, 'accessMethod') === OID.ocspAccess && location) info.ocspUrls.push(...generalNameUris([location]));
    }
    const cdp = extValue(asn1, OID.crlDistributionPoints, 'cRLDistributionPoints');
    for (const dp of cdp ? seq(cdp, 'cRLDistributionPoints') : []) {
      const name = seq(dp, 'distributionPoint').find((x) => isCtx(x, 0));
      const full = name?.subs.find((x) => isCtx(x, 0));
      if (full) info.crlUrls.push(...generalNameUris(full.subs));
    }
    return info;
  } catch (err) {
    // Every way the reader can fail (sigstore's ASN1ParseError/ASN1TypeError, a missing element read
    // as undefined, our DerError) is one thing to callers: a structure we cannot read, so a refusal.
    if (err instanceof Error) throw new DerError(`certificate ${subjectLine(cert)}: ${err.message}`);
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
