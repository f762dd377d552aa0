// Large deterministic blobs pushed straight through the distribution API (no image needed).
import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';

/** Deterministic, incompressible bytes: AES-128-CTR keystream, produced 1 MiB at a time. */
export function pseudoRandom(size: number, seed = 7): Readable {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 0));
  const zero = Buffer.alloc(1024 * 1024);
  let left = size;
  return new Readable({
    read() {
      if (left === 0) return this.push(null);
      const n = Math.min(left, zero.length);
      left -= n;
      this.push(cipher.update(zero.subarray(0, n)));
    },
  });
}

export async function sha256Of(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of stream) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Monolithic blob upload: POST for a session, PUT the bytes with their digest. Returns the digest. */
export async function pushBlob(registryUrl: string, repo: string, size: number, seed = 7): Promise<string> {
  const digest = await sha256Of(pseudoRandom(size, seed));
  const start = await request(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.body.dump();
  if (start.statusCode !== 202) throw new Error(`upload start: ${start.statusCode}`);
  const loc = new URL(String(start.headers.location), registryUrl);
  loc.searchParams.set('digest', digest);
  const put = await request(loc, { method: 'PUT', body: pseudoRandom(size, seed), headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' } });
  await put.body.dump();
  if (put.statusCode !== 201) throw new Error(`upload: ${put.statusCode}`);
  return digest;
}
