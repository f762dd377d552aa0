// NOTARY.md §4 and checklist 14, 16, 17: docker/go canonical/json, byte for byte. Every vector is
// checked against src's encoder AND the builder's independent one, so the two cannot share a bug
// that signing would hide.
import { describe, expect, it } from 'vitest';
import { canonicalBytes, compareUtf8, parseJson, MAX_JSON_DEPTH } from '../../../../src/signatures/dct/verify/canonical-json.js';
import { canonicalJson, utf8Order, wireJson, type Json, type WireOptions } from '../../../support/notary-builder/index.js';

const srcCanon = (wire: string | Buffer) => canonicalBytes(parseJson(Buffer.from(wire), 'test'));
const builderCanon = (wire: string | Buffer) => canonicalJson(JSON.parse(Buffer.from(wire).toString('utf8')) as Json);

describe('canonical form (checklist 16)', () => {
  // [what, wire text, expected canonical bytes as a JS string (encoded as UTF-8)]
  it.each<[string, string, string]>([
    ['keys sorted, whitespace dropped', '{ "b" : 1 ,\n "a" : [ true , false , null ] }', '{"a":[true,false,null],"b":1}'],
    ['nested objects sorted too', '{"z":{"y":1,"x":{"b":2,"a":1}},"a":{}}', '{"a":{},"z":{"x":{"a":1,"b":2},"y":1}}'],
    ['arrays keep their order', '{"a":[3,1,2,{"b":1,"a":0}]}', '{"a":[3,1,2,{"a":0,"b":1}]}'],
    ['only " and \\ are escaped', '{"s":"q\\" b\\\\ sl\\/"}', '{"s":"q\\" b\\\\ sl/"}'],
    ['control characters go out raw', '{"s":"\\u0000\\u0001\\b\\t\\n\\f\\r\\u001f\\u007f"}', '{"s":"\u0000\u0001\b\t\n\f\r\u001f\u007f"}'],
    ['HTML escapes decode to raw < > &', '{"s":"\\u003ca\\u003e \\u0026"}', '{"s":"<a> &"}'],
    ['U+2028/9 raw', '{"s":"\\u2028\\u2029"}', '{"s":"\u2028\u2029"}'],
    ['non-ASCII raw UTF-8', '{"s":"ünï 日本 😀"}', '{"s":"ünï 日本 😀"}'],
    ['escaped astral pair → raw', '{"s":"\\ud83d\\ude00"}', '{"s":"😀"}'],
    ['1.0 → 1', '{"n":1.0}', '{"n":1}'],
    ['exponents print as integers', '{"a":1e2,"b":1E+2,"c":100e-2,"d":2.50e1}', '{"a":100,"b":100,"c":1,"d":25}'],
    ['-0 → 0', '{"n":-0,"m":-0.0}', '{"m":0,"n":0}'],
    ['negative and 2^53-1', '{"a":-5,"b":9007199254740991}', '{"a":-5,"b":9007199254740991}'],
    ['duplicate keys: last wins', '{"a":1,"a":2}', '{"a":2}'],
    ['empty key first', '{"a":1,"":0}', '{"":0,"a":1}'],
    ['prefix sorts first', '{"ab":1,"a":2}', '{"a":2,"ab":1}'],
    ['upper case before lower case', '{"a":1,"B":2}', '{"B":2,"a":1}'],
    ['é (C3 A9) after z (7A)', '{"é":1,"z":2}', '{"z":2,"é":1}'],
    ['UTF-8 order: U+E000 (EE…) before 😀 (F0…), unlike UTF-16', '{"😀":2,"\\ue000":1}', '{"\ue000":1,"😀":2}'],
    ['UTF-8 order: U+FFFF before U+10000', '{"𐀀":2,"\\uffff":1}', '{"\uffff":1,"𐀀":2}'],
    ['keys are escaped like values', '{"k\\"\\\\":1}', '{"k\\"\\\\":1}'],
    ['scalars at the top', '"x<"', '"x<"'],
  ])('%s', (_what, wire, want) => {
    const expected = Buffer.from(want, 'utf8');
    expect(srcCanon(wire)).toEqual(expected);
    expect(builderCanon(wire)).toEqual(expected);
  });

  it('sorts by UTF-8 bytes where UTF-16 order differs', () => {
    const keys = ['😀', '\ue000', 'a', '\uffff', 'é'];
    const byUtf8 = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(byUtf8).toEqual(['a', 'é', '\ue000', '\uffff', '😀']);
    expect([...keys].sort(compareUtf8)).toEqual(byUtf8);
    expect([...keys].sort(utf8Order)).toEqual(byUtf8);
    expect([...keys].sort()).not.toEqual(byUtf8); // the default sort would be wrong
  });
});

describe('non-canonicalizable input is MALFORMED (checklist 17, 42)', () => {
  it.each<[string, string | Buffer]>([
    ['a fraction', '{"length":1.5}'],
    ['a fraction deep inside', '{"a":[{"b":{"custom":0.1}}]}'],
    ['a number that overflows to Infinity', '{"n":1e400}'],
    ['an integer beyond 2^53', '{"n":9007199254740993}'],
    ['a lone surrogate escape', '{"s":"\\ud800"}'],
    ['a lone surrogate in a key', '{"\\udc00":1}'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])],
    ['a UTF-8 byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')])],
    ['truncated JSON', '{"a":'],
    ['trailing garbage', '{"a":1} x'],
    ['single quotes', "{'a':1}"],
    ['NaN literal', '{"n":NaN}'],
    [`arrays nested deeper than ${MAX_JSON_DEPTH}`, '['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1)],
    ['objects nested 10000 deep', '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)],
  ])('%s', (_what, wire) => {
    expect(() => srcCanon(wire)).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });

  it(`accepts nesting up to the limit`, () => {
    const depth = MAX_JSON_DEPTH - 1;
    expect(srcCanon('['.repeat(depth) + ']'.repeat(depth)).toString()).toBe('['.repeat(depth) + ']'.repeat(depth));
  });

  it('the builder refuses to sign what Go could not canonicalize', () => {
    expect(() => canonicalJson({ n: 1.5 })).toThrow(/not an integer/);
    expect(() => canonicalJson({ n: 2 ** 53 + 2 })).toThrow(/2\^53/);
  });
});

// A small deterministic PRNG (mulberry32): the same "random" documents on every run.
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const ALPHABET = ['a', 'Z', '0', ' ', '"', '\\', '/', '<', '>', '&', '\u0000', '\u001f', '\u007f', '\n', 'é', '\u2028', '\ue000', '\uffff', '日', '😀', '𐀀'];

function randomJson(rnd: () => number, depth = 0): Json {
  const str = () => Array.from({ length: Math.floor(rnd() * 6) }, () => ALPHABET[Math.floor(rnd() * ALPHABET.length)]).join('');
  const r = rnd();
  if (depth > 3 || r < 0.3) {
    const s = rnd();
    if (s < 0.4) return str();
    if (s < 0.8) return Math.floor((rnd() - 0.5) * 2 ** 40);
    return s < 0.9 ? null : rnd() < 0.5;
  }
  if (r < 0.5) return Array.from({ length: Math.floor(rnd() * 4) }, () => randomJson(rnd, depth + 1));
  return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 5) }, () => [str(), randomJson(rnd, depth + 1)]));
}

describe('wire forms all canonicalize to the same bytes (checklist 14)', () => {
  const wires: WireOptions[] = [
    {},
    { indent: 2 },
    { keyOrder: 'reverse' },
    { keyOrder: 'insertion', htmlEscape: false },
    { asciiOnly: true },
    { floatIntegers: true, indent: 1, trailingNewline: true },
  ];
  it('src and the builder agree on 300 generated documents in every wire form', () => {
    const rnd = prng(20260101);
    for (let i = 0; i < 300; i++) {
      const doc = { signed: randomJson(rnd) };
      const want = canonicalJson(doc);
      for (const w of wires) expect(srcCanon(wireJson(doc, w)), `doc ${i} wire ${JSON.stringify(w)}`).toEqual(want);
    }
  });
});
