// The media type a manifest is served with (and a Notation signature must name): its own `mediaType`
// when the bytes carry one, the upstream's Content-Type otherwise (issue 12).
import { describe, expect, it } from 'vitest';
import { mediaTypeOf } from '../../../src/server/handlers/manifest.js';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER = 'application/vnd.docker.distribution.manifest.v2+json';

describe('mediaTypeOf', () => {
  it("prefers the manifest's own mediaType over the upstream's Content-Type", () => {
    expect(mediaTypeOf(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI })), DOCKER)).toBe(OCI);
    expect(mediaTypeOf(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI })), 'application/octet-stream')).toBe(OCI);
  });
  it('falls back to the Content-Type when the bytes carry none', () => {
    expect(mediaTypeOf(Buffer.from(JSON.stringify({ schemaVersion: 2 })), OCI)).toBe(OCI);
    expect(mediaTypeOf(Buffer.from('not json'), DOCKER)).toBe(DOCKER);
    expect(mediaTypeOf(Buffer.from('{}'), undefined)).toBe(DOCKER);
  });
});
