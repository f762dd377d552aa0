// docker/go canonical/json vectors (NOTARY.md §4) and notary's key IDs on its own fixture.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { canonicalBytes, compareUtf8, parseJson } from '../../../src/signatures/dct/verify/canonical-json.js';
import { canonicalKeyId, keyIdOf, makeKey } from '../../../src/signatures/dct/verify/keys.js';

const canon = (text: string) => canonicalBytes(parseJson(Buffer.from(text), 't')).toString('utf8');

describe('canonical JSON', () => {
  it.each([
    ['{"b":1, "a":[true,false,null]}', '{"a":[true,false,null],"b":1}'],
    ['{"s":"quote\\" backslash\\\\ slash/ tab\\t nl\\n"}', '{"s":"quote\\" backslash\\\\ slash/ tab\t nl\n"}'],
    ['{"s":"\\u003chtml\\u003e \\u0026"}', '{"s":"<html> &"}'],
    ['{"s":"ünï 😀 \\u2028"}', '{"s":"ünï 😀 \u2028"}'],
    ['{"n":1.0,"m":1e2,"z":-0,"neg":-5}', '{"m":100,"n":1,"neg":-5,"z":0}'],
    ['{"\\ue000":1,"😀":2}', '{"\ue000":1,"😀":2}'], // UTF-8 order: U+E000 (EE 80 80) before U+1F600 (F0 …)
  ])('%s → %s', (input, want) => {
    expect(canon(input)).toBe(want);
  });

  it('sorts keys by UTF-8 bytes, not UTF-16 code units', () => {
    expect(['😀', '\ue000'].sort(compareUtf8)).toEqual(['\ue000', '😀']);
    expect(['😀', '\ue000'].sort()).toEqual(['😀', '\ue000']); // what a plain sort would get wrong
  });

  it.each([
    ['fraction', '{"n":1.5}'],
    ['huge', '{"n":1e400}'],
    ['beyond 2^53', '{"n":9007199254740993}'],
    ['lone surrogate', '{"s":"\\ud800"}'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]).toString('latin1')],
    ['deep nesting', '['.repeat(100) + ']'.repeat(100)],
    ['not JSON', '{"a":'],
  ])('refuses %s as MALFORMED', (_n, text) => {
    const bytes = _n === 'invalid UTF-8' ? Buffer.from(text, 'latin1') : Buffer.from(text);
    expect(() => canonicalBytes(parseJson(bytes, 't'))).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });
});

describe("notary's key IDs", () => {
  const root = JSON.parse(readFileSync(new URL('../../fixtures/notary0.3-tst/root.json', import.meta.url), 'utf8'));
  it('recomputes every key ID of the notary 0.3 fixture root', () => {
    const ids = Object.keys(root.signed.keys);
    expect(ids).toHaveLength(4);
    for (const id of ids) expect(keyIdOf(root.signed.keys[id].keytype, root.signed.keys[id].keyval.public)).toBe(id);
  });
  it('gives the canonical ID notary names the root private key file by', () => {
    const id = root.signed.roles.root.keyids[0];
    const k = root.signed.keys[id];
    expect(k.keytype).toBe('ecdsa-x509');
    // fixtures/compatibility/notary0.3/private/root_keys/<canonical ID>.key in theupdateframework/notary
    expect(canonicalKeyId(makeKey(k.keytype, k.keyval.public))).toBe('f4eaf871a74aa3b3a0ff95cef2455a1e4d461639f5625418e76756fc5c948690');
  });
});
