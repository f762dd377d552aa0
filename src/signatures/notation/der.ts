// DER for Notation verification. Reading is @sigstore/core's ASN1Obj (the parser npm's provenance
// checks run on); this module adds the typed accessors our structures need on top of it (a wrong type
// is a DerError naming the field), a Time reader that keeps fractional seconds, and the few writers an
// OCSP request needs, which sigstore does not have. Callers turn a DerError into a refusal.
// Signatures are verified by node:crypto (OpenSSL).
import { ASN1Obj } from '@sigstore/core';

export class DerError extends Error {}

export const T = {
  BOOLEAN: 1,
  INTEGER: 2,
  BIT_STRING: 3,
  OCTET_STRING: 4,
  NULL: 5,
  OID: 6,
  ENUMERATED: 10,
  UTF8String: 12,
  SEQUENCE: 16,
  SET: 17,
  PrintableString: 19,
  T61String: 20,
  IA5String: 22,
  UTCTime: 23,
  GeneralizedTime: 24,
  BMPString: 30,
} as const;

/**
 * Parse `buf` as exactly one DER value. Any failure of the reader (sigstore's ASN1ParseError, a
 * stack overflow on absurd nesting) becomes a DerError; trailing bytes are refused.
 */
export function parseDer(buf: Buffer, what: string): ASN1Obj {
  let o: ASN1Obj;
  try {
    o = ASN1Obj.parseBuffer(buf as Buffer<ArrayBuffer>); // (it copies the bytes into its own stream)
  } catch (err) {
    throw new DerError(`${what}: ${(err as Error).message}`);
  }
  // ASN1Obj does not say how many bytes it read; the identifier, a minimal length and the content must be all of it.
  if (tlvOf(o).length !== buf.length) throw new DerError(`${what}: not exactly one DER value (trailing bytes, or a non-minimal length)`);
  return o;
}

/** The one value inside an OCTET STRING (sigstore parses its content into `subs` when it can). */
export function inner(o: ASN1Obj | undefined, what: string): ASN1Obj {
  const s = expect(o, T.OCTET_STRING, what);
  if (s.subs.length !== 1) throw new DerError(`${what}: not one DER value`);
  return s.subs[0]!;
}

export const isCtx = (o: ASN1Obj | undefined, n: number): boolean => !!o && o.tag.isContextSpecific(n);
export const isUniversal = (o: ASN1Obj | undefined, n: number): o is ASN1Obj => !!o && o.tag.isUniversal() && o.tag.number === n;

export function expect(o: ASN1Obj | undefined, tag: number, what: string): ASN1Obj {
  if (!isUniversal(o, tag)) throw new DerError(`${what}: unexpected ASN.1 type`);
  return o;
}

export const seq = (o: ASN1Obj | undefined, what: string): ASN1Obj[] => expect(o, T.SEQUENCE, what).subs;
export const oid = (o: ASN1Obj | undefined, what = 'object identifier'): string => expect(o, T.OID, what).toOID();
export const octets = (o: ASN1Obj | undefined, what = 'octet string'): Buffer => expect(o, T.OCTET_STRING, what).value;
export const bigInt = (o: ASN1Obj | undefined, what = 'integer'): bigint => expect(o, T.INTEGER, what).toInteger();

/** A small non-negative integer from content octets: ENUMERATED, or an IMPLICIT [n] INTEGER (sigstore's toInteger wants the INTEGER tag). */
export function uint(o: ASN1Obj | undefined, what: string): number {
  const v = o?.value;
  if (!o || !v || o.tag.constructed || v.length === 0 || v.length > 6 || v[0]! & 0x80) throw new DerError(`${what}: not a small non-negative integer`);
  return v.reduce((n, b) => n * 256 + b, 0);
}

/**
 * UTCTime or GeneralizedTime (Z form only, as RFC 5280 requires), with fractional seconds of any
 * precision (TSTInfo genTime, RFC 3161 2.4.2). sigstore's toDate drops the fraction and accepts
 * exactly three digits of it only.
 */
export function time(o: ASN1Obj | undefined, what = 'time'): Date {
  const utc = isUniversal(o, T.UTCTime);
  if (!utc && !isUniversal(o, T.GeneralizedTime)) throw new DerError(`${what}: not a time`);
  const s = o!.value.toString('latin1');
  const m = utc ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d{1,9})?Z$/.exec(s);
  if (!m) throw new DerError(`${what}: malformed time ${JSON.stringify(s)}`);
  let year = Number(m[1]);
  if (utc) year += year < 50 ? 2000 : 1900;
  const ms = m[7] ? Math.floor(Number(m[7]) * 1000) : 0;
  const d = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms));
  if (!Number.isFinite(d.getTime())) throw new DerError(`${what}: invalid date`);
  return d;
}

// --- writers (DER encoding of the few values we build: OCSP requests, and TLVs of parsed values) ---

function lengthOctets(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function encode(identifier: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([identifier]), lengthOctets(content.length), content]);
}

/**
 * The DER TLV of a value ASN1Obj parsed: its identifier (or `identifier`, e.g. 0x31 for CMS signed
 * attributes), minimal length, and the content octets as received. Cheaper than ASN1Obj.toDER(),
 * which re-encodes every child.
 */
export function tlvOf(o: ASN1Obj, identifier = o.tag.toDER()): Buffer {
  return encode(identifier, o.value);
}

export const encSeq = (...items: Buffer[]) => encode(0x30, Buffer.concat(items));
export const encOctets = (b: Buffer) => encode(0x04, b);
export const encNull = () => Buffer.from([0x05, 0x00]);
export function encOid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out: number[] = [];
  for (const n of [a! * 40 + b!, ...rest]) {
    const chunk: number[] = [n & 0x7f];
    for (let x = Math.floor(n / 128); x > 0; x = Math.floor(x / 128)) chunk.unshift((x & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return encode(0x06, Buffer.from(out));
}
