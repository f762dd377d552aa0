// A cap on concurrent blob streams per client address (`limits.perClientStreams`): one client (or one
// misbehaving node) cannot take every upstream blob connection and starve the others' pulls. Counts
// live only while streams are open, so the map is bounded by the clients connected right now.
export class ClientStreams {
  private readonly open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** A release function, or undefined when the address is at its cap. */
  acquire(address: string): (() => void) | undefined {
    const n = this.open.get(address) ?? 0;
    if (n >= this.max) return undefined;
    this.open.set(address, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(address) ?? 1) - 1;
      if (left <= 0) this.open.delete(address);
      else this.open.set(address, left);
    };
  }

  count(address: string): number {
    return this.open.get(address) ?? 0;
  }
}
