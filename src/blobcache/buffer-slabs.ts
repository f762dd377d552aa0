// Send buffers carved out of large slabs, so that the memory goes back to the system once the sends
// are done. Buffers allocated one by one (Buffer.allocUnsafeSlow) come from glibc's heap: 16 KiB
// buffers always, and 1 MiB ones too once glibc has raised its mmap threshold (it does after the first
// large free). Freed, they stay in the process: after 600 slow readers had gone and V8 had collected
// their buffers, RSS stayed at +50 MiB (124 → 174 MiB; connection-limits test). A slab of SLAB bytes is
// above glibc's largest mmap threshold (32 MiB on 64-bit), so it is always its own mapping: untouched
// pages cost nothing, and the whole slab is unmapped when it is collected (with MALLOC_MMAP_THRESHOLD_
// forcing the same for small buffers, RSS went back to 82 MiB, below its 120 MiB baseline).
//
// Chunks come in power-of-two classes from 16 KiB; a freed chunk is reused by the next lease of its
// class. While any chunk is out the slabs are kept; once every chunk is back, `reset()` drops them all
// (the owner does so after a quiet second, then asks for a collection).
const SLAB = 64 << 20;
const MIN_CHUNK = 16 << 10;
/** Above this, a buffer is its own allocation (not carved): no send asks for more than 1 MiB today. */
const MAX_CHUNK = 4 << 20;

export class BufferSlabs {
  private slabs: ArrayBuffer[] = [];
  private offset = SLAB; // no room until the first slab
  private free = new Map<number, Buffer[]>();
  /** Chunks handed out and not yet given back. */
  out = 0;

  get slabCount(): number {
    return this.slabs.length;
  }

  /** A buffer of `size` bytes (a view of its class's chunk); give it back with `give`. */
  take(size: number): Buffer {
    const cls = classOf(size);
    if (cls > MAX_CHUNK) return Buffer.allocUnsafeSlow(size);
    this.out++;
    const chunk = this.free.get(cls)?.pop() ?? this.carve(cls);
    return chunk.length === size ? chunk : chunk.subarray(0, size);
  }

  /** Return a buffer from `take`, once nothing will read from it again (every write that carried it is done). */
  give(buf: Buffer): void {
    const cls = classOf(buf.length);
    if (cls > MAX_CHUNK) return;
    this.out--;
    const chunk = Buffer.from(buf.buffer, buf.byteOffset, cls);
    const list = this.free.get(cls);
    if (list) list.push(chunk);
    else this.free.set(cls, [chunk]);
  }

  /** A chunk that will not come back (a write may still hold it): counted as returned, never reused. */
  forget(buf: Buffer): void {
    if (classOf(buf.length) <= MAX_CHUNK) this.out--;
  }

  /**
   * Drop every slab (only when no chunk is out): the memory goes once V8 collects them. The slabs
   * dropped (none: nothing was dropped), so the owner can tell when they are really gone.
   */
  reset(): ArrayBuffer[] {
    if (this.out > 0 || this.slabs.length === 0) return [];
    const dropped = this.slabs;
    this.slabs = [];
    this.free = new Map();
    this.offset = SLAB;
    return dropped;
  }

  private carve(cls: number): Buffer {
    if (this.offset + cls > SLAB) {
      this.slabs.push(new ArrayBuffer(SLAB));
      this.offset = 0;
    }
    const chunk = Buffer.from(this.slabs[this.slabs.length - 1]!, this.offset, cls);
    this.offset += cls;
    return chunk;
  }
}

function classOf(size: number): number {
  let c = MIN_CHUNK;
  while (c < size) c *= 2;
  return c;
}
