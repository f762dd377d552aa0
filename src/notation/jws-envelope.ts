// Notary Project JWS signature envelopes (application/jose+json), verified per
// notaryproject/specifications specs/signature-envelope-jws.md and specs/signature-specification.md.
// Pure: bytes, trust anchors and `now` in; the result of each check out. The policy (trust-policy.ts)
// decides which failed checks are fatal. JWS verification is small enough to do with node:crypto; a
// library (jose) is used to make test signatures, so the two sides are independent.
// Second part of issue 9: COSE_Sign1, referrers discovery and the proxy policy build on this.
import { constants, createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { fail } from '../errors.js';

export const JWS_MEDIA_TYPE = 'application/jose+json';
export const PAYLOAD_CONTENT_TYPE = 'application/vnd.cncf.notary.payload.v1+json';
const SIGNING_SCHEME = 'io.cncf.notary.signingScheme';
const SIGNING_TIME = 'io.cncf.notary.signingTime';
const EXPIRY = 'io.cncf.notary.expiry';
const AUTHENTIC_SIGNING_TIME = 'io.cncf.notary.authenticSigningTime';
const KNOWN_CRIT = new Set([SIGNING_SCHEME, EXPIRY, AUTHENTIC_SIGNING_TIME]);

const ALGS: Record<string, { hash: string; kind: 'ec' | 'pss'; curve?: string; width?: number }> = {
  ES256: { hash: 'sha256', kind: 'ec', curve: 'prime256v1', width: 32 },
  ES384: { hash: 'sha384', kind: 'ec', curve: 'secp384r1', width: 48 },
  ES512: { hash: 'sha512', kind: 'ec', curve: 'secp521r1', width: 66 },
  PS256: { hash: 'sha256', kind: 'pss' },
  PS384: { hash: 'sha384', kind: 'pss' },
  PS512: { hash: 'sha512', kind: 'pss' },
};

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface JwsVerification {
  /** The signed descriptor of the artifact this signature is for. */
  target: Descriptor;
  signingScheme: string;
  signingTime?: Date | undefined;
  expiry?: Date | undefined;
  /** Leaf first, as in x5c. */
  chain: X509Certificate[];
  /** The signature verifies with the leaf certificate's key over the protected header and payload. */
  integrity: boolean;
  /** The chain is well-formed and ends at a certificate of the trust store. */
  authenticity: boolean;
  /** Every certificate of the chain is within its validity at `now` (no timestamp authority support yet). */
  authenticTimestamp: boolean;
  /** No expiry, or `now` is before it. */
  expiryOk: boolean;
  problems: string[];
}

const b64url = (s: unknown, what: string): Buffer => {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) throw fail('MALFORMED', `JWS ${what} is not base64url`);
  return Buffer.from(s, 'base64url');
};

function time(v: unknown, what: string): Date {
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isFinite(t)) throw fail('MALFORMED', `JWS ${what} is not an RFC 3339 time`);
  return new Date(t);
}

/**
 * Structure first (MALFORMED: the envelope cannot even be evaluated), then each check is reported, not
 * thrown, so the trust policy can enforce or log it.
 */
export function verifyJwsEnvelope(bytes: Buffer, trustAnchors: readonly X509Certificate[], now: Date): JwsVerification {
  let env: { payload?: unknown; protected?: unknown; header?: { x5c?: unknown }; signature?: unknown };
  try {
    env = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw fail('MALFORMED', 'JWS envelope is not JSON');
  }
  const protectedRaw = b64url(env.protected, 'protected header');
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(protectedRaw.toString('utf8'));
  } catch {
    throw fail('MALFORMED', 'JWS protected header is not JSON');
  }
  const alg = ALGS[String(header.alg)];
  if (!alg) throw fail('MALFORMED', `JWS alg ${JSON.stringify(header.alg)} is not one the Notary Project allows`);
  if (header.cty !== PAYLOAD_CONTENT_TYPE) throw fail('MALFORMED', `JWS cty must be ${PAYLOAD_CONTENT_TYPE}`);
  const scheme = header[SIGNING_SCHEME];
  if (scheme !== 'notary.x509' && scheme !== 'notary.x509.signingAuthority') throw fail('MALFORMED', 'JWS signing scheme must be notary.x509 or notary.x509.signingAuthority');
  // RFC 7515 4.1.11: every crit name must be understood and present; the Notary Project requires the
  // signing scheme (and expiry, when present) to be critical.
  const crit = header.crit;
  if (!Array.isArray(crit) || !crit.includes(SIGNING_SCHEME)) throw fail('MALFORMED', `JWS crit must list ${SIGNING_SCHEME}`);
  for (const c of crit) {
    if (typeof c !== 'string' || !(c in header)) throw fail('MALFORMED', `JWS crit lists ${JSON.stringify(c)}, absent from the protected header`);
    // Extended critical attributes are for plugins; with none, an attribute we do not understand is
    // a reason to refuse, never to ignore (fail closed).
    if (!KNOWN_CRIT.has(c)) throw fail('MALFORMED', `JWS critical header ${JSON.stringify(c)} is not understood`);
  }
  if (EXPIRY in header && !crit.includes(EXPIRY)) throw fail('MALFORMED', `JWS ${EXPIRY} must be critical`);
  const signingTime = scheme === 'notary.x509' ? time(header[SIGNING_TIME], SIGNING_TIME) : time(header[AUTHENTIC_SIGNING_TIME], AUTHENTIC_SIGNING_TIME);
  const expiry = EXPIRY in header ? time(header[EXPIRY], EXPIRY) : undefined;

  const payloadRaw = b64url(env.payload, 'payload');
  let target: Descriptor;
  try {
    target = (JSON.parse(payloadRaw.toString('utf8')) as { targetArtifact: Descriptor }).targetArtifact;
  } catch {
    throw fail('MALFORMED', 'JWS payload is not JSON');
  }
  if (!target || typeof target.digest !== 'string' || typeof target.size !== 'number' || typeof target.mediaType !== 'string') {
    throw fail('MALFORMED', 'JWS payload has no targetArtifact descriptor');
  }
  const x5c = env.header?.x5c;
  if (!Array.isArray(x5c) || x5c.length === 0) throw fail('MALFORMED', 'JWS unprotected header has no x5c certificate chain');
  let chain: X509Certificate[];
  try {
    chain = x5c.map((c) => new X509Certificate(Buffer.from(String(c), 'base64')));
  } catch {
    throw fail('MALFORMED', 'JWS x5c holds something that is not a certificate');
  }

  const problems: string[] = [];
  // Integrity: signature over ASCII(protected '.' payload), with the leaf's key and the alg's padding.
  const input = Buffer.from(`${env.protected}.${env.payload}`, 'ascii');
  const sig = b64url(env.signature, 'signature');
  const key = chain[0]!.publicKey;
  let integrity = false;
  try {
    if (alg.kind === 'ec') {
      integrity = key.asymmetricKeyDetails?.namedCurve === alg.curve && sig.length === 2 * alg.width! && cryptoVerify(alg.hash, input, { key, dsaEncoding: 'ieee-p1363' }, sig);
    } else {
      const digestLen = createHash(alg.hash).digest().length;
      integrity = key.asymmetricKeyType === 'rsa' && cryptoVerify(alg.hash, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: digestLen }, sig);
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
  return { target, signingScheme: scheme, signingTime, expiry, chain, integrity, authenticity, authenticTimestamp, expiryOk, problems };
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
