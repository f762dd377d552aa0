// A Notary Project signature of an image manifest (notaryproject/specifications): the payload
// {targetArtifact: descriptor} in a JWS (signature-envelope-jws.md, JSON serialization) or COSE_Sign1
// (signature-envelope-cose.md) envelope with signing scheme notary.x509 and the x509 chain from --cert,
// and the signature manifest that stores it as an OCI referrer (signature-specification.md "OCI
// Signatures": artifactType application/vnd.cncf.notary.signature, empty config, one envelope layer,
// subject = the signed manifest, annotation io.cncf.notary.x509chain.thumbprint#S256). Pure.
import { constants, createHash, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { encode as cborEncode, Token, Type } from 'cborg';
import { fail } from '../errors.js';
import { sigStructure } from '../signatures/notation/cose-envelope.js';
import { SIGNATURE_ARTIFACT_TYPE } from '../signatures/notation/referrers.js';
import { OCI_INDEX, OCI_MANIFEST, sha256Digest, type OciDescriptor } from './oci.js';
import { spkiOf } from './keys.js';

export const JWS_MEDIA_TYPE = 'application/jose+json';
export const COSE_MEDIA_TYPE = 'application/cose';
const PAYLOAD_CONTENT_TYPE = 'application/vnd.cncf.notary.payload.v1+json';
const SIGNING_SCHEME = 'io.cncf.notary.signingScheme';
const SIGNING_TIME = 'io.cncf.notary.signingTime';
const SIGNING_AGENT = 'io.cncf.notary.signingAgent';
export const THUMBPRINT_ANNOTATION = 'io.cncf.notary.x509chain.thumbprint#S256';
export const EMPTY_CONFIG = Buffer.from('{}');
const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
export const SIGNING_AGENT_NAME = 'trustgate-resign/0.1';

export type EnvelopeFormat = 'jws' | 'cose';

interface Scheme {
  jose: string;
  cose: number;
  hash: string;
  ec: boolean;
}

/** signature-specification.md "Algorithm Selection": the key decides the algorithm. */
export function schemeFor(k: KeyObject): Scheme {
  const d = k.asymmetricKeyDetails ?? {};
  if (k.asymmetricKeyType === 'ec') {
    const s = ({ prime256v1: { jose: 'ES256', cose: -7, hash: 'sha256' }, secp384r1: { jose: 'ES384', cose: -35, hash: 'sha384' }, secp521r1: { jose: 'ES512', cose: -36, hash: 'sha512' } } as const)[d.namedCurve as 'prime256v1'];
    if (s) return { ...s, ec: true };
  }
  if (k.asymmetricKeyType === 'rsa' || k.asymmetricKeyType === 'rsa-pss') {
    const s = ({ 2048: { jose: 'PS256', cose: -37, hash: 'sha256' }, 3072: { jose: 'PS384', cose: -38, hash: 'sha384' }, 4096: { jose: 'PS512', cose: -39, hash: 'sha512' } } as const)[d.modulusLength as 2048];
    if (s) return { ...s, ec: false };
  }
  throw fail('USAGE', `--key: the Notary Project signs with EC P-256/384/521 or RSA 2048/3072/4096 keys, not ${k.asymmetricKeyType} ${d.namedCurve ?? d.modulusLength ?? ''}`.trim());
}

function signWith(k: KeyObject, s: Scheme, input: Buffer): Buffer {
  // JWS and COSE both carry ECDSA as r‖s; PSS with a salt as long as the hash (RFC 7518 3.5, RFC 8230).
  return s.ec
    ? sign(s.hash, input, { key: k, dsaEncoding: 'ieee-p1363' })
    : sign(s.hash, input, { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
}

/** Every certificate of a PEM chain file, leaf first; the leaf must hold the signing key. */
export function parseChain(pem: string, key: KeyObject): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw fail('USAGE', '--cert: no PEM certificate in the file');
  let chain: X509Certificate[];
  try {
    chain = blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    throw fail('USAGE', `--cert: not a certificate (${(err as Error).message})`);
  }
  if (!spkiOf(chain[0]!.publicKey).equals(spkiOf(key))) throw fail('USAGE', '--cert: the first certificate (the leaf) is not for the --key key');
  return chain;
}

export interface EnvelopeInput {
  key: KeyObject;
  chain: readonly X509Certificate[];
  target: OciDescriptor;
  signingTime: Date;
}

const payloadOf = (target: OciDescriptor) => Buffer.from(JSON.stringify({ targetArtifact: { mediaType: target.mediaType, digest: target.digest, size: target.size } }));
/** RFC 3339 with seconds, as notation writes it. */
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export function jwsEnvelope(o: EnvelopeInput): Buffer {
  const s = schemeFor(o.key);
  const header = { alg: s.jose, cty: PAYLOAD_CONTENT_TYPE, crit: [SIGNING_SCHEME], [SIGNING_SCHEME]: 'notary.x509', [SIGNING_TIME]: rfc3339(o.signingTime) };
  const protectedB64 = Buffer.from(JSON.stringify(header)).toString('base64url');
  const payloadB64 = payloadOf(o.target).toString('base64url');
  const signature = signWith(o.key, s, Buffer.from(`${protectedB64}.${payloadB64}`, 'ascii'));
  return Buffer.from(
    JSON.stringify({
      payload: payloadB64,
      protected: protectedB64,
      header: { x5c: o.chain.map((c) => c.raw.toString('base64')), [SIGNING_AGENT]: SIGNING_AGENT_NAME },
      signature: signature.toString('base64url'),
    }),
  );
}

/** CBOR with dates as tag 1 (epoch seconds), the form the COSE envelope's time headers take. */
function cbor(value: unknown): Buffer {
  return Buffer.from(cborEncode(value, { typeEncoders: { Date: (d: Date) => [new Token(Type.tag, 1), new Token(Type.uint, Math.floor(d.getTime() / 1000))] } }));
}

export function coseEnvelope(o: EnvelopeInput): Buffer {
  const s = schemeFor(o.key);
  // Labels 1 (alg), 2 (crit), 3 (content type), then the Notary Project's string labels.
  const protectedBytes = cbor(
    new Map<unknown, unknown>([
      [1, s.cose],
      [2, [SIGNING_SCHEME]],
      [3, PAYLOAD_CONTENT_TYPE],
      [SIGNING_SCHEME, 'notary.x509'],
      [SIGNING_TIME, new Date(Math.floor(o.signingTime.getTime() / 1000) * 1000)],
    ]),
  );
  const payload = payloadOf(o.target);
  const signature = signWith(o.key, s, sigStructure(protectedBytes, payload));
  const unprotected = new Map<unknown, unknown>([
    [33, o.chain.map((c) => new Uint8Array(c.raw))],
    [SIGNING_AGENT, SIGNING_AGENT_NAME],
  ]);
  // Tag 18 (COSE_Sign1) is the single byte 0xd2 in front of the array.
  return Buffer.concat([Buffer.from([0xd2]), cbor([new Uint8Array(protectedBytes), unprotected, new Uint8Array(payload), new Uint8Array(signature)])]);
}

export function thumbprints(chain: readonly X509Certificate[]): string {
  return JSON.stringify(chain.map((c) => createHash('sha256').update(c.raw).digest('hex')));
}

/** The signature manifest (artifactType form) for an envelope blob of `subject`. */
export function notationSignatureManifest(subject: OciDescriptor, envelope: { bytes: Buffer; mediaType: string }, chain: readonly X509Certificate[], annotations: Record<string, string>): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: SIGNATURE_ARTIFACT_TYPE,
      config: { mediaType: EMPTY_MEDIA_TYPE, digest: sha256Digest(EMPTY_CONFIG), size: EMPTY_CONFIG.length },
      layers: [{ mediaType: envelope.mediaType, digest: sha256Digest(envelope.bytes), size: envelope.bytes.length }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: { [THUMBPRINT_ANNOTATION]: thumbprints(chain), ...annotations },
    }),
  );
}

/**
 * The referrers tag schema index (OCI distribution spec 1.1 "Pushing Manifests with Subject"): the
 * existing index's descriptors (if any) with `entry` added, once.
 */
export function referrersIndexWith(existing: Buffer | undefined, entry: OciDescriptor): Buffer {
  let manifests: OciDescriptor[] = [];
  if (existing) {
    try {
      const doc = JSON.parse(existing.toString('utf8')) as { manifests?: unknown };
      if (Array.isArray(doc.manifests)) manifests = doc.manifests as OciDescriptor[];
    } catch {
      throw fail('UPSTREAM_INVALID', 'the referrers tag schema index is not JSON');
    }
  }
  if (!manifests.some((m) => m?.digest === entry.digest)) manifests = [...manifests, entry];
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
}
