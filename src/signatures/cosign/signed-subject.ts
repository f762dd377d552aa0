// What a cosign signature says it signs. A signature only proves that someone signed some bytes; these
// checks tie those bytes to the manifest being served. Pure: no I/O.
//
// - Classic (tag form) signatures sign a simple-signing payload (sigstore/cosign SIGNATURE_SPEC.md
//   "Simple Signing", containers-signature(5)): `critical.image.docker-manifest-digest` must be the
//   digest served and `critical.type` must be "cosign container image signature".
// - Sigstore bundles (BUNDLE_SPEC.md) from `cosign sign --new-bundle-format` carry a DSSE envelope whose
//   payload is an in-toto statement with predicateType https://sigstore.dev/cosign/sign/v1 and the image
//   digest as its subject.

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
const IN_TOTO_STATEMENT_TYPES = ['https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1'];

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new Error(`${what} is not JSON`);
  }
}

/**
 * Throws unless the simple-signing payload names `digest`. The check is exact and case-sensitive: Go's
 * encoding/json (cosign) would also match `Docker-Manifest-Digest`, so a payload carrying the key in two
 * spellings could mean different digests to two verifiers; such a payload is refused as ambiguous.
 */
export function checkSimpleSigningPayload(payload: Uint8Array, digest: string): void {
  const doc = parseJson(payload, 'the simple-signing payload');
  const critical = isObj(doc) ? doc.critical : undefined;
  if (!isObj(critical)) throw new Error('the simple-signing payload has no critical section');
  if (critical.type !== COSIGN_SIGNATURE_TYPE) throw new Error(`critical.type is ${JSON.stringify(critical.type)}, not "${COSIGN_SIGNATURE_TYPE}"`);
  const image = critical.image;
  if (!isObj(image)) throw new Error('the simple-signing payload has no critical.image');
  const spellings = Object.keys(image).filter((k) => k.toLowerCase() === 'docker-manifest-digest');
  if (spellings.length !== 1 || spellings[0] !== 'docker-manifest-digest') throw new Error('critical.image must carry docker-manifest-digest exactly once, in that spelling');
  const signed = image['docker-manifest-digest'];
  // The attack: a valid signature of another image (or another version of this one) replayed next to this digest.
  if (signed !== digest) throw new Error(`the payload signs ${String(signed)}, not ${digest}`);
}

/** Throws unless the DSSE payload is a cosign-sign in-toto statement whose subject is `digest`. */
export function checkSignStatement(payloadType: string, payload: Uint8Array, digest: string): void {
  if (payloadType !== IN_TOTO_PAYLOAD_TYPE) throw new Error(`the DSSE payload type is ${payloadType}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  const doc = parseJson(payload, 'the in-toto statement');
  if (!isObj(doc) || !IN_TOTO_STATEMENT_TYPES.includes(String(doc._type))) throw new Error('the DSSE payload is not an in-toto statement');
  // Other predicates (SBOMs, provenance) are attestations about the image, not signatures of it.
  if (doc.predicateType !== COSIGN_SIGN_PREDICATE) throw new Error(`the statement's predicateType is ${JSON.stringify(doc.predicateType)}, not ${COSIGN_SIGN_PREDICATE}`);
  const [alg, hex] = digest.split(':');
  const subjects = Array.isArray(doc.subject) ? doc.subject : [];
  if (!subjects.some((s) => isObj(s) && isObj(s.digest) && s.digest[alg!] === hex)) throw new Error(`the statement's subject is not ${digest}`);
}
