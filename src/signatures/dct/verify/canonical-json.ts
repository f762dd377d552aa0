// Notary v1 canonical JSON, byte for byte as docker/go canonical/json (vendored by notary) writes it.
// This is NOT RFC 8785 / OLPC canonical JSON and not what tuf-js produces: strings escape only `"` and
// `\` (control characters and non-ASCII go out raw), keys sort by UTF-8 bytes, numbers print as int64.
// So no library speaks it; this file is the one place it is implemented.
import { fail } from '../../../errors.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Nesting deeper than this is refused. Real metadata nests ~6 levels; `custom` is free-form. */
export const MAX_JSON_DEPTH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parse metadata bytes to a generic JSON value, refusing anything that is not plain JSON we can
 * canonicalize exactly as Go would.
 *
 * DEVIATION: Go decodes invalid UTF-8 and lone-surrogate escapes to U+FFFD; we refuse them as
 * MALFORMED. Go's encoder only ever writes valid UTF-8, so a genuinely signed file never has them —
 * being stricter can only refuse tampered input, never accept it.
 */
export function parseJson(bytes: Uint8Array, what: string): JsonValue {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw fail('MALFORMED', `${what}: not valid UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw fail('MALFORMED', `${what}: not valid JSON (${(err as Error).message})`);
  }
  checkShape(value, what);
  return value as JsonValue;
}

// Iterative walk: V8's JSON.parse is itself iterative, so a hostile `[[[[…]]]]` parses fine and
// would only blow the stack later in a recursive canonicalizer. Refuse it here instead.
function checkShape(root: unknown, what: string): void {
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (!v.isWellFormed()) throw fail('MALFORMED', `${what}: string with a lone UTF-16 surrogate`);
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) throw fail('MALFORMED', `${what}: JSON nested deeper than ${MAX_JSON_DEPTH}`);
    if (Array.isArray(v)) {
      for (const item of v) stack.push([item, depth + 1]);
    } else {
      for (const [k, item] of Object.entries(v)) {
        if (!k.isWellFormed()) throw fail('MALFORMED', `${what}: key with a lone UTF-16 surrogate`);
        stack.push([item, depth + 1]);
      }
    }
  }
}

/** Go sorts map keys by their UTF-8 bytes; JS sorts by UTF-16 code units. They differ only when a
 *  surrogate (U+D800–DFFF, astral chars) meets U+E000–FFFF, so fix up exactly that case. */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Canonical bytes of a value as docker/go canonical/json MarshalCanonical produces them. */
export function canonicalBytes(value: JsonValue): Buffer {
  return Buffer.from(canonicalString(value, 0), 'utf8');
}

function canonicalString(v: JsonValue, depth: number): string {
  if (depth > MAX_JSON_DEPTH) throw fail('MALFORMED', `JSON nested deeper than ${MAX_JSON_DEPTH}`);
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      return canonicalNumber(v);
    case 'string':
      return canonicalStringLiteral(v);
    case 'object': {
      if (Array.isArray(v)) return '[' + v.map((x) => canonicalString(x, depth + 1)).join(',') + ']';
      const keys = Object.keys(v).sort(compareUtf8);
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        if (i > 0) out += ',';
        out += canonicalStringLiteral(k) + ':' + canonicalString(v[k]!, depth + 1);
      }
      return out + '}';
    }
    default:
      throw fail('MALFORMED', `unsupported JSON value of type ${typeof v}`);
  }
}

// Go decodes numbers to float64 and the canonical encoder prints them through int64; NaN, ±Inf and
// fractions are an UnsupportedValueError there, so the signature can never verify. DEVIATION: we also
// refuse |n| ≥ 2^53, where JS and Go would print different digits for the same double.
function canonicalNumber(n: number): string {
  if (!Number.isFinite(n) || !Number.isInteger(n)) {
    throw fail('MALFORMED', `number ${n} cannot be canonicalized (only integers are allowed)`);
  }
  if (!Number.isSafeInteger(n)) throw fail('MALFORMED', `number ${n} is too large to canonicalize exactly`);
  return n === 0 ? '0' : String(n);
}

const NEEDS_ESCAPE = /["\\]/g;
function canonicalStringLiteral(s: string): string {
  return '"' + s.replace(NEEDS_ESCAPE, (c) => '\\' + c) + '"';
}
