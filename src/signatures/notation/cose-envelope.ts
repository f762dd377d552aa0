// Notary Project COSE_Sign1 envelopes (application/cose), per notaryproject/specifications
// specs/signature-envelope-cose.md: CBOR decoded with cborg (a well-kept, dependency-free library;
// strict: unknown tags are refused), the COSE structure and Sig_structure (RFC 9052 4.4) checked
// here, then the checks shared with JWS.
import { X509Certificate } from 'node:crypto';
import { decode as cborDecode, encode as cborEncode, type TagDecoder } from 'cborg';
import { fail } from '../../errors.js';
import { ALGORITHMS, evaluateEnvelope, inspectEnvelope, type Descriptor, type EnvelopeVerification, type EvaluateOptions, type InspectedEnvelope } from './envelope-checks.js';
import { readableCertificates } from './jws-envelope.js';

export const COSE_MEDIA_TYPE = 'application/cose';
const PAYLOAD_CONTENT_TYPE = 'application/vnd.cncf.notary.payload.v1+json';
// RFC 9053 algorithm identifiers the Notary Project allows.
const COSE_ALGS: Record<number, string> = { [-7]: 'ES256', [-35]: 'ES384', [-36]: 'ES512', [-37]: 'PS256', [-38]: 'PS384', [-39]: 'PS512' };
const ALG = 1;
const CRIT = 2;
const CONTENT_TYPE = 3;
const X5CHAIN = 33;
const SIGNING_SCHEME = 'io.cncf.notary.signingScheme';
const SIGNING_TIME = 'io.cncf.notary.signingTime';
const AUTHENTIC_SIGNING_TIME = 'io.cncf.notary.authenticSigningTime';
const EXPIRY = 'io.cncf.notary.expiry';
const TIMESTAMP_SIGNATURE = 'io.cncf.notary.timestampSignature';
const KNOWN_CRIT = new Set<unknown>([SIGNING_SCHEME, EXPIRY, AUTHENTIC_SIGNING_TIME]);

/** The COSE_Sign1 tag (18), kept recognisable after decoding. */
class Sign1 {
  constructor(readonly value: unknown) {}
}
// Only the tags a Notary Project envelope uses: 18 (COSE_Sign1) and 1 (epoch date/time).
const tags: TagDecoder[] = [];
tags[1] = (decode) => {
  const v = decode();
  return typeof v === 'number' ? new Date(v * 1000) : v;
};
tags[18] = (decode) => new Sign1(decode());

const malformed = (why: string) => fail('MALFORMED', `COSE envelope: ${why}`);
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

function decode(bytes: Uint8Array, what: string): unknown {
  try {
    // Maps stay Maps: COSE labels are integers as well as strings.
    return cborDecode(bytes, { useMaps: true, tags });
  } catch (err) {
    throw malformed(`${what} is not valid CBOR (${(err as Error).message})`);
  }
}

function dateOf(v: unknown, what: string): Date {
  // Tag 1 (epoch-based date/time), which cbor-x decodes to a Date.
  if (v instanceof Date && Number.isFinite(v.getTime())) return v;
  throw malformed(`${what} must be a tag-1 date`);
}

/** The Sig_structure for COSE_Sign1: ["Signature1", protected, external_aad = h'', payload]. */
export function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array): Buffer {
  return Buffer.from(cborEncode(['Signature1', Uint8Array.from(protectedBytes), new Uint8Array(0), Uint8Array.from(payload)]));
}

/** Inspect and evaluate in one step (tests, and callers that cache nothing). */
export function verifyCoseEnvelope(bytes: Buffer, anchors: readonly X509Certificate[], now: Date, o: Partial<EvaluateOptions> = {}): EnvelopeVerification {
  return evaluateEnvelope(inspectCoseEnvelope(bytes), { anchors, now, ...o });
}

export function inspectCoseEnvelope(bytes: Buffer): InspectedEnvelope {
  const top = decode(bytes, 'envelope');
  // COSE_Sign1 is tag 18 around [protected bstr, unprotected map, payload bstr, signature bstr].
  const arr = top instanceof Sign1 ? top.value : top;
  if (!Array.isArray(arr) || arr.length !== 4) throw malformed('not a COSE_Sign1 structure');
  const [protectedBytes, unprotected, payload, signature] = arr as [unknown, unknown, unknown, unknown];
  if (!isBytes(protectedBytes) || !(unprotected instanceof Map) || !isBytes(payload) || !isBytes(signature)) throw malformed('COSE_Sign1 fields have the wrong types');
  const header = decode(protectedBytes, 'protected header');
  if (!(header instanceof Map)) throw malformed('protected header is not a map');

  const algName = COSE_ALGS[header.get(ALG) as number];
  const alg = algName ? ALGORITHMS[algName] : undefined;
  if (!alg) throw malformed(`algorithm ${String(header.get(ALG))} is not one the Notary Project allows`);
  if (header.get(CONTENT_TYPE) !== PAYLOAD_CONTENT_TYPE) throw malformed(`content type must be ${PAYLOAD_CONTENT_TYPE}`);
  const scheme = header.get(SIGNING_SCHEME);
  if (scheme !== 'notary.x509' && scheme !== 'notary.x509.signingAuthority') throw malformed('signing scheme must be notary.x509 or notary.x509.signingAuthority');
  const crit = header.get(CRIT);
  if (!Array.isArray(crit) || !crit.includes(SIGNING_SCHEME)) throw malformed(`crit must list ${SIGNING_SCHEME}`);
  for (const c of crit) {
    if (!header.has(c)) throw malformed(`crit lists ${JSON.stringify(c)}, absent from the protected header`);
    // Fail closed on critical labels we do not understand (extended attributes need a plugin).
    if (!KNOWN_CRIT.has(c)) throw malformed(`critical header ${JSON.stringify(c)} is not understood`);
  }
  if (header.has(EXPIRY) && !crit.includes(EXPIRY)) throw malformed(`${EXPIRY} must be critical`);
  const signingTime = scheme === 'notary.x509' ? dateOf(header.get(SIGNING_TIME), SIGNING_TIME) : dateOf(header.get(AUTHENTIC_SIGNING_TIME), AUTHENTIC_SIGNING_TIME);
  const expiry = header.has(EXPIRY) ? dateOf(header.get(EXPIRY), EXPIRY) : undefined;

  let target: Descriptor;
  try {
    target = (JSON.parse(Buffer.from(payload).toString('utf8')) as { targetArtifact: Descriptor }).targetArtifact;
  } catch {
    throw malformed('payload is not JSON');
  }
  if (!target || typeof target.digest !== 'string' || typeof target.size !== 'number' || typeof target.mediaType !== 'string') throw malformed('payload has no targetArtifact descriptor');

  // x5chain is unprotected, or (the specification allows it) protected.
  const x5chain = unprotected.get(X5CHAIN) ?? header.get(X5CHAIN);
  const ders = isBytes(x5chain) ? [x5chain] : Array.isArray(x5chain) ? x5chain : [];
  if (ders.length === 0 || !ders.every(isBytes)) throw malformed('no x5chain certificate chain');
  let chain: X509Certificate[];
  try {
    chain = (ders as Uint8Array[]).map((d) => new X509Certificate(Buffer.from(d)));
  } catch {
    throw malformed('x5chain holds something that is not a certificate');
  }
  readableCertificates(chain, 'COSE x5chain');
  const ts = unprotected.get(TIMESTAMP_SIGNATURE);
  if (ts !== undefined && !isBytes(ts)) throw malformed(`${TIMESTAMP_SIGNATURE} must be a byte string`);
  const timestampToken = ts === undefined ? undefined : Buffer.from(ts);
  return inspectEnvelope({ alg, input: sigStructure(protectedBytes, payload), signature: Buffer.from(signature), chain, target, scheme, signingTime, expiry, timestampToken });
}
