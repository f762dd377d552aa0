// The builder's own docker/go canonical/json encoder (NOTARY.md §4), written apart from
// src/signatures/dct/verify/canonical-json.ts on purpose: signatures made here must not share a bug with the
// verifier, or a wrong canonical form would sign and verify "fine". Also the wire encoder, which
// writes the bytes a server sends (possibly non-canonical: pretty, other key order, \u003c escapes).

/** Any JSON value the builder handles. `undefined` object members are left out, as JSON.stringify does. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json | undefined };

/** Go map order: bytewise over UTF-8 (not JS's UTF-16 code-unit order). */
export function utf8Order(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * MarshalCanonical: no whitespace; keys sorted by UTF-8 bytes; strings escape only `"` and `\` (every
 * other character, control characters and non-ASCII included, goes out raw); numbers are integers.
 */
export function canonicalJson(value: Json): Buffer {
  const parts: Buffer[] = [];
  write(value, parts);
  return Buffer.concat(parts);
}

function write(v: Json | undefined, out: Buffer[]): void {
  if (v === null) return void out.push(Buffer.from('null'));
  if (v === true || v === false) return void out.push(Buffer.from(String(v)));
  if (typeof v === 'number') return void out.push(Buffer.from(integerText(v)));
  if (typeof v === 'string') return void out.push(stringBytes(v));
  if (Array.isArray(v)) {
    out.push(Buffer.from('['));
    v.forEach((item, i) => {
      if (i > 0) out.push(Buffer.from(','));
      write(item, out);
    });
    return void out.push(Buffer.from(']'));
  }
  if (typeof v === 'object') {
    const keys = Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort(utf8Order);
    out.push(Buffer.from('{'));
    keys.forEach((k, i) => {
      if (i > 0) out.push(Buffer.from(','));
      out.push(stringBytes(k), Buffer.from(':'));
      write(v[k], out);
    });
    return void out.push(Buffer.from('}'));
  }
  throw new Error(`canonicalJson: unsupported value ${String(v)}`);
}

function stringBytes(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  const out: number[] = [0x22];
  for (const byte of body) {
    if (byte === 0x22 || byte === 0x5c) out.push(0x5c); // only `"` and `\` get a backslash
    out.push(byte);
  }
  out.push(0x22);
  return Buffer.from(out);
}

/** Go prints the float64 through int64: fractions, NaN/Inf are an error; -0 prints as 0. */
function integerText(n: number): string {
  if (!Number.isInteger(n)) throw new Error(`canonicalJson: ${n} is not an integer`);
  if (!Number.isSafeInteger(n)) throw new Error(`canonicalJson: ${n} is beyond 2^53`);
  return Object.is(n, -0) ? '0' : n.toFixed(0);
}

// ---- wire form ----

export interface WireOptions {
  /** Pretty-print with this many spaces (0: compact, the default). */
  indent?: number;
  /** Key order of nested objects on the wire: canonical (notary's), reversed, or as built. */
  keyOrder?: 'canonical' | 'reverse' | 'insertion';
  /** Go json.Marshal's HTML escaping: < > & U+2028 U+2029 → \u003c … (default true, as notary writes). */
  htmlEscape?: boolean;
  /** Escape every non-ASCII character as \uXXXX (still the same JSON value). */
  asciiOnly?: boolean;
  /** Write integers as `N.0` (the same value; canonical form prints `N`). */
  floatIntegers?: boolean;
  /** Append a newline after the document. */
  trailingNewline?: boolean;
}

const HTML: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };

/** The bytes a server sends for a JSON value: valid JSON that parses back to `value`. */
export function wireJson(value: Json, opts: WireOptions = {}): Buffer {
  const indent = opts.indent ?? 0;
  const order = opts.keyOrder ?? 'canonical';
  const str = (s: string): string => {
    let t = JSON.stringify(s); // escapes " \ and control characters
    if (opts.htmlEscape ?? true) t = t.replace(/[<>&\u2028\u2029]/g, (c) => HTML[c]!);
    if (opts.asciiOnly) t = t.replace(/[^\x00-\x7f]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
    return t;
  };
  const enc = (v: Json | undefined, depth: number): string => {
    if (v === null || v === true || v === false) return String(v);
    if (typeof v === 'number') return opts.floatIntegers && Number.isInteger(v) ? `${v}.0` : String(v);
    if (typeof v === 'string') return str(v);
    const nl = indent ? '\n' + ' '.repeat(indent * (depth + 1)) : '';
    const end = indent ? '\n' + ' '.repeat(indent * depth) : '';
    const colon = indent ? ': ' : ':';
    if (Array.isArray(v)) return v.length === 0 ? '[]' : '[' + v.map((x) => nl + enc(x, depth + 1)).join(',') + end + ']';
    if (typeof v === 'object') {
      let keys = Object.keys(v).filter((k) => v[k] !== undefined);
      // The top level keeps its insertion order: an envelope is `signed` then `signatures`, the order
      // of Go's struct fields (canonical byte order would put `signatures` first).
      if (order !== 'insertion' && depth > 0) keys.sort(utf8Order);
      if (order === 'reverse') keys = keys.reverse();
      if (keys.length === 0) return '{}';
      return '{' + keys.map((k) => nl + str(k) + colon + enc(v[k], depth + 1)).join(',') + end + '}';
    }
    throw new Error(`wireJson: unsupported value ${String(v)}`);
  };
  return Buffer.from(enc(value, 0) + (opts.trailingNewline ? '\n' : ''), 'utf8');
}
