// RFC 3161 timestamp countersignatures (the unsigned attribute io.cncf.notary.timestampSignature),
// verified as trust-store-trust-policy.md "Validate Authentic Timestamp" lists and notation-go does it
// (verifier.go verifyTimestamp, with tspclient-go): the token is CMS SignedData (RFC 5652) over a
// TSTInfo; its messageImprint must be the hash of the envelope's primitive signature; the signer's
// certificate is named by signing-certificate-v2 (RFC 5035, required) and its chain must reach the
// policy's tsa trust store and meet the timestamping certificate requirements, valid at genTime; the
// result is the stamped time with its accuracy as a [lower, upper] range (RFC 3161 2.4.2).
// Why no library: see der.ts. The signature itself is checked by node:crypto.
import { constants, createHash, verify as cryptoVerify, type X509Certificate, X509Certificate as Cert } from 'node:crypto';
import { chainProblems } from './cert-requirements.js';
import { bigInt, bool, children, DerError, expect, int, isCtx, oid, octets, parseDer, seq, T, time, type Tlv } from './der.js';
import { certInfo, isIssuedBy, isSelfSigned, subjectLine, within } from './x509.js';

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
  subjectKeyIdentifier: '2.5.29.14',
  baselinePolicy: '0.4.0.2023.1.1', // RFC 3628 5.2: accuracy of one second when none is given
};
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

class Refused extends Error {}
const refuse = (why: string): never => {
  throw new Refused(why);
};

function hashOf(algId: Tlv | undefined, what: string): string {
  const h = HASHES[oid(seq(algId, what)[0], what)];
  return h ?? refuse(`${what} is not SHA-256, SHA-384 or SHA-512`);
}

function attributes(set: Tlv): Map<string, Tlv[]> {
  const m = new Map<string, Tlv[]>();
  for (const a of children(set)) {
    const [type, values] = seq(a, 'attribute');
    const id = oid(type, 'attribute type');
    if (m.has(id)) refuse(`signed attribute ${id} appears twice`);
    m.set(id, children(expect(values, T.SET, 'attribute values')));
  }
  return m;
}

function skiOf(c: X509Certificate): Buffer | undefined {
  const e = certInfo(c).extensions.get(OID.subjectKeyIdentifier);
  return e ? octets(parseDer(e.value), 'subjectKeyIdentifier') : undefined;
}

/** Verify `signature` over `data` with `signer`'s key under the AlgorithmIdentifier `sigAlg` (CMS, OCSP, CRL). */
export function verifyCmsSignature(signer: X509Certificate, sigAlg: Tlv, digestHash: string, data: Buffer, signature: Buffer): boolean {
  const parts = seq(sigAlg, 'signatureAlgorithm');
  const alg = SIG_ALGS[oid(parts[0], 'signatureAlgorithm')] ?? refuse(`signature algorithm ${oid(parts[0])} is not allowed`);
  const key = signer.publicKey;
  try {
    if (alg.kind === 'ec') return key.asymmetricKeyType === 'ec' && cryptoVerify(alg.hash ?? digestHash, data, { key, dsaEncoding: 'der' }, signature);
    if (alg.kind === 'rsa') return key.asymmetricKeyType === 'rsa' && cryptoVerify(alg.hash ?? digestHash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    // RSASSA-PSS: RSASSA-PSS-params { [0] hashAlgorithm, [1] maskGenAlgorithm, [2] saltLength }.
    const params = parts[1] ? seq(parts[1], 'RSASSA-PSS-params') : [];
    const h = params.find((p) => isCtx(p, 0));
    const hash = h ? hashOf(children(h)[0], 'PSS hash') : refuse('RSASSA-PSS with the default SHA-1 hash is not allowed');
    const s = params.find((p) => isCtx(p, 2));
    const saltLength = s ? int(children(s)[0], 'saltLength') : 20;
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
  const [ct, content] = seq(parseDer(token), 'ContentInfo');
  if (oid(ct, 'contentType') !== OID.signedData || !isCtx(content, 0)) refuse('not a CMS SignedData');
  const sd = seq(children(content!)[0], 'SignedData');
  let i = 1; // version
  i++; // digestAlgorithms
  const [eType, eContentWrap] = seq(sd[i++], 'encapContentInfo');
  if (oid(eType, 'eContentType') !== OID.tstInfo || !isCtx(eContentWrap, 0)) refuse('the signed content is not a TSTInfo');
  const eContent = octets(children(eContentWrap!)[0], 'eContent');
  const certs: X509Certificate[] = [];
  if (isCtx(sd[i], 0)) {
    for (const c of children(sd[i++]!)) {
      if (c.tag !== T.SEQUENCE) continue; // other certificate formats are not used
      certs.push(new Cert(c.raw));
    }
  }
  if (isCtx(sd[i], 1)) i++; // crls
  const signerInfos = children(expect(sd[i], T.SET, 'signerInfos'));
  if (signerInfos.length !== 1) refuse(`a timestamp token has exactly one signer, not ${signerInfos.length}`);
  const si = seq(signerInfos[0], 'SignerInfo');
  let j = 1; // version
  const sid = si[j++]!;
  const digestHash = hashOf(si[j++], 'digestAlgorithm');
  const signedAttrs = isCtx(si[j], 0) ? si[j++]! : refuse('the signer has no signed attributes');
  const sigAlg = si[j++]!;
  const sigValue = octets(si[j++], 'signature');

  // The signer's certificate: by issuer and serial, or by subject key identifier.
  let signer: X509Certificate | undefined;
  if (isCtx(sid, 0)) {
    const ski = sid.value;
    signer = certs.find((c) => skiOf(c)?.equals(ski));
  } else {
    const [issuer, serial] = seq(sid, 'IssuerAndSerialNumber');
    const sn = bigInt(serial, 'serial');
    signer = certs.find((c) => certInfo(c).issuerRaw.equals(issuer!.raw) && certInfo(c).serial === sn);
  }
  if (!signer) refuse("the token does not carry the TSA's certificate");

  const attrs = attributes(signedAttrs!);
  const ctAttr = attrs.get(OID.contentType)?.[0];
  if (!ctAttr || oid(ctAttr) !== OID.tstInfo) refuse('the content-type attribute is not TSTInfo');
  const md = attrs.get(OID.messageDigest)?.[0];
  if (!md || !octets(md, 'messageDigest').equals(createHash(digestHash).update(eContent).digest())) refuse('the message-digest attribute does not match the TSTInfo');
  // signing-certificate-v2 (RFC 5035): the first ESSCertIDv2 must be the hash of the signer's certificate.
  const scv2 = attrs.get(OID.signingCertificateV2)?.[0] ?? refuse('the signing-certificate-v2 attribute is missing');
  const first = seq(seq(scv2, 'SigningCertificateV2')[0], 'certs')[0];
  const essId = seq(first, 'ESSCertIDv2');
  const certHashAlg = essId[0]!.tag === T.SEQUENCE ? hashOf(essId[0], 'ESSCertIDv2 hashAlgorithm') : 'sha256';
  const certHash = octets(essId[0]!.tag === T.SEQUENCE ? essId[1] : essId[0], 'certHash');
  if (!certHash.equals(createHash(certHashAlg).update(signer!.raw).digest())) refuse("signing-certificate-v2 does not name the TSA's certificate");
  // The signature is over the DER of the signed attributes as a SET (RFC 5652 5.4).
  const signedBytes = Buffer.concat([Buffer.from([0x31]), signedAttrs!.raw.subarray(1)]);
  if (!verifyCmsSignature(signer!, sigAlg, digestHash, signedBytes, sigValue)) refuse('the countersignature does not verify with the TSA certificate');

  // TSTInfo: the imprint must be of this envelope's signature.
  const tst = seq(parseDer(eContent), 'TSTInfo');
  if (int(tst[0], 'version') !== 1) refuse('TSTInfo version is not 1');
  const policy = oid(tst[1], 'policy');
  const [impAlg, impHash] = seq(tst[2], 'messageImprint');
  const impHashName = hashOf(impAlg, 'messageImprint hashAlgorithm');
  if (!octets(impHash, 'hashedMessage').equals(createHash(impHashName).update(signature).digest())) refuse('the timestamp is not of this signature (messageImprint differs)');
  const genTime = time(expect(tst[4], T.GeneralizedTime, 'genTime'), 'genTime');
  let accuracyMs = policy === OID.baselinePolicy ? 1000 : 0;
  const acc = tst.slice(5).find((t) => t.tag === T.SEQUENCE && t.cls === 0);
  if (acc) {
    accuracyMs = 0;
    // Accuracy ::= SEQUENCE { seconds INTEGER, millis [0] IMPLICIT INTEGER, micros [1] IMPLICIT INTEGER } (all optional).
    const asInt = (a: Tlv): Tlv => ({ cls: 0, constructed: false, tag: T.INTEGER, value: a.value, raw: a.raw });
    for (const a of children(acc)) {
      if (a.cls === 0 && a.tag === T.INTEGER) accuracyMs += int(a, 'seconds') * 1000;
      else if (a.cls === 2 && a.tag === 0) accuracyMs += int(asInt(a), 'millis');
      else if (a.cls === 2 && a.tag === 1) accuracyMs += int(asInt(a), 'micros') / 1000;
    }
  }
  for (const t of tst.slice(5)) if (t.tag === T.BOOLEAN && t.cls === 0) bool(t, 'ordering');

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
    if (err instanceof TypeError || (err as { code?: string }).code?.startsWith('ERR_')) return { problem: `malformed token (${(err as Error).message})` };
    throw err;
  }
}
