// One global budget for the buffers blob sends read files into (`limits.sendBufferBytes`, default
// 64 MiB). Each response asks for two buffers of its preferred size (file-sender.ts) and gets at most a
// sixteenth of what is left of the budget, never less than MIN_BUFFER: the first few fast pulls get
// full 1 MiB buffers, and a crowd of slow readers shares the rest in ever smaller ones. Before this,
// 600 slow readers held two 1 MiB buffers each (1.2 GB). Past the budget only MIN_BUFFER pairs are
// handed out, bounded by limits.maxConnections.
//
// Memory goes back once the streams end. The buffers are carved out of large slabs (buffer-slabs.ts)
// and reused; once no send holds one and the sends have been quiet for a second, the slabs are dropped
// and a collection is asked for (`collect`, injected: the runtime's is app/collect-garbage.ts; asked
// again while a dropped slab is still alive, RECHECK_MS), since
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
/**
 * A collection after which a dropped slab is still alive is asked for again this much later (doubling
 * each time), at most MAX_COLLECTIONS in all per quiet spell. Measured (connection-limits test): about
 * one run in three, the one collection a quiet second after 600 slow readers left found their slabs
 * still referenced and freed nothing (RSS 120 → 219 MiB after, as with the readers there), and nothing
 * asked again; the references are gone a moment later (the other runs: back to 122 MiB).
 */
const RECHECK_MS = 1000;
const MAX_COLLECTIONS = 5;

export interface SendBudgetTiming {
  quietMs?: number;
  recheckMs?: number;
}

export class SendBudget {
  private inUse = 0;
  leases = 0;
  private readonly slabs = new BufferSlabs();
  private quiet: NodeJS.Timeout | undefined;
  private recheck: NodeJS.Timeout | undefined;
  collections = 0;
  /** Dropped slabs V8 has not freed yet (a FinalizationRegistry counts them down). */
  slabsAlive = 0;
  private readonly freed = new FinalizationRegistry<undefined>(() => {
    this.slabsAlive--;
  });

  constructor(
    readonly budget: number,
    private readonly collect?: () => void,
    private readonly timing: SendBudgetTiming = {},
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
    this.stopTimers(); // a collection pauses the process: never while sends run
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

  private stopTimers(): void {
    if (this.quiet) clearTimeout(this.quiet);
    if (this.recheck) clearTimeout(this.recheck);
    this.quiet = this.recheck = undefined;
  }

  /** Every buffer is back: after a quiet second, drop the slabs and collect them until they are gone. */
  private whenQuiet(): void {
    this.stopTimers();
    this.quiet = setTimeout(() => {
      this.quiet = undefined;
      if (this.leases > 0) return;
      const dropped = this.slabs.reset();
      if (dropped.length === 0) return;
      for (const slab of dropped) this.freed.register(slab, undefined);
      this.slabsAlive += dropped.length;
      this.collectUntilFreed(1, this.timing.recheckMs ?? RECHECK_MS);
    }, this.timing.quietMs ?? QUIET_MS);
    this.quiet.unref();
  }

  private collectUntilFreed(attempt: number, delay: number): void {
    this.collections++;
    this.collect?.();
    if (attempt >= MAX_COLLECTIONS) return;
    this.recheck = setTimeout(() => {
      this.recheck = undefined;
      if (this.slabsAlive > 0 && this.leases === 0) this.collectUntilFreed(attempt + 1, delay * 2);
    }, delay);
    this.recheck.unref();
  }
}
