// The checks both Notary Project envelope formats (JWS, COSE_Sign1) share once their format-specific
// parsing is done: the signature over the signing input with the leaf key, the chain up to the trust
// store, validity at now and at signing time, expiry. Each is reported, not thrown: the trust policy
// decides which are fatal (verdict.ts).
import { constants, createHash, verify as cryptoVerify, type X509Certificate } from 'node:crypto';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface SignatureAlgorithm {
  hash: string;
  kind: 'ec' | 'pss';
  curve?: string;
  width?: number;
}

/** The Notary Project's algorithms (signature-specification.md "Algorithm Selection"), by JOSE name. */
export const ALGORITHMS: Record<string, SignatureAlgorithm> = {
  ES256: { hash: 'sha256', kind: 'ec', curve: 'prime256v1', width: 32 },
  ES384: { hash: 'sha384', kind: 'ec', curve: 'secp384r1', width: 48 },
  ES512: { hash: 'sha512', kind: 'ec', curve: 'secp521r1', width: 66 },
  PS256: { hash: 'sha256', kind: 'pss' },
  PS384: { hash: 'sha384', kind: 'pss' },
  PS512: { hash: 'sha512', kind: 'pss' },
};

export interface EnvelopeVerification {
  /** The signed descriptor of the artifact this signature is for. */
  target: Descriptor;
  signingScheme: string;
  signingTime?: Date | undefined;
  expiry?: Date | undefined;
  /** Leaf first. */
  chain: X509Certificate[];
  /** The signature verifies with the leaf certificate's key over the signing input. */
  integrity: boolean;
  /** The chain is well-formed and ends at a certificate of the trust store. */
  authenticity: boolean;
  /** Every certificate of the chain is within its validity at `now` and at signing time (no TSA support yet). */
  authenticTimestamp: boolean;
  /** No expiry, or `now` is before it. */
  expiryOk: boolean;
  problems: string[];
}

export interface ParsedEnvelope {
  alg: SignatureAlgorithm;
  /** The exact bytes that were signed (JWS: protected.payload; COSE: the Sig_structure). */
  input: Buffer;
  signature: Buffer;
  chain: X509Certificate[];
  target: Descriptor;
  scheme: string;
  signingTime: Date;
  expiry?: Date | undefined;
}

export function checkEnvelope(e: ParsedEnvelope, trustAnchors: readonly X509Certificate[], now: Date): EnvelopeVerification {
  const { alg, input, signature: sig, chain, signingTime, expiry } = e;
  const problems: string[] = [];
  const key = chain[0]!.publicKey;
  let integrity = false;
  try {
    if (alg.kind === 'ec') {
      integrity = key.asymmetricKeyDetails?.namedCurve === alg.curve && sig.length === 2 * alg.width! && cryptoVerify(alg.hash, input, { key, dsaEncoding: 'ieee-p1363' }, sig);
    } else {
      const saltLength = createHash(alg.hash).digest().length; // PSS salt = hash length (RFC 7518 3.5)
      integrity = key.asymmetricKeyType === 'rsa' && cryptoVerify(alg.hash, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, sig);
    }
  } catch {
    integrity = false;
  }
  if (!integrity) problems.push('integrity: the signature does not verify with the signing certificate');

  // Authenticity: each certificate issued (and signed) by the next, the last one a trust anchor.
  let authenticity = true;
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey) || !chain[i + 1]!.ca) {
      authenticity = false;
      problems.push(`authenticity: certificate ${i} is not issued by certificate ${i + 1} of the chain`);
    }
  }
  const top = chain[chain.length - 1]!;
  if (!trustAnchors.some((a) => a.raw.equals(top.raw))) {
    authenticity = false;
    problems.push('authenticity: the chain does not end at a certificate of the trust store');
  }
  // Authentic timestamp without a TSA: the chain must be valid now and at the signing time.
  const within = (c: X509Certificate, t: Date) => t >= new Date(c.validFrom) && t <= new Date(c.validTo);
  const authenticTimestamp = chain.every((c) => within(c, now) && within(c, signingTime));
  if (!authenticTimestamp) problems.push('authenticTimestamp: a certificate of the chain is outside its validity now or at signing time');
  const expiryOk = expiry === undefined || now < expiry;
  if (!expiryOk) problems.push(`expiry: the signature expired at ${expiry!.toISOString()}`);
  return { target: e.target, signingScheme: e.scheme, signingTime, expiry, chain, integrity, authenticity, authenticTimestamp, expiryOk, problems };
}

/** A certificate subject as attribute → value (Node prints one RDN per line). */
export function subjectOf(cert: X509Certificate): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of cert.subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) m.set(line.slice(0, eq).trim().toUpperCase(), line.slice(eq + 1));
  }
  return m;
}
