// One global budget for the buffers blob sends read files into (`limits.sendBufferBytes`, default
// 64 MiB). Each response asks for two buffers of its preferred size (file-sender.ts) and gets at most a
// sixteenth of what is left of the budget, never less than MIN_BUFFER: the first few fast pulls get
// full 1 MiB buffers, and a crowd of slow readers shares the rest in ever smaller ones. Before this,
// 600 slow readers held two 1 MiB buffers each (1.2 GB). Past the budget only MIN_BUFFER pairs are
// handed out, bounded by limits.maxConnections.
//
// Memory goes back once the streams end. The buffers are carved out of large slabs (buffer-slabs.ts)
// and reused; once no send holds one and the sends have been quiet for a second, the slabs are dropped
// and one collection is asked for (`collect`, injected: the runtime's is app/collect-garbage.ts), since
// nothing else makes V8 collect them when no more JavaScript runs: 600 slow readers left ~88 MB of dead
// buffers in `external` memory, and RSS at +67 MiB, after they were gone.
import { BufferSlabs } from './buffer-slabs.js';

const MIN_BUFFER = 16 << 10;
const STEP = 16 << 10;

export interface BufferLease {
  readonly size: number;
  readonly buffers: [Buffer, Buffer];
  /**
   * Give the buffers back. `reusable: false` when a write that carried one may still be queued (the
   * send failed mid-way): those are never handed out again, so a queued write cannot send another
   * response's bytes.
   */
  release(reusable?: boolean): void;
}

/** Slabs are dropped once no send holds a buffer and nothing was leased for this long. */
const QUIET_MS = 1000;

export class SendBudget {
  private inUse = 0;
  leases = 0;
  private readonly slabs = new BufferSlabs();
  private quiet: NodeJS.Timeout | undefined;
  collections = 0;

  constructor(
    readonly budget: number,
    private readonly collect?: () => void,
  ) {}

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
    if (this.quiet) clearTimeout(this.quiet);
    this.quiet = undefined;
    let released = false;
    const buffers: [Buffer, Buffer] = [this.slabs.take(size), this.slabs.take(size)];
    return {
      size,
      buffers,
      release: (reusable = true) => {
        if (released) return;
        released = true;
        this.inUse -= 2 * size;
        this.leases--;
        for (const b of buffers) (reusable ? this.slabs.give(b) : this.slabs.forget(b));
        if (this.leases === 0) this.whenQuiet();
      },
    };
  }

  /** Slabs held now (each SLAB bytes of address space; only the pages used are resident). */
  get slabCount(): number {
    return this.slabs.slabCount;
  }

  /** Every buffer is back: after a quiet second, drop the slabs and collect them. */
  private whenQuiet(): void {
    if (this.quiet) clearTimeout(this.quiet);
    this.quiet = setTimeout(() => {
      this.quiet = undefined;
      if (this.leases > 0 || !this.slabs.reset()) return;
      this.collections++;
      this.collect?.();
    }, QUIET_MS);
    this.quiet.unref();
  }
}
