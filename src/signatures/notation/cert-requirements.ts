// The Notary Project's certificate requirements (notaryproject/specifications
// specs/signature-specification.md "Certificate Requirements"), for code signing chains (the x5c /
// x5chain of a signature) and timestamping chains (the TSA's, from a countersignature). The chain
// walk follows notation-core-go x509/codesigning_cert_validations.go and
// timestamp_cert_validations.go: leaf first, each certificate issued by the next, ending at a
// self-signed root; a lone certificate must be self-signed and meet the leaf rules. Each failure is a
// sentence naming the rule; an empty list means the chain meets them all. Pure.
import type { X509Certificate } from 'node:crypto';
import { DerError } from './der.js';
import { certInfo, EKU_NAMES, isIssuedBy, isSelfSigned, OID, subjectLine, WEAK_SIGNATURE_ALGORITHMS, type CertInfo } from './x509.js';

export type ChainPurpose = 'codeSigning' | 'timeStamping';

const RULE = {
  ca: 'Certificate Requirements → Root and Intermediate CA Certificates',
  leaf: 'Certificate Requirements → Leaf Certificates',
  other: 'Certificate Requirements → Other requirements',
  alg: 'Algorithm Selection',
};

// Leaf key usages that MUST NOT be set.
const FORBIDDEN_LEAF_KU = ['keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'] as const;
// EKUs a code signing leaf MUST NOT carry (the specification's list; notation-core-go adds OCSPSigning).
const FORBIDDEN_CODESIGNING_EKU = [OID.ekuAny, OID.ekuServerAuth, OID.ekuClientAuth, OID.ekuEmailProtection, OID.ekuTimeStamping, OID.ekuOcspSigning];

/** The key specs the specification allows for a signing (or timestamping) key, and their JOSE names. */
export function keySpecOf(cert: X509Certificate): { name: string; alg: string } | undefined {
  const k = cert.publicKey;
  const d = k.asymmetricKeyDetails;
  if (k.asymmetricKeyType === 'rsa') {
    const bits = d?.modulusLength;
    return bits === 2048 ? { name: 'RSA 2048', alg: 'PS256' } : bits === 3072 ? { name: 'RSA 3072', alg: 'PS384' } : bits === 4096 ? { name: 'RSA 4096', alg: 'PS512' } : undefined;
  }
  if (k.asymmetricKeyType === 'ec') {
    const c = d?.namedCurve;
    return c === 'prime256v1' ? { name: 'EC P-256', alg: 'ES256' } : c === 'secp384r1' ? { name: 'EC P-384', alg: 'ES384' } : c === 'secp521r1' ? { name: 'EC P-521', alg: 'ES512' } : undefined;
  }
  return undefined;
}

function describeKey(cert: X509Certificate): string {
  const k = cert.publicKey;
  const d = k.asymmetricKeyDetails;
  return `${k.asymmetricKeyType}${d?.modulusLength ? ` ${d.modulusLength}` : ''}${d?.namedCurve ? ` ${d.namedCurve}` : ''}`;
}

function leafProblems(info: CertInfo, purpose: ChainPurpose, who: string): string[] {
  const p: string[] = [];
  if (info.basicConstraints?.ca) p.push(`${who}: basicConstraints, when present, must say CA false (${RULE.leaf})`);
  if (!info.keyUsage) p.push(`${who}: the keyUsage extension must be present (${RULE.leaf})`);
  else {
    if (purpose === 'codeSigning' && !info.keyUsage.critical) p.push(`${who}: the keyUsage extension must be critical (${RULE.leaf})`);
    if (!info.keyUsage.bits.has('digitalSignature')) p.push(`${who}: keyUsage must include digitalSignature (${RULE.leaf})`);
    const extra = FORBIDDEN_LEAF_KU.filter((k) => info.keyUsage!.bits.has(k));
    if (extra.length) p.push(`${who}: keyUsage must not include ${extra.join(', ')} (${RULE.leaf})`);
  }
  const eku = info.extKeyUsage;
  if (purpose === 'codeSigning') {
    const bad = (eku?.oids ?? []).filter((o) => FORBIDDEN_CODESIGNING_EKU.includes(o as never));
    if (bad.length) p.push(`${who}: extendedKeyUsage must not contain ${bad.map((o) => EKU_NAMES[o]).join(', ')} (${RULE.leaf})`);
  } else {
    // RFC 3161 2.3: exactly id-kp-timeStamping, in a critical extension.
    if (!eku || eku.oids.length !== 1 || eku.oids[0] !== OID.ekuTimeStamping) p.push(`${who}: extendedKeyUsage must be present and contain only timeStamping (${RULE.leaf}; RFC 3161 2.3)`);
    else if (!eku.critical) p.push(`${who}: the extendedKeyUsage extension must be critical (${RULE.leaf}; RFC 3161 2.3)`);
  }
  if (!keySpecOf(info.cert)) p.push(`${who}: key ${describeKey(info.cert)} is not allowed (RSA 2048/3072/4096 or EC P-256/P-384/P-521) (${RULE.alg}; ${RULE.leaf} key length)`);
  return p;
}

function caProblems(info: CertInfo, purpose: ChainPurpose, who: string, below: number): string[] {
  const p: string[] = [];
  const bc = info.basicConstraints;
  if (!bc || !bc.ca) p.push(`${who}: basicConstraints must be present with CA true (${RULE.ca})`);
  else {
    if (!bc.critical) p.push(`${who}: the basicConstraints extension must be critical (${RULE.ca})`);
    // pathLenConstraint counts the CA certificates that may follow below this one (not the leaf).
    if (bc.pathLen !== undefined && bc.pathLen < below) p.push(`${who}: pathLenConstraint ${bc.pathLen} is exceeded by ${below} CA certificate(s) below it (${RULE.ca})`);
  }
  if (!info.keyUsage) p.push(`${who}: the keyUsage extension must be present (${RULE.ca})`);
  else {
    if (purpose === 'codeSigning' && !info.keyUsage.critical) p.push(`${who}: the keyUsage extension must be critical (${RULE.ca})`);
    if (!info.keyUsage.bits.has('keyCertSign')) p.push(`${who}: keyUsage must include keyCertSign (${RULE.ca})`);
  }
  return p;
}

/**
 * Every rule the chain breaks, each naming it. `chain` is leaf first, as in the envelope (or as built
 * for a timestamp token).
 */
export function chainProblems(chain: readonly X509Certificate[], purpose: ChainPurpose): string[] {
  const kind = purpose === 'codeSigning' ? 'signing' : 'timestamping';
  if (chain.length === 0) return [`the ${kind} certificate chain is empty`];
  const problems: string[] = [];
  let infos: CertInfo[];
  try {
    infos = chain.map(certInfo);
  } catch (err) {
    if (err instanceof DerError) return [`${kind} certificate chain: ${err.message}`];
    throw err;
  }
  infos.forEach((info, i) => {
    const who = `${i === 0 ? `${kind} leaf` : i === chain.length - 1 ? 'root' : 'intermediate'} certificate ${subjectLine(info.cert)}`;
    const weak = WEAK_SIGNATURE_ALGORITHMS[info.signatureAlgorithm];
    if (weak) problems.push(`${who}: signed with ${weak}, which must not be used (${RULE.other})`);
    if (chain.length === 1) {
      if (!isSelfSigned(info.cert)) problems.push(`${who}: a chain of one certificate must be self-signed (${RULE.other})`);
      problems.push(...leafProblems(info, purpose, who));
      return;
    }
    if (i === chain.length - 1) {
      if (!isSelfSigned(info.cert)) problems.push(`${who}: the chain must end with a self-signed root certificate (${RULE.other})`);
    } else {
      if (isSelfSigned(info.cert)) problems.push(`${who}: only the last certificate of the chain may be self-signed (${RULE.other})`);
      else if (!isIssuedBy(info.cert, chain[i + 1]!)) problems.push(`${who}: is not issued by the next certificate of the chain, ${subjectLine(chain[i + 1]!)} (${RULE.other}: ordered, no unrelated certificates)`);
    }
    problems.push(...(i === 0 ? leafProblems(info, purpose, who) : caProblems(info, purpose, who, i - 1)));
  });
  return problems;
}
