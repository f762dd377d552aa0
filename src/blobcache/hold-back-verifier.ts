// A verified blob stream that never delivers its last bytes before the digest is known to match.
// Hashing on the way and failing in flush() is not enough: by then the client has every byte, and
// with Content-Length framing (or a chunked body) a complete body is a successful transfer to curl.
// Holding back the latest chunk means a mismatch leaves the client short of its Content-Length (or
// without the terminating chunk) when the response is destroyed: a transfer it must reject.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { fail } from '../errors.js';

export class HoldBackVerifier extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private pending: Buffer | undefined;
  private seen = 0;

  /**
   * @param digest the `sha256:<hex>` the bytes must hash to
   * @param size the announced length, when known: more bytes than that fail at once
   * @param onVerified called once the whole body matched, before its last chunk is released
   */
  constructor(
    private readonly digest: string,
    private readonly size?: number,
    private readonly onVerified?: () => void,
  ) {
    // Chunks are held one at a time; a 1 MiB read buffer upstream means at most ~1 MiB held here.
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.seen += chunk.length;
    if (this.size !== undefined && this.seen > this.size) return cb(fail('DIGEST_MISMATCH', `blob ${this.digest}: more than the announced ${this.size} bytes`));
    const release = this.pending;
    this.pending = chunk;
    cb(null, release);
  }

  override _flush(cb: TransformCallback): void {
    if (this.size !== undefined && this.seen !== this.size) return cb(fail('DIGEST_MISMATCH', `blob ${this.digest}: ${this.seen} bytes, not the announced ${this.size}`));
    const got = `sha256:${this.hash.digest('hex')}`;
    if (got !== this.digest) return cb(fail('DIGEST_MISMATCH', `blob hashes to ${got}, not ${this.digest}`));
    this.onVerified?.();
    cb(null, this.pending);
  }
}
