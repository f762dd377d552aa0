// A small DER reader (and the few writers an OCSP request needs), for the ASN.1 structures Notation
// verification has to look inside and node:crypto does not expose: certificate extensions
// (keyUsage bits, criticality, path length), RFC 3161 timestamp tokens (CMS SignedData), OCSP
// responses and CRLs. Why not a library: the well-kept ones (pkijs, @peculiar/asn1-*, node-forge) are
// large, pull in several packages each, and we read a handful of fixed structures; signatures are
// still verified by node:crypto (OpenSSL). Strict: definite lengths only, no trailing bytes, lengths
// minimal; anything else is a DerError, which callers turn into a refusal.

export class DerError extends Error {}

export interface Tlv {
  /** Tag class: 0 universal, 1 application, 2 context-specific, 3 private. */
  cls: number;
  constructed: boolean;
  /** Tag number (low-tag-number form; high tags are refused, none of our structures use them). */
  tag: number;
  /** Content octets. */
  value: Buffer;
  /** The whole TLV (identifier, length and content), e.g. for signed portions. */
  raw: Buffer;
}

export const UNIVERSAL = 0;
export const CONTEXT = 2;
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

/** Read one TLV at `offset`; returns it and the offset after it. */
export function readTlv(buf: Buffer, offset = 0): { tlv: Tlv; next: number } {
  if (offset + 2 > buf.length) throw new DerError('truncated DER');
  const id = buf[offset]!;
  const cls = id >> 6;
  const constructed = (id & 0x20) !== 0;
  const tag = id & 0x1f;
  if (tag === 0x1f) throw new DerError('high tag numbers are not supported');
  let p = offset + 1;
  let len = buf[p++]!;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite lengths are not DER');
    if (n > 4) throw new DerError('length too large');
    if (p + n > buf.length) throw new DerError('truncated DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
    if (len < 0x80 || (n > 1 && buf[p - n] === 0)) throw new DerError('non-minimal DER length');
  }
  if (p + len > buf.length) throw new DerError('truncated DER content');
  return { tlv: { cls, constructed, tag, value: buf.subarray(p, p + len), raw: buf.subarray(offset, p + len) }, next: p + len };
}

/** Parse exactly one TLV spanning the whole buffer. */
export function parseDer(buf: Buffer): Tlv {
  const { tlv, next } = readTlv(buf, 0);
  if (next !== buf.length) throw new DerError('trailing bytes after DER value');
  return tlv;
}

/** The children of a constructed TLV. */
export function children(t: Tlv): Tlv[] {
  if (!t.constructed) throw new DerError('expected a constructed value');
  const out: Tlv[] = [];
  let p = 0;
  while (p < t.value.length) {
    const { tlv, next } = readTlv(t.value, p);
    out.push(tlv);
    p = next;
  }
  return out;
}

export function expect(t: Tlv | undefined, tag: number, what: string, cls = UNIVERSAL): Tlv {
  if (!t || t.cls !== cls || t.tag !== tag) throw new DerError(`${what}: unexpected ASN.1 type`);
  return t;
}

export const isCtx = (t: Tlv | undefined, n: number): t is Tlv => !!t && t.cls === CONTEXT && t.tag === n;

export function seq(t: Tlv | undefined, what: string): Tlv[] {
  return children(expect(t, T.SEQUENCE, what));
}

export function oid(t: Tlv | undefined, what = 'object identifier'): string {
  const v = expect(t, T.OID, what).value;
  if (v.length === 0) throw new DerError(`${what}: empty`);
  const parts: number[] = [];
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    n = n * 128 + (v[i]! & 0x7f);
    if (!(v[i]! & 0x80)) {
      parts.push(n);
      n = 0;
    } else if (i === v.length - 1) throw new DerError(`${what}: truncated`);
  }
  const first = parts.shift()!;
  const a = first < 40 ? 0 : first < 80 ? 1 : 2;
  return [a, first - a * 40, ...parts].join('.');
}

/** A non-negative INTEGER as a bigint (serial numbers are up to 20 octets). */
export function bigInt(t: Tlv | undefined, what = 'integer', tag: number = T.INTEGER): bigint {
  const v = expect(t, tag, what).value;
  if (v.length === 0) throw new DerError(`${what}: empty`);
  let n = 0n;
  for (const b of v) n = (n << 8n) | BigInt(b);
  if (v[0]! & 0x80) n -= 1n << BigInt(v.length * 8); // two's complement
  return n;
}

export function int(t: Tlv | undefined, what = 'integer', tag: number = T.INTEGER): number {
  const n = bigInt(t, what, tag);
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER)) throw new DerError(`${what}: out of range`);
  return Number(n);
}

export function bool(t: Tlv | undefined, what = 'boolean'): boolean {
  const v = expect(t, T.BOOLEAN, what).value;
  if (v.length !== 1 || (v[0] !== 0 && v[0] !== 0xff)) throw new DerError(`${what}: not a DER boolean`);
  return v[0] === 0xff;
}

export function octets(t: Tlv | undefined, what = 'octet string'): Buffer {
  return expect(t, T.OCTET_STRING, what).value;
}

/** BIT STRING content without the unused-bits octet, and that count. */
export function bitString(t: Tlv | undefined, what = 'bit string'): { bytes: Buffer; unused: number } {
  const v = expect(t, T.BIT_STRING, what).value;
  if (v.length === 0 || v[0]! > 7) throw new DerError(`${what}: malformed`);
  return { bytes: v.subarray(1), unused: v[0]! };
}

/** UTCTime or GeneralizedTime (Z form only, as RFC 5280 requires), with fractional seconds for TSTInfo. */
export function time(t: Tlv | undefined, what = 'time'): Date {
  if (!t || t.cls !== UNIVERSAL || (t.tag !== T.UTCTime && t.tag !== T.GeneralizedTime)) throw new DerError(`${what}: not a time`);
  const s = t.value.toString('latin1');
  const m = t.tag === T.UTCTime ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d{1,9})?Z$/.exec(s);
  if (!m) throw new DerError(`${what}: malformed time ${JSON.stringify(s)}`);
  let year = Number(m[1]);
  if (t.tag === T.UTCTime) year += year < 50 ? 2000 : 1900;
  const ms = m[7] ? Math.floor(Number(m[7]) * 1000) : 0;
  const d = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms));
  if (!Number.isFinite(d.getTime())) throw new DerError(`${what}: invalid date`);
  return d;
}

/** A directory string (certificate name attribute value) as text. */
export function directoryString(t: Tlv): string {
  switch (t.tag) {
    case T.UTF8String:
      return t.value.toString('utf8');
    case T.PrintableString:
    case T.IA5String:
    case T.T61String:
      return t.value.toString('latin1');
    case T.BMPString: {
      const b = Buffer.from(t.value);
      return b.swap16().toString('utf16le');
    }
    default:
      return t.value.toString('latin1');
  }
}

// --- writers (DER encoding of the few values we build: OCSP requests) ---

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
 * The DER TLV of a value @sigstore/core's ASN1Obj parsed: identifier (or `identifier` instead, e.g.
 * 0x31 for CMS signed attributes), minimal length, and the content octets as received. Cheaper than
 * ASN1Obj.toDER(), which re-encodes every child.
 */
export function tlvOf(o: { tag: { toDER(): number }; value: Buffer }, identifier = o.tag.toDER()): Buffer {
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
