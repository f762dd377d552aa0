// When L2 fails, the tiered store keeps working from memory and says so; floors never go down.
import { describe, expect, it } from 'vitest';
import type { KvStore } from '../../../src/store/kv.js';
import { MemoryKv } from '../../../src/store/memory-kv.js';
import { TieredKv } from '../../../src/store/tiered-kv.js';

class FlakyKv implements KvStore {
  readonly kind = 'flaky';
  down = false;
  inner = new MemoryKv();
  private gate<T>(f: () => Promise<T>): Promise<T> {
    return this.down ? Promise.reject(new Error('Connection is closed.')) : f();
  }
  get = (k: string) => this.gate(() => this.inner.get(k));
  set = (k: string, v: Buffer, t?: number) => this.gate(() => this.inner.set(k, v, t));
  delete = (k: string) => this.gate(() => this.inner.delete(k));
  raiseVersions = (k: string, v: Record<string, number>) => this.gate(() => this.inner.raiseVersions(k, v));
  getVersions = (k: string) => this.gate(() => this.inner.getVersions(k));
  tryLock = (k: string, ms: number) => this.gate(() => this.inner.tryLock(k, ms));
  health = () => ({ ok: !this.down, detail: this.down ? 'down' : undefined });
  close = async () => {};
}

describe('TieredKv with a failing L2', () => {
  it('readiness recovers by itself once L2 is back, with no other traffic (an idle replica after a failover)', async () => {
    const l2 = new FlakyKv();
    const kv = new TieredKv(new MemoryKv(), l2, undefined, 60);
    l2.down = true;
    await kv.set('k', Buffer.from('v')); // fails over to memory and records the L2 error
    l2.down = false;
    expect(kv.health()).toMatchObject({ ok: false }); // the error stands until L2 answers again
    await new Promise((r) => setImmediate(r)); // the probe health() started has answered
    expect(kv.health()).toEqual({ ok: true });
  });

  it('serves from memory, reports degraded, and recovers', async () => {
    const l2 = new FlakyKv();
    const kv = new TieredKv(new MemoryKv(), l2, undefined, 60);
    await kv.set('m', Buffer.from('manifest'));
    await kv.raiseVersions('f', { timestamp: 7 });
    l2.down = true;
    expect((await kv.get('m'))?.toString()).toBe('manifest');
    await expect(kv.set('n', Buffer.from('x'))).resolves.toBeUndefined();
    expect(await kv.raiseVersions('f', { timestamp: 3 })).toEqual({ timestamp: 7 });
    expect(await kv.getVersions('f')).toEqual({ timestamp: 7 });
    expect(await kv.tryLock('l', 1000)).toBeDefined(); // falls back to an in-process lock
    expect(kv.health()).toMatchObject({ ok: false });
    l2.down = false;
    await kv.get('zzz');
    expect(kv.health()).toEqual({ ok: true });
  });

  it('never lowers floors when L2 comes back empty (Redis lost its data)', async () => {
    const l2 = new FlakyKv();
    const kv = new TieredKv(new MemoryKv(), l2);
    await kv.raiseVersions('f', { snapshot: 9 });
    Object.assign(l2, { inner: new MemoryKv() }); // wiped, as a restarted Redis without persistence
    expect((await kv.getVersions('f')).snapshot).toBe(9);
  });
});
