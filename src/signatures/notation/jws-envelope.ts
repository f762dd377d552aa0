// Notary Project JWS signature envelopes (application/jose+json), verified per
// notaryproject/specifications specs/signature-envelope-jws.md and specs/signature-specification.md.
// Pure: bytes, trust anchors and `now` in; the result of each check out. The policy (trust-policy.ts)
// decides which failed checks are fatal. JWS verification is small enough to do with node:crypto; a
// library (jose) is used to make test signatures, so the two sides are independent.
// Second part of issue 9: COSE_Sign1, referrers discovery and the proxy policy build on this.
import { X509Certificate } from 'node:crypto';
import { fail } from '../../errors.js';
import { DerError } from './der.js';
import { ALGORITHMS, evaluateEnvelope, inspectEnvelope, type Descriptor, type EnvelopeVerification, type EvaluateOptions, type InspectedEnvelope } from './envelope-checks.js';
import { certInfo } from './x509.js';

export type { Descriptor, EnvelopeVerification };
export { subjectOf } from './envelope-checks.js';

export const JWS_MEDIA_TYPE = 'application/jose+json';
export const PAYLOAD_CONTENT_TYPE = 'application/vnd.cncf.notary.payload.v1+json';
const SIGNING_SCHEME = 'io.cncf.notary.signingScheme';
const SIGNING_TIME = 'io.cncf.notary.signingTime';
const EXPIRY = 'io.cncf.notary.expiry';
const AUTHENTIC_SIGNING_TIME = 'io.cncf.notary.authenticSigningTime';
const TIMESTAMP_SIGNATURE = 'io.cncf.notary.timestampSignature';
const KNOWN_CRIT = new Set([SIGNING_SCHEME, EXPIRY, AUTHENTIC_SIGNING_TIME]);

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
 * Structure first (MALFORMED: the envelope cannot even be evaluated), then the trust-independent
 * checks (integrity), reported rather than thrown.
 */
export function inspectJwsEnvelope(bytes: Buffer): InspectedEnvelope {
  let env: { payload?: unknown; protected?: unknown; header?: Record<string, unknown>; signature?: unknown };
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
  const alg = ALGORITHMS[String(header.alg)];
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
  const unprotected = env.header ?? {};
  const x5c = unprotected.x5c;
  if (!Array.isArray(x5c) || x5c.length === 0) throw fail('MALFORMED', 'JWS unprotected header has no x5c certificate chain');
  let chain: X509Certificate[];
  try {
    chain = x5c.map((c) => new X509Certificate(Buffer.from(String(c), 'base64')));
  } catch {
    throw fail('MALFORMED', 'JWS x5c holds something that is not a certificate');
  }
  readableCertificates(chain, 'JWS x5c');
  const ts = unprotected[TIMESTAMP_SIGNATURE];
  if (ts !== undefined && (typeof ts !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(ts))) throw fail('MALFORMED', `JWS ${TIMESTAMP_SIGNATURE} is not base64`);
  const timestampToken = typeof ts === 'string' ? Buffer.from(ts, 'base64') : undefined;

  const input = Buffer.from(`${env.protected}.${env.payload}`, 'ascii');
  return inspectEnvelope({ alg, input, signature: b64url(env.signature, 'signature'), chain, target, scheme, signingTime, expiry, timestampToken });
}

/** Every certificate readable by our DER reader, or the envelope is malformed. */
export function readableCertificates(chain: X509Certificate[], what: string): void {
  try {
    chain.forEach(certInfo);
  } catch (err) {
    if (err instanceof DerError) throw fail('MALFORMED', `${what}: ${err.message}`);
    throw err;
  }
}

/** Inspect and evaluate in one step (tests, and callers that cache nothing). */
export function verifyJwsEnvelope(bytes: Buffer, anchors: readonly X509Certificate[], now: Date, o: Partial<EvaluateOptions> = {}): EnvelopeVerification {
  return evaluateEnvelope(inspectJwsEnvelope(bytes), { anchors, now, ...o });
}
