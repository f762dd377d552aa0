// Build small, valid OCI images by hand (no network: LAB.md) and push them to a real registry with
// skopeo, which keeps the manifest bytes as written — the bytes the notary CLI then signs.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const run = promisify(execFile);

export interface Blob {
  digest: string;
  size: number;
  bytes: Buffer;
}

export interface PushedImage {
  tag: string;
  /** The manifest (or index) exactly as pushed. */
  manifest: Buffer;
  digest: string;
  mediaType: string;
  blobs: Blob[];
}

function blob(bytes: Buffer): Blob {
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, bytes };
}

/** A one-file ustar archive: enough for containerd to unpack. */
export function tarOneFile(name: string, content: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(content.length.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([h, content, pad, Buffer.alloc(1024)]);
}

function imageParts(label: string, arch = 'amd64') {
  const tar = tarOneFile('hello.txt', Buffer.from(`${label} ${randomBytes(8).toString('hex')}\n`));
  const layer = blob(gzipSync(tar));
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`; // of the uncompressed layer
  const config = blob(
    Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [diffId] } })),
  );
  const manifest = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
      }),
    ),
  );
  return { layer, config, manifest };
}

function writeLayout(dir: string, blobs: Blob[], top: Blob, mediaType: string, tag: string): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  for (const b of [...blobs, top]) writeFileSync(join(dir, 'blobs', 'sha256', b.digest.slice(7)), b.bytes);
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType, digest: top.digest, size: top.size, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
}

async function skopeoPush(dir: string, tag: string, dest: string, all: boolean): Promise<void> {
  await run('skopeo', ['copy', ...(all ? ['--all'] : []), '--dest-tls-verify=false', `oci:${dir}:${tag}`, `docker://${dest}`], { timeout: 120_000 });
}

/** A single-arch OCI image pushed as registryHost/repo:tag. */
export async function pushImage(workDir: string, registryHost: string, repo: string, tag: string, label = tag): Promise<PushedImage> {
  const { layer, config, manifest } = imageParts(label);
  const dir = join(workDir, `oci-${repo.replace(/\//g, '_')}-${tag}-${randomBytes(3).toString('hex')}`);
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  writeLayout(dir, [layer, config], manifest, mediaType, tag);
  await skopeoPush(dir, tag, `${registryHost}/${repo}:${tag}`, false);
  return { tag, manifest: manifest.bytes, digest: manifest.digest, mediaType, blobs: [config, layer] };
}

/** A two-platform OCI index pushed as registryHost/repo:tag (children by digest). */
export async function pushIndex(workDir: string, registryHost: string, repo: string, tag: string): Promise<PushedImage & { children: Blob[] }> {
  const a = imageParts(`${tag}-amd64`, 'amd64');
  const b = imageParts(`${tag}-arm64`, 'arm64');
  const mediaType = 'application/vnd.oci.image.index.v1+json';
  const index = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        manifests: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: a.manifest.digest, size: a.manifest.size, platform: { architecture: 'amd64', os: 'linux' } },
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: b.manifest.digest, size: b.manifest.size, platform: { architecture: 'arm64', os: 'linux' } },
        ],
      }),
    ),
  );
  const dir = join(workDir, `oci-index-${tag}-${randomBytes(3).toString('hex')}`);
  writeLayout(dir, [a.layer, a.config, a.manifest, b.layer, b.config, b.manifest], index, mediaType, tag);
  await skopeoPush(dir, tag, `${registryHost}/${repo}:${tag}`, true);
  return { tag, manifest: index.bytes, digest: index.digest, mediaType, blobs: [a.config, a.layer, b.config, b.layer], children: [a.manifest, b.manifest] };
}
