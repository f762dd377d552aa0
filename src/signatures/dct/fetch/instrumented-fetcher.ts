// Counts and times the metadata requests that actually go to the notary server (it sits below the
// caching layer, so store hits are not counted as fetches).
import type { Metrics } from '../../../observe/metrics.js';
import type { MetadataFetcher, MetadataRequest } from '../client.js';

export class InstrumentedFetcher implements MetadataFetcher {
  readonly source: string;
  constructor(
    private readonly inner: MetadataFetcher,
    private readonly metrics: Pick<Metrics, 'notaryFetches' | 'notarySeconds'>,
  ) {
    this.source = inner.source;
  }

  async fetch(req: MetadataRequest): Promise<Uint8Array | null> {
    // Label by role kind, not name: delegation names are unbounded and would explode cardinality.
    const role = req.role.startsWith('targets/') ? 'delegation' : req.role;
    const end = this.metrics.notarySeconds.startTimer({ role });
    try {
      const r = await this.inner.fetch(req);
      this.metrics.notaryFetches.inc({ role, result: r ? 'ok' : 'not_found' });
      return r;
    } catch (err) {
      this.metrics.notaryFetches.inc({ role, result: (err as { code?: string }).code ?? 'error' });
      throw err;
    } finally {
      end();
    }
  }
}
