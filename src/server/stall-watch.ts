// Clients that stop reading. A response whose bytes sit unsent (the client's TCP window is closed) and
// whose socket has not written a byte for `stallMs` is destroyed: stream.pipeline then destroys the
// upstream body, so the upstream connection goes back to the pool instead of being pinned by a client
// that will never read — 150 such clients would otherwise hold every upstream connection.
// One timer for all responses (not one per response); a response with nothing pending (waiting for
// the upstream, or done) is never "stalled": upstream deadlines are the registry client's business.
import type { ServerResponse } from 'node:http';

interface Progress {
  bytes: number;
  since: number;
}

export class StallWatch {
  private readonly watched = new Map<ServerResponse, Progress>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stallMs: number,
    private readonly onStall: (res: ServerResponse) => void = () => {},
    private readonly now: () => number = Date.now,
    private readonly tickMs = Math.max(100, Math.min(1000, Math.floor(stallMs / 4))),
  ) {}

  watch(res: ServerResponse): void {
    this.watched.set(res, { bytes: res.socket?.bytesWritten ?? 0, since: this.now() });
    res.once('close', () => {
      this.watched.delete(res);
      if (this.watched.size === 0) this.stop();
    });
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    }
  }

  /** Responses being watched (tests, metrics). */
  get size(): number {
    return this.watched.size;
  }

  tick(): void {
    const now = this.now();
    for (const [res, p] of this.watched) {
      const written = res.socket?.bytesWritten ?? p.bytes;
      // writableLength counts what the response and its socket hold unsent.
      if (written !== p.bytes || res.writableLength === 0) {
        p.bytes = written;
        p.since = now;
        continue;
      }
      if (now - p.since >= this.stallMs) {
        this.watched.delete(res);
        this.onStall(res);
        res.destroy();
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
