// The DER reading Notation verification does on @sigstore/core's ASN1Obj (issue 25 point 7): what our
// accessors add to it, and the places where sigstore's own getters would misread or throw, pinned so
// a library upgrade that changes them fails here.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DerError, encode, encOctets, encSeq, inner, parseDer, time } from '../../../src/signatures/notation/der.js';
import { verifyTimestampToken } from '../../../src/signatures/notation/timestamp.js';
import { certInfo } from '../../../src/signatures/notation/x509.js';
import { OpensslCa, timestampToken, TSA_EXT } from '../../support/openssl-ca.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-asn1-'));
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'k.pem');
const cert = (f: string) => new X509Certificate(readFileSync(join(dir, f)));

describe('DER accessors over ASN1Obj', () => {
  const int5 = Buffer.from([0x02, 0x01, 0x05]);
  it('parseDer takes exactly one value: trailing bytes, a non-minimal length and truncation are DerErrors', () => {
    expect(parseDer(encSeq(int5), 'x').subs[0]!.toInteger()).toBe(5n);
    expect(() => parseDer(Buffer.concat([encSeq(int5), Buffer.from([0])]), 'x')).toThrow(DerError);
    expect(() => parseDer(Buffer.from([0x30, 0x81, 0x03, ...int5]), 'x')).toThrow(/non-minimal/);
    expect(() => parseDer(Buffer.from([0x30, 0x05, ...int5]), 'x')).toThrow(DerError);
  });

  it('inner() wants one value in an OCTET STRING, not two', () => {
    expect(inner(parseDer(encOctets(int5), 'x'), 'ext').toInteger()).toBe(5n);
    expect(() => inner(parseDer(encOctets(Buffer.concat([int5, int5])), 'x'), 'ext')).toThrow(/not one DER value/);
  });

  it('time() keeps fractional seconds of any precision (sigstore toDate drops them) and pivots UTCTime at 50', () => {
    const gt = (s: string) => parseDer(encode(0x18, Buffer.from(s)), 'x');
    expect(time(gt('20240618062933.5Z')).toISOString()).toBe('2024-06-18T06:29:33.500Z');
    expect(time(gt('20240618062933.123456Z')).toISOString()).toBe('2024-06-18T06:29:33.123Z');
    expect(time(parseDer(encode(0x17, Buffer.from('491231235959Z')), 'x')).getUTCFullYear()).toBe(2049);
    expect(time(parseDer(encode(0x17, Buffer.from('500101000000Z')), 'x')).getUTCFullYear()).toBe(1950);
    expect(() => time(gt('2024061806Z'))).toThrow(/malformed time/);
  });
});

describe('certInfo where sigstore X509Certificate getters would not do', () => {
  it('a v1 certificate (no version field, no extensions): names and validity read at the right index', () => {
    openssl('req', '-new', '-key', 'k.pem', '-subj', '/C=US/O=acme/CN=v1', '-out', 'v1.csr');
    openssl('x509', '-req', '-in', 'v1.csr', '-signkey', 'k.pem', '-days', '2', '-out', 'v1.pem');
    const c = cert('v1.pem');
    const i = certInfo(c);
    expect(i.subject).toEqual([['C', 'US'], ['O', 'acme'], ['CN', 'v1']]);
    expect(i.issuerRaw.equals(i.subjectRaw)).toBe(true);
    expect(i.notBefore.getTime()).toBe(new Date(c.validFrom).getTime());
    expect(i.notAfter.getTime()).toBe(new Date(c.validTo).getTime());
    expect(i.serial).toBe(BigInt(`0x${c.serialNumber}`));
    expect(i.extensions.size).toBe(0);
  });

  it('basicConstraints with cA omitted (DER for FALSE) and a pathLenConstraint: CA false, not a parse failure', () => {
    openssl('req', '-x509', '-key', 'k.pem', '-subj', '/CN=pl', '-days', '1', '-addext', 'basicConstraints=critical,CA:FALSE,pathlen:0', '-addext', 'keyUsage=critical,digitalSignature', '-addext', 'extendedKeyUsage=codeSigning,timeStamping', '-out', 'pl.pem');
    const i = certInfo(cert('pl.pem'));
    expect(i.basicConstraints).toEqual({ critical: true, ca: false, pathLen: 0 });
    expect(i.keyUsage).toEqual({ critical: true, bits: new Set(['digitalSignature']) });
    expect(i.extKeyUsage).toEqual({ critical: false, oids: ['1.3.6.1.5.5.7.3.3', '1.3.6.1.5.5.7.3.8'] });
  });
});

describe('timestamp tokens read through RFC3161Timestamp', () => {
  const root = new OpensslCa(dir, 'tsaroot');
  const tsa = root.issue('tsa', '/C=US/O=tsa/CN=Reader TSA', TSA_EXT, { key: 'rsa2048' });
  const anchors = [new X509Certificate(readFileSync(root.cert))];
  const sig = createHash('sha256').update('reader').digest();
  const token = timestampToken(dir, tsa, [tsa.cert, root.cert], sig);

  it('verifies a token as openssl ts answers it (RSA TSA, which sigstore verify() would not name a hash for)', () => {
    expect(verifyTimestampToken(token, sig, anchors)).toMatchObject({ accuracyMs: 1500 });
  });

  it('refuses a token with a trailing byte, a truncated token, and one whose bare token has no wrapper fields', () => {
    expect(verifyTimestampToken(Buffer.concat([token, Buffer.from([0x05, 0x00])]), sig, anchors)).toEqual({ problem: 'the timestamp token is not exactly one DER value' });
    expect(verifyTimestampToken(token.subarray(0, token.length - 10), sig, anchors)).toMatchObject({ problem: expect.stringMatching(/^malformed token/) });
    expect(verifyTimestampToken(encSeq(Buffer.from([0x02, 0x01, 0x00])), sig, anchors)).toMatchObject({ problem: expect.stringMatching(/./) });
  });
});
