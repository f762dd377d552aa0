// One global budget for the buffers blob sends read files into (`limits.sendBufferBytes`, default
// 64 MiB). Each response asks for two buffers of its preferred size (file-sender.ts) and gets at most a
// sixteenth of what is left of the budget, never less than MIN_BUFFER: the first few fast pulls get
// full 1 MiB buffers, and a crowd of slow readers shares the rest in ever smaller ones. Before this,
// 600 slow readers held two 1 MiB buffers each (1.2 GB). Past the budget only MIN_BUFFER pairs are
// handed out, bounded by limits.maxConnections. Buffers are allocated per lease and dropped on release
// (not pooled), so memory goes back once the streams end.
const MIN_BUFFER = 16 << 10;
const STEP = 16 << 10;

export interface BufferLease {
  readonly size: number;
  readonly buffers: [Buffer, Buffer];
  release(): void;
}

export class SendBudget {
  private inUse = 0;
  leases = 0;

  constructor(readonly budget: number) {}

  get bytesInUse(): number {
    return this.inUse;
  }

  /** Two buffers of at most `preferred` bytes each; `release()` when the response is done. */
  lease(preferred: number): BufferLease {
    const left = Math.max(0, this.budget - this.inUse);
    const share = Math.floor(left / 16 / STEP) * STEP;
    const size = Math.max(1, Math.min(preferred, Math.max(MIN_BUFFER, share)));
    this.inUse += 2 * size;
    this.leases++;
    let released = false;
    return {
      size,
      buffers: [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)],
      release: () => {
        if (released) return;
        released = true;
        this.inUse -= 2 * size;
        this.leases--;
      },
    };
  }
}
