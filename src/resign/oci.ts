// The OCI words both signature kinds use: media types, a descriptor, a sha256 digest.
import { createHash } from 'node:crypto';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
}

export const sha256Digest = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
