// Progress lines for commands that work through large sets (`bundle export`, `cache prune`): on
// stderr, so stdout keeps its one JSON line; only for a set of at least `minTotal` items (or when the
// operator asked with --progress); at most one line per `everyMs`, and always a last one.
import type { Io } from './output.js';

export interface ProgressOptions {
  /** Below this many items no line is written (a small set finishes before anyone waits). */
  minTotal: number;
  /** --progress: lines whatever the size. */
  force?: boolean | undefined;
  everyMs?: number;
  now?: () => number;
}

export class Progress {
  private readonly enabled: boolean;
  private readonly t0: number;
  private lastAt = -Infinity;
  private readonly now: () => number;
  private readonly everyMs: number;

  constructor(
    private readonly io: Io,
    /** `bundle export`, `cache prune`: the start of each line. */
    private readonly what: string,
    private readonly total: number,
    /** What is counted: `references`, `blobs`. */
    private readonly unit: string,
    opts: ProgressOptions,
  ) {
    this.enabled = opts.force === true || total >= opts.minTotal;
    this.now = opts.now ?? Date.now;
    this.everyMs = opts.everyMs ?? 1000;
    this.t0 = this.now();
  }

  /** `done` of `total` finished; `detail` is appended (e.g. bytes freed). */
  tick(done: number, detail?: string): void {
    if (!this.enabled) return;
    const t = this.now();
    if (t - this.lastAt < this.everyMs) return;
    this.lastAt = t;
    this.write(done, detail, t);
  }

  /** The last line, whatever the interval. */
  finish(done: number, detail?: string): void {
    if (this.enabled) this.write(done, detail, this.now());
  }

  private write(done: number, detail: string | undefined, t: number): void {
    const pct = this.total > 0 ? Math.floor((done / this.total) * 100) : 100;
    this.io.stderr(`trustgate ${this.what}: ${done}/${this.total} ${this.unit} (${pct}%)${detail ? `, ${detail}` : ''}, ${Math.round((t - this.t0) / 1000)} s`);
  }
}
