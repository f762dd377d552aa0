// RFC 3161 timestamp countersignatures (the unsigned attribute io.cncf.notary.timestampSignature),
// verified as trust-store-trust-policy.md "Validate Authentic Timestamp" lists and notation-go does it
// (verifier.go verifyTimestamp, with tspclient-go): the token is CMS SignedData (RFC 5652) over a
// TSTInfo; its messageImprint must be the hash of the envelope's primitive signature; the signer's
// certificate is named by signing-certificate-v2 (RFC 5035, required) and its chain must reach the
// policy's tsa trust store and meet the timestamping certificate requirements, valid at genTime; the
// result is the stamped time with its accuracy as a [lower, upper] range (RFC 3161 2.4.2).
//
// Parsed by @sigstore/core's RFC3161Timestamp (contentType, eContentType, TSTInfo's version and
// messageImprint, the signer's digest algorithm and signature value) over its ASN1Obj tree. Its
// `verify()` is not used, because it (1) names the signature hash for ECDSA only (an RSA TSA's,
// RSASSA-PSS's, is left undefined), (2) neither finds the signer's certificate nor checks the
// signing-certificate-v2 and content-type attributes, (3) hashes a re-encoding of TSTInfo rather than
// the bytes received, and (4) expects a TimeStampResp where Notation carries the bare token. Its
// genTime drops fractional seconds (and refuses any but three digits), and it has no accuracy; those,
// the attributes and the chain are read here. The signature itself is checked by node:crypto.
import { constants, createHash, verify as cryptoVerify, type X509Certificate, X509Certificate as Cert } from 'node:crypto';
import { type ASN1Obj, RFC3161Timestamp } from '@sigstore/core';
import { chainProblems } from './cert-requirements.js';
import { bigInt, DerError, encSeq, expect, isCtx, isUniversal, octets, oid, parseDer, seq, T, time, tlvOf, uint } from './der.js';
import { certInfo, isIssuedBy, isSelfSigned, OID as X509_OID, subjectLine, within } from './x509.js';

export interface VerifiedTimestamp {
  genTime: Date;
  accuracyMs: number;
  lower: Date;
  upper: Date;
  /** The TSA's chain, leaf first, ending at a self-signed root; one of them is in the tsa trust store. */
  tsaChain: X509Certificate[];
}

const OID = {
  signedData: '1.2.840.113549.1.7.2',
  tstInfo: '1.2.840.113549.1.9.16.1.4',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingCertificateV2: '1.2.840.113549.1.9.16.2.47',
  baselinePolicy: '0.4.0.2023.1.1', // RFC 3628 5.2: accuracy of one second when none is given
};
// The same three as @sigstore/core's SHA2_HASH_ALGOS (which it does not export).
const HASHES: Record<string, string> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
// Signature algorithms a TSA may use: RSA (PKCS #1 v1.5 or PSS) and ECDSA, with SHA-2 only.
const SIG_ALGS: Record<string, { kind: 'rsa' | 'pss' | 'ec'; hash?: string }> = {
  '1.2.840.113549.1.1.1': { kind: 'rsa' },
  '1.2.840.113549.1.1.11': { kind: 'rsa', hash: 'sha256' },
  '1.2.840.113549.1.1.12': { kind: 'rsa', hash: 'sha384' },
  '1.2.840.113549.1.1.13': { kind: 'rsa', hash: 'sha512' },
  '1.2.840.113549.1.1.10': { kind: 'pss' },
  '1.2.840.10045.2.1': { kind: 'ec' },
  '1.2.840.10045.4.3.2': { kind: 'ec', hash: 'sha256' },
  '1.2.840.10045.4.3.3': { kind: 'ec', hash: 'sha384' },
  '1.2.840.10045.4.3.4': { kind: 'ec', hash: 'sha512' },
};
const MAX_CHAIN = 8;
// A TimeStampResp's PKIStatusInfo { status granted }: RFC3161Timestamp parses a response, not a token.
const GRANTED = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]);

class Refused extends Error {}
const refuse = (why: string): never => {
  throw new Refused(why);
};
function hashOf(algId: ASN1Obj | undefined, what: string): string {
  const h = HASHES[oid(seq(algId, what)[0], what)];
  return h ?? refuse(`${what} is not SHA-256, SHA-384 or SHA-512`);
}

function attributes(set: ASN1Obj): Map<string, ASN1Obj[]> {
  const m = new Map<string, ASN1Obj[]>();
  for (const a of set.subs) {
    const [type, values] = expect(a, T.SEQUENCE, 'attribute').subs;
    const id = oid(type, 'attribute type');
    if (m.has(id)) refuse(`signed attribute ${id} appears twice`);
    m.set(id, expect(values, T.SET, 'attribute values').subs);
  }
  return m;
}

function skiOf(c: X509Certificate): Buffer | undefined {
  const e = certInfo(c).extensions.get(X509_OID.subjectKeyIdentifier);
  return e ? octets(parseDer(e.value, 'subjectKeyIdentifier'), 'subjectKeyIdentifier') : undefined;
}

/** Verify `signature` over `data` with `signer`'s key under the AlgorithmIdentifier `sigAlg` (CMS, OCSP, CRL). */
export function verifyCmsSignature(signer: X509Certificate, sigAlg: ASN1Obj, digestHash: string, data: Buffer, signature: Buffer): boolean {
  const parts = expect(sigAlg, T.SEQUENCE, 'signatureAlgorithm').subs;
  const id = oid(parts[0], 'signatureAlgorithm');
  const alg = SIG_ALGS[id] ?? refuse(`signature algorithm ${id} is not allowed`);
  const key = signer.publicKey;
  try {
    if (alg.kind === 'ec') return key.asymmetricKeyType === 'ec' && cryptoVerify(alg.hash ?? digestHash, data, { key, dsaEncoding: 'der' }, signature);
    if (alg.kind === 'rsa') return key.asymmetricKeyType === 'rsa' && cryptoVerify(alg.hash ?? digestHash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    // RSASSA-PSS: RSASSA-PSS-params { [0] hashAlgorithm, [1] maskGenAlgorithm, [2] saltLength }.
    const params = parts[1] ? expect(parts[1], T.SEQUENCE, 'RSASSA-PSS-params').subs : [];
    const h = params.find((p) => isCtx(p, 0));
    const hash = h ? hashOf(h.subs[0], 'PSS hash') : refuse('RSASSA-PSS with the default SHA-1 hash is not allowed');
    const s = params.find((p) => isCtx(p, 2));
    const saltLength = s ? uint(expect(s.subs[0], T.INTEGER, 'saltLength'), 'saltLength') : 20;
    return key.asymmetricKeyType === 'rsa' && cryptoVerify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, signature);
  } catch (err) {
    if (err instanceof Refused) throw err;
    return false;
  }
}

/** From the TSA's certificate up to a self-signed root, with the certificates the token carries and the trust store's. */
function buildChain(leaf: X509Certificate, pool: readonly X509Certificate[]): X509Certificate[] {
  const chain = [leaf];
  while (!isSelfSigned(chain[chain.length - 1]!)) {
    if (chain.length >= MAX_CHAIN) refuse('the timestamping certificate chain is too long');
    const cur = chain[chain.length - 1]!;
    const parent = pool.find((p) => !chain.some((c) => c.raw.equals(p.raw)) && isIssuedBy(cur, p));
    if (!parent) refuse(`no issuer of ${subjectLine(cur)} among the token's certificates and the tsa trust store`);
    chain.push(parent!);
  }
  return chain;
}

function verify(token: Buffer, signature: Buffer, anchors: readonly X509Certificate[]): VerifiedTimestamp {
  const ts = RFC3161Timestamp.parse(encSeq(GRANTED, token) as Buffer<ArrayBuffer>);
  // Exactly the token inside the wrapper: trailing bytes after it would be a further element.
  if (ts.root.subs.length !== 2) refuse('the timestamp token is not exactly one DER value');
  const [, content] = ts.root.subs[1]!.subs;
  if (!isCtx(content, 0) || !isUniversal(ts.root.subs[1]!.subs[0], T.OID) || ts.contentType !== OID.signedData) refuse('not a CMS SignedData');
  const sd = expect(content!.subs[0], T.SEQUENCE, 'SignedData').subs;
  if (!isUniversal(seq(sd[2], 'encapContentInfo')[0], T.OID) || ts.eContentType !== OID.tstInfo || !isCtx(sd[2]!.subs[1], 0)) refuse('the signed content is not a TSTInfo');
  const eContentOctets = expect(sd[2]!.subs[1]!.subs[0], T.OCTET_STRING, 'eContent');
  const eContent = eContentOctets.value;
  const certs: X509Certificate[] = [];
  let i = 3;
  if (isCtx(sd[i], 0)) {
    for (const c of sd[i++]!.subs) {
      if (!isUniversal(c, T.SEQUENCE)) continue; // other certificate formats are not used
      certs.push(new Cert(tlvOf(c)));
    }
  }
  if (isCtx(sd[i], 1)) i++; // crls
  const signerInfos = expect(sd[i], T.SET, 'signerInfos').subs;
  if (signerInfos.length !== 1) refuse(`a timestamp token has exactly one signer, not ${signerInfos.length}`);
  // SignerInfo { version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature, ... }:
  // sigstore's accessors index it so, which holds once signedAttrs is known to be there.
  const si = expect(signerInfos[0], T.SEQUENCE, 'SignerInfo').subs;
  const sid = si[1]!;
  const digestHash = hashOf(si[2], 'digestAlgorithm');
  const signedAttrs = isCtx(si[3], 0) ? si[3] : refuse('the signer has no signed attributes');
  const sigValue = octets(si[5], 'signature'); // = ts.signatureValue

  // The signer's certificate: by issuer and serial, or by subject key identifier.
  let signer: X509Certificate | undefined;
  if (isCtx(sid, 0)) {
    const ski = sid.value;
    signer = certs.find((c) => skiOf(c)?.equals(ski));
  } else {
    const [issuer, serial] = expect(sid, T.SEQUENCE, 'IssuerAndSerialNumber').subs;
    const issuerRaw = tlvOf(issuer!);
    const sn = bigInt(serial, 'serial');
    signer = certs.find((c) => certInfo(c).issuerRaw.equals(issuerRaw) && certInfo(c).serial === sn);
  }
  if (!signer) refuse("the token does not carry the TSA's certificate");

  const attrs = attributes(signedAttrs!);
  const ctAttr = attrs.get(OID.contentType)?.[0];
  if (!ctAttr || oid(ctAttr) !== OID.tstInfo) refuse('the content-type attribute is not TSTInfo');
  const md = attrs.get(OID.messageDigest)?.[0];
  if (!md || !octets(md, 'messageDigest').equals(createHash(digestHash).update(eContent).digest())) refuse('the message-digest attribute does not match the TSTInfo');
  // signing-certificate-v2 (RFC 5035): the first ESSCertIDv2 must be the hash of the signer's certificate.
  const scv2 = attrs.get(OID.signingCertificateV2)?.[0] ?? refuse('the signing-certificate-v2 attribute is missing');
  const first = expect(expect(scv2, T.SEQUENCE, 'SigningCertificateV2').subs[0], T.SEQUENCE, 'certs').subs[0];
  const essId = expect(first, T.SEQUENCE, 'ESSCertIDv2').subs;
  const explicitAlg = isUniversal(essId[0], T.SEQUENCE);
  const certHashAlg = explicitAlg ? hashOf(essId[0], 'ESSCertIDv2 hashAlgorithm') : 'sha256';
  const certHash = octets(explicitAlg ? essId[1] : essId[0], 'certHash');
  if (!certHash.equals(createHash(certHashAlg).update(signer!.raw).digest())) refuse("signing-certificate-v2 does not name the TSA's certificate");
  // The signature is over the DER of the signed attributes as a SET (RFC 5652 5.4): the bytes received, retagged.
  if (!verifyCmsSignature(signer!, si[4]!, digestHash, tlvOf(signedAttrs!, 0x31), sigValue)) refuse('the countersignature does not verify with the TSA certificate');

  // TSTInfo: the imprint must be of this envelope's signature.
  if (eContentOctets.subs.length !== 1) refuse('eContent is not one TSTInfo');
  const tstInfo = ts.tstInfo;
  const tst = expect(tstInfo.root, T.SEQUENCE, 'TSTInfo').subs;
  if (!tst[0]?.tag.isInteger() || tstInfo.version !== 1n) refuse('TSTInfo version is not 1');
  const policy = oid(tst[1], 'policy');
  hashOf(expect(tst[2], T.SEQUENCE, 'messageImprint').subs[0], 'messageImprint hashAlgorithm');
  const impHashName = tstInfo.messageImprintHashAlgorithm;
  if (!octets(tst[2]!.subs[1], 'hashedMessage').equals(createHash(impHashName).update(signature).digest())) refuse('the timestamp is not of this signature (messageImprint differs)');
  const genTime = time(expect(tst[4], T.GeneralizedTime, 'genTime'), 'genTime');
  let accuracyMs = policy === OID.baselinePolicy ? 1000 : 0;
  const acc = tst.slice(5).find((t) => isUniversal(t, T.SEQUENCE));
  if (acc) {
    accuracyMs = 0;
    // Accuracy ::= SEQUENCE { seconds INTEGER, millis [0] IMPLICIT INTEGER, micros [1] IMPLICIT INTEGER } (all optional).
    for (const a of acc.subs) {
      if (a.tag.isInteger()) accuracyMs += uint(a, 'seconds') * 1000;
      else if (a.tag.isContextSpecific(0)) accuracyMs += uint(a, 'millis');
      else if (a.tag.isContextSpecific(1)) accuracyMs += uint(a, 'micros') / 1000;
    }
  }
  for (const t of tst.slice(5)) if (t.tag.isBoolean()) t.toBoolean(); // ordering: read, not used

  // The TSA's chain: to a certificate of the tsa trust store, valid at genTime, meeting the
  // timestamping certificate requirements.
  const chain = buildChain(signer!, [...certs, ...anchors]);
  if (!chain.some((c) => anchors.some((a) => a.raw.equals(c.raw)))) refuse('the timestamping chain does not reach a certificate of the tsa trust store');
  for (const c of chain) if (!within(c, genTime)) refuse(`timestamping certificate ${subjectLine(c)} was not valid at ${genTime.toISOString()}`);
  const problems = chainProblems(chain, 'timeStamping');
  if (problems.length) refuse(problems.join('; '));
  return { genTime, accuracyMs, lower: new Date(genTime.getTime() - accuracyMs), upper: new Date(genTime.getTime() + accuracyMs), tsaChain: chain };
}

/** Verify `token` as a timestamp of `signature` by a TSA of `anchors`; a problem (sentence) if it is not one. */
export function verifyTimestampToken(token: Buffer, signature: Buffer, anchors: readonly X509Certificate[]): VerifiedTimestamp | { problem: string } {
  if (anchors.length === 0) return { problem: 'the tsa trust store holds no certificates' };
  try {
    return verify(token, signature, anchors);
  } catch (err) {
    if (err instanceof Refused || err instanceof DerError) return { problem: err.message };
    // Anything else the reader throws (sigstore's ASN1ParseError/ASN1TypeError, an element read as
    // undefined, node:crypto's ERR_* on certificate bytes, our DerError) means the token is malformed.
    if (err instanceof Error) return { problem: `malformed token (${err.message})` };
    throw err;
  }
}
