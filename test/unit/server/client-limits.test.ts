// The two small pieces behind slow-client protection, with an injected clock and fake responses: the
// stall watch (cut a response whose client reads nothing) and the per-address blob stream cap.
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ClientStreams } from '../../../src/server/client-streams.js';
import { StallWatch } from '../../../src/server/stall-watch.js';
import { validateConfig } from '../../../src/config/schema.js';

class FakeRes extends EventEmitter {
  socket = { bytesWritten: 0 };
  writableLength = 0;
  destroyed = false;
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

function setup() {
  let now = 0;
  const stalled: unknown[] = [];
  const w = new StallWatch(30_000, (r) => stalled.push(r), () => now, 60_000);
  const res = new FakeRes();
  w.watch(res as unknown as ServerResponse);
  return { w, res, stalled, advance: (ms: number) => ((now += ms), w.tick()) };
}

describe('StallWatch', () => {
  it('cuts a response with unsent bytes and no progress for the stall period', () => {
    const t = setup();
    t.res.writableLength = 65536;
    t.advance(29_000);
    expect(t.res.destroyed).toBe(false);
    t.advance(2_000);
    expect(t.res.destroyed).toBe(true);
    expect(t.stalled).toHaveLength(1);
    expect(t.w.size).toBe(0);
    t.w.stop();
  });

  it('keeps a slow reader that makes progress', () => {
    const t = setup();
    t.res.writableLength = 65536;
    for (let i = 0; i < 10; i++) {
      t.res.socket.bytesWritten += 1024; // a trickle, but the client reads
      t.advance(20_000);
    }
    expect(t.res.destroyed).toBe(false);
    t.w.stop();
  });

  it('never cuts a response that has nothing pending (waiting for the upstream)', () => {
    const t = setup();
    t.advance(120_000);
    expect(t.res.destroyed).toBe(false);
    t.res.writableLength = 10; // bytes appear now: the stall period starts from here
    t.advance(20_000);
    expect(t.res.destroyed).toBe(false);
    t.advance(11_000);
    expect(t.res.destroyed).toBe(true);
    t.w.stop();
  });
});

describe('ClientStreams', () => {
  it('caps concurrent streams per address, releases once, and forgets idle addresses', () => {
    const c = new ClientStreams(2);
    const a1 = c.acquire('10.0.0.1')!;
    const a2 = c.acquire('10.0.0.1')!;
    expect(c.acquire('10.0.0.1')).toBeUndefined();
    expect(c.acquire('10.0.0.2')).toBeDefined(); // another client is not affected
    a1();
    a1(); // double release does not free a second slot
    expect(c.count('10.0.0.1')).toBe(1);
    expect(c.acquire('10.0.0.1')).toBeDefined();
    expect(c.acquire('10.0.0.1')).toBeUndefined();
    a2();
  });
});

describe('config: redirects and client limits', () => {
  const base = { upstreams: [{ name: 'u', registry: 'https://r.example', gun: 'r.example', policy: 'off' }] };
  it('has the documented defaults', () => {
    const c = validateConfig(base, 't');
    expect(c.limits).toMatchObject({ clientStallSeconds: 30, perClientStreams: 32, upstreamBlobConnections: 64, upstreamMetadataConnections: 32 });
    expect(c.upstreams[0]!.redirects).toEqual({ allowHosts: [], allowPrivate: false });
    expect(c.store).toEqual({ kind: 'file', path: './data', maxBytes: 1024 ** 3 });
  });
  it('refuses wrong shapes, naming the key', () => {
    const bad = {
      upstreams: [{ ...base.upstreams[0], redirects: { allowHosts: ['https://x/'], allowPrivate: 'yes', other: 1 } }],
      limits: { clientStallSeconds: 0, perClientStreams: -1 },
      store: { kind: 'file', maxBytes: 10 },
    };
    let message = '';
    try {
      validateConfig(bad, 't');
    } catch (err) {
      message = (err as Error).message;
    }
    for (const k of ['redirects.allowHosts', 'redirects.allowPrivate', 'redirects.other', 'limits.clientStallSeconds', 'limits.perClientStreams', 'store.maxBytes']) {
      expect(message).toContain(k);
    }
  });
});
