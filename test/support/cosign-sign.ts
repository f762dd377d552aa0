// cosign signatures made from the specification (sigstore/cosign SIGNATURE_SPEC.md) with node:crypto,
// and pushed to a real registry the way cosign stores them: the classic tag form
// (`sha256-<hex>.sig`, simple-signing payload layers with signature annotations) and Sigstore bundles
// as OCI referrers in the referrers tag schema (BUNDLE_SPEC.md; distribution 2.8 has no referrers API).
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { putBlob, putManifest, putReferrer, putReferrersIndex, sha256Digest } from './registry-push.js';

export interface CosignKeyPair {
  privateKey: KeyObject;
  publicPem: string;
}

/** ECDSA P-256, the scheme every cosign implementation must support. */
export function makeCosignKey(): CosignKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** The simple-signing payload cosign writes for an image digest. */
export function simpleSigningPayload(digest: string, over: { type?: string; repo?: string } = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': over.repo ?? '127.0.0.1/x' }, image: { 'docker-manifest-digest': digest }, type: over.type ?? 'cosign container image signature' },
      optional: null,
    }),
  );
}

/** base64 ASN.1 ECDSA signature over sha256(payload), as in the dev.cosignproject.cosign/signature annotation. */
export function signPayload(payload: Buffer, key: KeyObject): string {
  return sign('sha256', payload, key).toString('base64');
}

export interface ClassicLayer {
  /** The payload blob pushed (may differ from what was signed, for tamper tests). */
  payload: Buffer;
  signature: string;
  certificate?: string;
  rekorBundle?: string;
}

/** Push signature layers for `digest` as cosign does: one OCI manifest tagged sha256-<hex>.sig. */
export async function pushClassicSignatures(registry: string, repo: string, digest: string, layers: ClassicLayer[], opts: { layersFirst?: object[] } = {}): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: [] } }));
  const configDigest = await putBlob(registry, repo, config);
  // Other layers ahead of the signatures (attestations that older tools pushed to the same tag).
  const descriptors: object[] = [...(opts.layersFirst ?? [])];
  for (const l of layers) {
    const d = await putBlob(registry, repo, l.payload);
    descriptors.push({
      mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      size: l.payload.length,
      digest: d,
      annotations: {
        'dev.cosignproject.cosign/signature': l.signature,
        ...(l.certificate ? { 'dev.sigstore.cosign/certificate': l.certificate } : {}),
        ...(l.rekorBundle ? { 'dev.sigstore.cosign/bundle': l.rekorBundle } : {}),
      },
    });
  }
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: configDigest }, layers: descriptors }),
  );
  await putManifest(registry, repo, `${digest.replace(':', '-')}.sig`, manifest, 'application/vnd.oci.image.manifest.v1+json');
  return sha256Digest(manifest);
}

/** A Sigstore bundle attached as an OCI referrer of `subject`, listed in the referrers tag schema index. */
export async function pushBundleReferrers(registry: string, repo: string, subject: { mediaType: string; digest: string; size: number }, bundles: Buffer[]): Promise<string[]> {
  const empty = Buffer.from('{}');
  const emptyDigest = await putBlob(registry, repo, empty);
  const entries = [];
  for (const b of bundles) {
    const bd = await putBlob(registry, repo, b);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: empty.length },
        layers: [{ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', digest: bd, size: b.length }],
        subject,
        annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1' },
      }),
    );
    entries.push(await putReferrer(registry, repo, manifest, 'application/vnd.dev.sigstore.bundle.v0.3+json'));
  }
  await putReferrersIndex(registry, repo, subject.digest, entries);
  return entries.map((e) => e.digest);
}

/** Sign `digest` in `registryHost/repo` with `key` and push it in the tag form, as `cosign sign --key` does. */
export async function cosignSignImage(registryUrl: string, registryHost: string, repo: string, digest: string, key: KeyObject): Promise<string> {
  const payload = simpleSigningPayload(digest, { repo: `${registryHost}/${repo}` });
  return pushClassicSignatures(registryUrl, repo, digest, [{ payload, signature: signPayload(payload, key) }]);
}
