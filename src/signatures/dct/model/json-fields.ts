// Typed field readers over a parsed JSON value. Every mismatch is MALFORMED, naming the field, because
// Go's decoder refuses a wrong type for a typed struct field (a string where an int belongs, …).
//
// DEVIATION: Go matches struct field names case-insensitively ("Signed" fills `signed`); we read exact
// names. notary writes lower-case names only, so this can refuse tampered files, never accept one.
import { fail } from '../../../errors.js';
import type { JsonValue } from '../verify/canonical-json.js';

export type JsonObject = { [key: string]: JsonValue };

export function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: JsonValue | undefined, where: string): JsonObject {
  if (!isObject(v)) throw fail('MALFORMED', `${where}: expected an object`);
  return v;
}

/** An absent or null map decodes to an empty Go map. */
export function optObj(v: JsonValue | undefined, where: string): JsonObject {
  return v === undefined || v === null ? {} : obj(v, where);
}

export function str(v: JsonValue | undefined, where: string): string {
  if (typeof v !== 'string') throw fail('MALFORMED', `${where}: expected a string`);
  return v;
}

export function int(v: JsonValue | undefined, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw fail('MALFORMED', `${where}: expected an integer`);
  return v;
}

export function arr(v: JsonValue | undefined, where: string): JsonValue[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw fail('MALFORMED', `${where}: expected an array`);
  return v;
}

export function strArr(v: JsonValue | undefined, where: string): string[] {
  return arr(v, where).map((x, i) => str(x, `${where}[${i}]`));
}

export function bool(v: JsonValue | undefined, where: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw fail('MALFORMED', `${where}: expected a boolean`);
  return v;
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Go's []byte fields are standard base64 with padding; anything else fails to decode there. */
export function b64(v: JsonValue | undefined, where: string): Buffer {
  const s = str(v, where);
  if (!B64.test(s)) throw fail('MALFORMED', `${where}: not standard base64`);
  const out = Buffer.from(s, 'base64');
  // Non-canonical trailing bits would decode in Node but re-encode differently in Go.
  if (out.toString('base64') !== s) throw fail('MALFORMED', `${where}: non-canonical base64`);
  return out;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * RFC 3339 with 0–9 fractional digits and any offset: notary writes local time with nanoseconds
 * (`2116-07-03T18:08:08.41836542-05:00`). Fractions below a millisecond are dropped, which can only
 * make a role expire up to 1 ms early.
 */
export function time(v: JsonValue | undefined, where: string): Date {
  const s = str(v, where);
  const m = RFC3339.exec(s);
  if (!m) throw fail('MALFORMED', `${where}: not an RFC 3339 time: ${JSON.stringify(s.slice(0, 40))}`);
  const [, y, mo, d, h, mi, se, frac, off] = m;
  const ms = frac ? Number(frac.padEnd(3, '0').slice(0, 3)) : 0;
  let t = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +se!, ms);
  const check = new Date(Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +se!));
  if (check.getUTCDate() !== +d! || check.getUTCMonth() !== +mo! - 1 || +h! > 23 || +mi! > 59 || +se! > 59) {
    throw fail('MALFORMED', `${where}: invalid date ${s}`);
  }
  if (off !== 'Z') {
    const sign = off![0] === '-' ? -1 : 1;
    const [oh, om] = off!.slice(1).split(':').map(Number);
    t -= sign * (oh! * 60 + om!) * 60_000;
  }
  return new Date(t);
}
