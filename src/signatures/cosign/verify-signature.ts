// Verify one cosign signature offline against the site's keys or Sigstore trusted root. Pure: values
// in, a signer or an Error out; discovery (I/O) is in discovery.ts.
//
// The cryptography and the Sigstore rules are @sigstore/verify's: signature over the payload or DSSE
// PAE, certificate chain to a Fulcio CA valid at the signing time, SCTs against the CT log keys, Rekor
// signed entry timestamp or inclusion proof against the Rekor keys, RFC 3161 timestamps against TSAs,
// and the certificate identity (SAN, OIDC issuer). Classic tag-form signatures are translated into the
// same bundle model first (toMessageSignatureBundle), so both formats go through one verifier.
// trustgate adds what is OCI-specific: that the signed payload names the digest served (signed-subject.ts).
import { createHash, type KeyObject } from 'node:crypto';
import { bundleFromJSON, toMessageSignatureBundle, type Bundle, type TransparencyLogEntry } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { PolicyError, toSignedEntity, toTrustMaterial, Verifier, type TrustMaterial } from '@sigstore/verify';
import type { CosignIdentity, CosignTlog } from '../../config/schema.js';
import { checkSignStatement, checkSimpleSigningPayload } from './signed-subject.js';

export interface CosignKey {
  /** The configured name, else the SPKI SHA-256 fingerprint (load-trust.ts keyIdentifier): never a path. */
  name: string;
  key: KeyObject;
}

export interface CosignTrust {
  keys: readonly CosignKey[];
  /** Keyless: Fulcio CAs, Rekor and CT log keys, TSAs from trusted_root.json. */
  root?: TrustedRoot | undefined;
  identities: readonly CosignIdentity[];
  /** Keyed signatures: must a verified transparency-log entry exist? Unset: required with a root, optional without. */
  tlog?: CosignTlog | undefined;
  /** Signature repository (COSIGN_REPOSITORY) the signatures are looked up in instead of the image's own. */
  repository?: string | undefined;
}

/** A classic signature: one simple-signing layer of a `sha256-<hex>.sig` manifest, with its annotations. */
export interface ClassicSignature {
  payload: Buffer;
  /** dev.cosignproject.cosign/signature: base64 ASN.1 signature over the payload. */
  signature: string;
  /** dev.sigstore.cosign/certificate (keyless): PEM. */
  certificate?: string | undefined;
  /** dev.sigstore.cosign/bundle: the Rekor entry and its signed entry timestamp. */
  rekorBundle?: string | undefined;
}

export interface Signer {
  /** `key <name or fingerprint>` or `<subject> (issuer <issuer>)`. */
  by: string;
}

const EMPTY_ROOT = TrustedRoot.fromJSON({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] });

/** Parse trusted_root.json (the protobuf JSON form Sigstore's TUF repository distributes). */
export function parseTrustedRoot(json: string): TrustedRoot {
  const doc = JSON.parse(json) as unknown;
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { certificateAuthorities?: unknown }).certificateAuthorities)) {
    throw new Error('not a Sigstore trusted root (no certificateAuthorities)');
  }
  const root = TrustedRoot.fromJSON(doc);
  toTrustMaterial(root); // parses every key and certificate now, so a bad file fails at start
  return root;
}

// Trust material parses every CA certificate and log key of the root: built once per root (and per
// key), not on every request.
const rootMaterials = new WeakMap<TrustedRoot, TrustMaterial>();
const keyMaterials = new WeakMap<CosignKey, WeakMap<TrustedRoot, TrustMaterial>>();
function rootMaterial(root: TrustedRoot): TrustMaterial {
  let m = rootMaterials.get(root);
  if (!m) rootMaterials.set(root, (m = toTrustMaterial(root)));
  return m;
}
function keyMaterial(k: CosignKey, root: TrustedRoot = EMPTY_ROOT): TrustMaterial {
  let byRoot = keyMaterials.get(k);
  if (!byRoot) keyMaterials.set(k, (byRoot = new WeakMap()));
  let m = byRoot.get(root);
  if (!m) byRoot.set(root, (m = { ...rootMaterial(root), publicKey: () => ({ publicKey: k.key, validFor: () => true }) }));
  return m;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A bundle's tlog/timestamp material is only usable with a trusted root; keyed trust without one ignores it. */
function keyedEntity(bundle: Bundle, root: TrustedRoot | undefined): Bundle {
  if (root) return bundle;
  // DEVIATION: a site that configured only keys has no Rekor or TSA keys to check log entries against;
  // the key is its trust anchor (cosign verify --key --insecure-ignore-tlog). Entries are dropped rather
  // than failing every signature that happens to carry one.
  return { ...bundle, verificationMaterial: { ...bundle.verificationMaterial, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } } };
}

function verifyBundleModel(bundle: Bundle, artifact: Buffer | undefined, trust: CosignTrust): Signer {
  const content = bundle.verificationMaterial.content;
  if (content.$case === 'publicKey') {
    if (trust.keys.length === 0) throw new Error('signed with a key, and no cosign keys are configured');
    // cosign verify --key requires a Rekor entry unless told --insecure-ignore-tlog (pkg/cosign/verify.go:
    // WithTransparencyLog(1) unless IgnoreTlog). `required`: an entry that verifies against the trusted
    // root's Rekor keys and records this very signature (verifyTLogBody); without one the signature could
    // have been made at any time with a key since leaked, and nobody could have seen it.
    const tlogRequired = (trust.tlog ?? (trust.root ? 'required' : 'optional')) === 'required';
    if (tlogRequired) {
      if (!trust.root) throw new Error('cosign tlog: required, and no trustedRoot holds the Rekor keys to check a log entry against');
      if (bundle.verificationMaterial.tlogEntries.length === 0) throw new Error('no transparency-log entry, and cosign tlog is required (tlog: optional accepts signatures by the key alone)');
    }
    const entity = toSignedEntity(keyedEntity(bundle, trust.root), artifact);
    const failures: string[] = [];
    // Every configured key is tried: the bundle's key hint is the signer's claim, not ours to trust.
    for (const k of trust.keys) {
      try {
        new Verifier(keyMaterial(k, trust.root), { tlogThreshold: tlogRequired ? 1 : 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(entity);
        return { by: `key ${k.name}` };
      } catch (err) {
        failures.push(`key ${k.name}: ${(err as Error).message}`);
      }
    }
    throw new Error(failures.join('; '));
  }
  if (!trust.root) throw new Error('signed with a certificate (keyless), and no cosign trustedRoot is configured');
  // Said plainly before the library's threshold (which would report a missing timestamp first).
  if (bundle.verificationMaterial.tlogEntries.length === 0) throw new Error('no transparency-log entry (Rekor inclusion proof or signed entry timestamp)');
  const entity = toSignedEntity(bundle, artifact);
  // Keyless needs all three: a Fulcio certificate with an SCT, a Rekor entry (inclusion proof or signed
  // entry timestamp) and a verified time inside the certificate's validity (sigstore client spec §4).
  const verifier = new Verifier(rootMaterial(trust.root), { tlogThreshold: 1, ctlogThreshold: 1, timestampThreshold: 1 });
  let seen = '';
  for (const id of trust.identities) {
    // @sigstore/verify treats the SAN policy as an unanchored regular expression: an exact subject is
    // escaped and anchored here, so `ci@acme.test` cannot match `ci@acme.test.evil`.
    const san = id.subject !== undefined ? `^${escapeRegExp(id.subject)}$` : id.subjectRegExp!;
    try {
      const signer = verifier.verify(entity, { subjectAlternativeName: san, extensions: { issuer: id.issuer } });
      return { by: `${signer.identity?.subjectAlternativeName ?? '?'} (issuer ${signer.identity?.extensions?.issuer ?? '?'})` };
    } catch (err) {
      // Anything but an identity mismatch fails the same way for every rule.
      if (!(err instanceof PolicyError)) throw err;
      seen = err.message;
    }
  }
  throw new Error(`no identity rule matches (${trust.identities.map((i) => `${i.subject ?? `/${i.subjectRegExp}/`} from ${i.issuer}`).join(', ')}): ${seen}`);
}

/** The dev.sigstore.cosign/bundle annotation (Rekor's answer) as the bundle model's tlog entry. */
function rekorEntry(annotation: string): TransparencyLogEntry {
  const doc = JSON.parse(annotation) as { SignedEntryTimestamp?: string; Payload?: { body?: string; integratedTime?: number; logIndex?: number; logID?: string } };
  const p = doc.Payload;
  if (!doc.SignedEntryTimestamp || !p?.body || typeof p.integratedTime !== 'number' || typeof p.logIndex !== 'number' || !p.logID) throw new Error('the Rekor bundle annotation is incomplete');
  const body = Buffer.from(p.body, 'base64');
  const { kind, apiVersion } = JSON.parse(body.toString('utf8')) as { kind?: string; apiVersion?: string };
  return {
    logIndex: String(p.logIndex),
    logId: { keyId: Buffer.from(p.logID, 'hex') },
    kindVersion: { kind: String(kind), version: String(apiVersion) },
    integratedTime: String(p.integratedTime),
    inclusionPromise: { signedEntryTimestamp: Buffer.from(doc.SignedEntryTimestamp, 'base64') },
    inclusionProof: undefined,
    canonicalizedBody: body,
  };
}

/** A classic (tag-form) signature of `digest`: payload names the digest, signature verifies. */
export function verifyClassicSignature(sig: ClassicSignature, digest: string, trust: CosignTrust): Signer {
  checkSimpleSigningPayload(sig.payload, digest);
  const bundle = toMessageSignatureBundle({
    digest: createHash('sha256').update(sig.payload).digest(),
    signature: Buffer.from(sig.signature, 'base64'),
    certificate: sig.certificate ? pemToDer(sig.certificate) : undefined,
  });
  if (sig.rekorBundle) bundle.verificationMaterial.tlogEntries.push(rekorEntry(sig.rekorBundle));
  return verifyBundleModel(bundle, sig.payload, trust);
}

/** A Sigstore bundle (referrer form) of `digest`: a DSSE cosign-sign statement naming the digest. */
export function verifyBundleSignature(json: Buffer, digest: string, trust: CosignTrust): Signer {
  const bundle = bundleFromJSON(JSON.parse(json.toString('utf8')));
  if (bundle.content.$case !== 'dsseEnvelope') throw new Error('a message-signature bundle does not say which image it signs');
  const env = bundle.content.dsseEnvelope;
  checkSignStatement(env.payloadType, env.payload, digest);
  return verifyBundleModel(bundle, undefined, trust);
}

function pemToDer(pem: string): Buffer {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error('the certificate annotation is not a PEM certificate');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}
