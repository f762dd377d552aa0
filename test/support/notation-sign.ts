// Notary Project signatures made the way notation makes them, with a well-kept JOSE library (jose)
// and openssl-issued certificates, and pushed to a real registry as OCI referrers (the referrers tag
// schema, since distribution 2.8 has no referrers API).
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { encode as cborEncode, Token, Type } from 'cborg';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlattenedSign } from 'jose';
import { request } from 'undici';
import { putBlob, putReferrer, putReferrersIndex } from './registry-push.js';

export interface KeyPair {
  key: string;
  cert: string;
}

export type KeyKind = 'ec256' | 'ec384' | 'ec521' | 'rsa2048' | 'rsa3072' | 'rsa1024';

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

function genKey(dir: string, file: string, kind: KeyKind): void {
  if (kind.startsWith('ec')) openssl(dir, ['ecparam', '-name', { ec256: 'prime256v1', ec384: 'secp384r1', ec521: 'secp521r1' }[kind as 'ec256'], '-genkey', '-noout', '-out', file]);
  else openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${kind.slice(3)}`, '-out', file]);
}

export interface CertOptions {
  /** openssl extension lines, replacing the defaults (a valid CA, or a valid code signing leaf). */
  ext?: string;
  key?: KeyKind;
  days?: number;
  /** Digest of the issuer's signature over the certificate (sha1, to test its refusal). */
  digest?: string;
  subject?: string;
}

export const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n';
export const LEAF_EXT = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n';

/** A certificate for a new key: self-signed when `issuer` is absent. */
export function makeCert(dir: string, name: string, subject: string, issuer: KeyPair | undefined, ext: string, opts: CertOptions = {}): KeyPair {
  genKey(dir, `${name}.key`, opts.key ?? 'ec256');
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  const signer = issuer ? ['-CA', issuer.cert, '-CAkey', issuer.key, '-CAcreateserial'] : ['-signkey', `${name}.key`];
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, ...signer, `-${opts.digest ?? 'sha256'}`, '-days', String(opts.days ?? 10), '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
  return { key: join(dir, `${name}.key`), cert: join(dir, `${name}.pem`) };
}

export function makeCa(dir: string, name: string, opts: CertOptions = {}): KeyPair {
  return makeCert(dir, name, opts.subject ?? `/C=US/ST=WA/O=${name}/CN=${name} Root`, undefined, opts.ext ?? CA_EXT, { days: 30, ...opts });
}

export function makeIntermediate(dir: string, name: string, issuer: KeyPair, opts: CertOptions = {}): KeyPair {
  return makeCert(dir, name, opts.subject ?? `/C=US/ST=WA/O=${name}/CN=${name} Intermediate`, issuer, opts.ext ?? CA_EXT, { days: 20, ...opts });
}

export function makeLeaf(dir: string, name: string, issuer: KeyPair, subject: string, opts: CertOptions = {}): KeyPair {
  return makeCert(dir, name, subject, issuer, opts.ext ?? LEAF_EXT, opts);
}

export const derB64 = (certFile: string) => Buffer.from(new X509Certificate(readFileSync(certFile)).raw).toString('base64');

export interface EnvelopeOptions {
  signer: KeyPair;
  chain: string[]; // base64 DER, leaf first
  target: { mediaType: string; digest: string; size: number };
  signingTime?: Date;
  protectedOverride?: Record<string, unknown>;
  /** JOSE algorithm (default ES256). */
  alg?: string;
  /** Extra unprotected header fields (e.g. io.cncf.notary.timestampSignature). */
  unprotected?: Record<string, unknown>;
}

/** Add an RFC 3161 token over a JWS envelope's signature as its io.cncf.notary.timestampSignature (unsigned, so after signing). */
export function withJwsTimestamp(envelope: Buffer, stamp: (signature: Buffer) => Buffer): Buffer {
  const doc = JSON.parse(envelope.toString());
  doc.header['io.cncf.notary.timestampSignature'] = stamp(Buffer.from(doc.signature, 'base64url')).toString('base64');
  return Buffer.from(JSON.stringify(doc));
}

/** A Notary Project JWS envelope (application/jose+json). */
export async function jwsEnvelope(o: EnvelopeOptions): Promise<Buffer> {
  const payload = Buffer.from(JSON.stringify({ targetArtifact: o.target }));
  const header = {
    alg: o.alg ?? 'ES256',
    cty: 'application/vnd.cncf.notary.payload.v1+json',
    crit: ['io.cncf.notary.signingScheme'],
    'io.cncf.notary.signingScheme': 'notary.x509',
    'io.cncf.notary.signingTime': (o.signingTime ?? new Date()).toISOString(),
    ...o.protectedOverride,
  };
  const jws = await new FlattenedSign(payload)
    .setProtectedHeader(header as never)
    .setUnprotectedHeader({ x5c: o.chain, 'io.cncf.notary.signingAgent': 'trustgate-test', ...o.unprotected } as never)
    .sign(createPrivateKey(readFileSync(o.signer.key)), { crit: { 'io.cncf.notary.signingScheme': true, 'io.cncf.notary.expiry': true, 'io.cncf.notary.authenticSigningTime': true } });
  return Buffer.from(JSON.stringify(jws));
}

export type SignatureForm = 'artifactType' | 'config';
export type PushedEnvelope = Buffer | { bytes: Buffer; mediaType?: 'application/cose' | 'application/jose+json'; form?: SignatureForm; thumbprints?: string[] };

/** The io.cncf.notary.x509chain.thumbprint#S256 list notation writes: hex SHA-256 of each certificate (DER), leaf first. */
export const thumbprintsOf = (certFiles: string[]) => certFiles.map((f) => createHash('sha256').update(new X509Certificate(readFileSync(f)).raw).digest('hex'));

/** The signature manifest notation writes: `artifactType` (current), or notation 1.0's `config.mediaType` form. */
export function signatureManifest(subject: { mediaType: string; digest: string; size: number }, envelope: { digest: string; size: number; mediaType: string }, form: SignatureForm, config: { digest: string; size: number }, thumbprints: string[] = []): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...(form === 'artifactType' ? { artifactType: 'application/vnd.cncf.notary.signature' } : {}),
      config: { mediaType: form === 'artifactType' ? 'application/vnd.oci.empty.v1+json' : 'application/vnd.cncf.notary.signature', digest: config.digest, size: config.size },
      layers: [envelope],
      subject,
      annotations: { 'io.cncf.notary.x509chain.thumbprint#S256': JSON.stringify(thumbprints) },
    }),
  );
}

/**
 * Push signature envelopes for `subject` as notation does: an OCI manifest per signature (either
 * form; the envelope as its layer, subject = the signed manifest), listed in the referrers tag schema
 * index `sha256-<hex>` (appended to what the index already lists, as notation does).
 */
export async function pushSignatures(registry: string, repo: string, subject: { mediaType: string; digest: string; size: number }, envelopes: PushedEnvelope[]): Promise<string[]> {
  const empty = Buffer.from('{}');
  const emptyDigest = await putBlob(registry, repo, empty);
  const tag = `sha256-${subject.digest.slice(7)}`;
  const existing = await request(`${registry}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
  const entries: unknown[] = existing.statusCode === 200 ? ((await existing.body.json()) as { manifests: unknown[] }).manifests : (await existing.body.dump(), []);
  const digests: string[] = [];
  for (const e of envelopes) {
    const { bytes: env, mediaType = 'application/jose+json', form = 'artifactType', thumbprints } = Buffer.isBuffer(e) ? { bytes: e, thumbprints: undefined } : e;
    const envDigest = await putBlob(registry, repo, env);
    const manifest = signatureManifest(subject, { mediaType, digest: envDigest, size: env.length }, form, { digest: emptyDigest, size: empty.length }, thumbprints);
    // In a referrers index, a manifest without artifactType is listed with its config.mediaType.
    const entry = await putReferrer(registry, repo, manifest, 'application/vnd.cncf.notary.signature');
    entries.push(entry);
    digests.push(entry.digest);
  }
  await putReferrersIndex(registry, repo, subject.digest, entries);
  return digests;
}

/** CBOR with dates as tag 1 (epoch seconds), as the COSE envelope's time headers are. */
export function cbor(value: unknown): Buffer {
  return Buffer.from(cborEncode(value, { typeEncoders: { Date: (d: Date) => [new Token(Type.tag, 1), new Token(Type.uint, Math.floor(d.getTime() / 1000))] } }));
}

/**
 * A Notary Project COSE_Sign1 envelope (application/cose): headers as the specification labels
 * them, encoded with cborg, signed over the RFC 9052 Sig_structure, wrapped in tag 18.
 */
export function coseEnvelope(o: EnvelopeOptions & { protectedMap?: Map<unknown, unknown>; timestamp?: (signature: Buffer) => Buffer }): Buffer {
  const protectedMap =
    o.protectedMap ??
    new Map<unknown, unknown>([
      [1, -7],
      [2, ['io.cncf.notary.signingScheme']],
      [3, 'application/vnd.cncf.notary.payload.v1+json'],
      ['io.cncf.notary.signingScheme', 'notary.x509'],
      ['io.cncf.notary.signingTime', o.signingTime ?? new Date()],
    ]);
  const protectedBytes = cbor(protectedMap);
  const payload = Buffer.from(JSON.stringify({ targetArtifact: o.target }));
  const toSign = cbor(['Signature1', protectedBytes, new Uint8Array(0), payload]);
  const sig = sign('sha256', toSign, { key: createPrivateKey(readFileSync(o.signer.key)), dsaEncoding: 'ieee-p1363' });
  const unprotected = new Map<unknown, unknown>([
    [33, o.chain.map((c) => Buffer.from(c, 'base64'))],
    ['io.cncf.notary.signingAgent', 'trustgate-test'],
    ...(o.timestamp ? [['io.cncf.notary.timestampSignature', o.timestamp(sig)] as [unknown, unknown]] : []),
  ]);
  // Tag 18 (COSE_Sign1) is the single byte 0xd2 in front of the array.
  return Buffer.concat([Buffer.from([0xd2]), cbor([protectedBytes, unprotected, payload, sig])]);
}

/**
 * notation's own files for a test upstream: a CA (openssl) in the trust store `ca:acme` and a strict
 * trust policy over every repository that trusts any identity it issued.
 */
export function writeNotationFiles(dir: string): { trustPolicy: string; trustStore: string; ca: KeyPair } {
  const ca = makeCa(dir, 'acme');
  const files = writeNotationTrust(dir, [['ca', 'acme', ca.cert]], [{ name: 'all', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:acme'], trustedIdentities: ['*'] }]);
  return { ...files, ca };
}

/**
 * notation's trust files as notation keeps them, under `dir`: each certificate in the trust store at
 * x509/<type>/<name>/<name>.pem (named `<type>:<name>` by policies), and trustpolicy.json (version 1.0)
 * with `policies` in order.
 */
export function writeNotationTrust(dir: string, stores: ReadonlyArray<readonly [type: 'ca' | 'signingAuthority' | 'tsa', name: string, certFile: string]>, policies: unknown[]): { trustPolicy: string; trustStore: string } {
  const trustStore = join(dir, 'truststore');
  for (const [type, name, file] of stores) {
    mkdirSync(join(trustStore, 'x509', type, name), { recursive: true });
    copyFileSync(file, join(trustStore, 'x509', type, name, `${name}.pem`));
  }
  const trustPolicy = join(dir, 'trustpolicy.json');
  writeFileSync(trustPolicy, JSON.stringify({ version: '1.0', trustPolicies: policies }));
  return { trustPolicy, trustStore };
}

/**
 * One signer trusted by one strict policy for every repository: a CA `acme`, a leaf of OU=Build under
 * it, notation's files trusting it, and `sign` pushing a JWS signature of an image to a registry.
 */
export function acmeNotation(dir: string): { ca: KeyPair; builder: KeyPair; trustPolicy: string; trustStore: string; sign(registryUrl: string, repo: string, img: { mediaType: string; digest: string; manifest: Buffer }): Promise<string[]> } {
  const ca = makeCa(dir, 'acme');
  const builder = makeLeaf(dir, 'builder', ca, '/C=US/ST=WA/O=acme/OU=Build/CN=builder');
  const files = writeNotationTrust(dir, [['ca', 'acme', ca.cert]], [
    { name: 'acme', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:acme'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=acme, OU=Build'] },
  ]);
  return {
    ca,
    builder,
    ...files,
    async sign(registryUrl, repo, img) {
      const target = { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length };
      return pushSignatures(registryUrl, repo, target, [await jwsEnvelope({ signer: builder, chain: [derB64(builder.cert), derB64(ca.cert)], target })]);
    },
  };
}
