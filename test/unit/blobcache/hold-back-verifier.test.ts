// The hold-back verifier never lets the last chunk out before the digest (and length) are known good.
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { HoldBackVerifier } from '../../../src/blobcache/hold-back-verifier.js';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const chunks = [Buffer.from('first '), Buffer.from('second '), Buffer.from('last')];
const whole = Buffer.concat(chunks);

async function run(digest: string, size?: number): Promise<{ out: Buffer; err?: { code?: string } }> {
  const got: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      got.push(c);
      cb();
    },
  });
  try {
    await pipeline(Readable.from(chunks), new HoldBackVerifier(digest, size), sink);
    return { out: Buffer.concat(got) };
  } catch (err) {
    return { out: Buffer.concat(got), err: err as { code?: string } };
  }
}

describe('HoldBackVerifier', () => {
  it('passes every byte when the digest and length match', async () => {
    expect(await run(digestOf(whole), whole.length)).toEqual({ out: whole });
  });

  it.each<[string, string, number | undefined]>([
    ['same length, other bytes', digestOf(Buffer.from('first second lasT')), whole.length],
    ['right digest, wrong announced length (short)', digestOf(whole), whole.length + 1],
    ['more bytes than announced', digestOf(whole), 10],
  ])('%s: DIGEST_MISMATCH, and the last chunk never released', async (_n, digest, size) => {
    const r = await run(digest, size);
    expect(r.err?.code).toBe('DIGEST_MISMATCH');
    expect(r.out.length).toBeLessThan(whole.length);
    expect(r.out.includes(Buffer.from('last'))).toBe(false);
  });
});
