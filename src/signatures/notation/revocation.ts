// Certificate revocation for Notation chains (trust-store-trust-policy.md "Certificate Revocation
// Evaluation"; notation-core-go revocation/): for each certificate but the root, OCSP when it names a
// responder (authorityInfoAccess), falling back to its CRL distribution points when OCSP cannot tell;
// CRLs alone when it names only those; a certificate that names neither is not revocable and passes.
// Only http URLs, as the specification says. OCSP responses must be signed by the issuer or by a
// responder certificate it issued for OCSPSigning, and unexpired; CRLs must be signed by the issuer and
// unexpired. Revoked is final; anything else that fails (unreachable, timeout, unknown status, bad
// signature, expired answer) is "revocation unavailable", which the policy enforces (strict) or logs
// (permissive, audit). Answers are cached until their nextUpdate (at most an hour), per certificate
// for OCSP and per URL for CRLs; concurrent look-ups share one request.
import { createHash, type X509Certificate } from 'node:crypto';
import type { ASN1Obj } from '@sigstore/core';
import { bigInt, DerError, encNull, encOctets, encOid, encSeq, expect, inner, isCtx, isUniversal, oid, octets, parseDer, seq, T, time, tlvOf, uint } from './der.js';
import { verifyCmsSignature } from './timestamp.js';
import { certInfo, isIssuedBy, OID as X509_OID, subjectLine } from './x509.js';

export interface RevocationOptions {
  purpose: 'codeSigning' | 'timeStamping';
  /** Authentic signing time or trusted timestamp, compared with an invalidity date. */
  signingTime?: Date | undefined;
}

export interface RevocationChecker {
  /** undefined when no certificate of the chain is revoked or of unknown status; else why. */
  check(chain: readonly X509Certificate[], o: RevocationOptions): Promise<string | undefined>;
}

type Status = { status: 'good' } | { status: 'revoked'; why: string } | { status: 'unknown'; why: string };

export interface RevocationClientOptions {
  now?: () => Date;
  /** Per OCSP URL (the specification's default: 2 s). */
  ocspTimeoutMs?: number;
  /** Per CRL URL (the specification's default: 5 s). */
  crlTimeoutMs?: number;
  /** Longest an answer is reused, even when its nextUpdate is later. */
  maxCacheMs?: number;
  maxCrlBytes?: number;
}

const OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const SHA1 = '1.3.14.3.2.26';
const INVALIDITY_DATE = '2.5.29.24';
const CRL_REASON = '2.5.29.21';
const DELTA_CRL_INDICATOR = '2.5.29.27';
const FRESHEST_CRL = '2.5.29.46';
const CRL_NUMBER = '2.5.29.20';
const AUTHORITY_KEY_ID = '2.5.29.35';
const ISSUING_DP = '2.5.29.28';
const HOLD = 6;
const MAX_OCSP_BYTES = 20 * 1024;

type Crl = { tbs: ASN1Obj[]; entries: Map<bigint, { date: Date; reason?: number | undefined; invalidity?: Date | undefined }>; nextUpdate?: Date | undefined };

class Unavailable extends Error {}
const unavailable = (why: string): never => {
  throw new Unavailable(why);
};

async function httpGetOrPost(url: string, timeoutMs: number, maxBytes: number, body?: Buffer): Promise<Buffer> {
  if (!/^http:\/\//i.test(url)) unavailable(`${url}: only http URLs are supported`);
  let res: Response;
  try {
    res = await fetch(url, {
      method: body ? 'POST' : 'GET',
      ...(body ? { body, headers: { 'content-type': 'application/ocsp-request' } } : {}),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (err) {
    const e = err as Error;
    return unavailable(`${url}: ${e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause as Error | undefined)?.message ?? e.message}`);
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    unavailable(`${url} answered ${res.status}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
      size += c.length;
      if (size > maxBytes) unavailable(`${url}: answer larger than ${maxBytes} bytes`);
      chunks.push(Buffer.from(c));
    }
  } catch (err) {
    if (err instanceof Unavailable) throw err;
    unavailable(`${url}: ${(err as Error).message}`);
  }
  return Buffer.concat(chunks);
}

function extensionsOf(t: ASN1Obj | undefined): Map<string, { critical: boolean; value: Buffer }> {
  const m = new Map<string, { critical: boolean; value: Buffer }>();
  if (!t) return m;
  for (const e of seq(t, 'extensions')) {
    const p = seq(e, 'extension');
    m.set(oid(p[0]), { critical: p.length === 3 && p[1]!.value[0] === 0xff, value: octets(p[p.length - 1]) });
  }
  return m;
}

/** A DerError for anything the reader throws past parsing (a wrong type, an element that is not there). */
function reading<V>(what: string, read: () => V): V {
  try {
    return read();
  } catch (err) {
    if (err instanceof Unavailable || err instanceof DerError || !(err instanceof Error)) throw err;
    throw new DerError(`${what}: ${err.message}`);
  }
}

export class RevocationClient implements RevocationChecker {
  private readonly cache = new Map<string, { until: number; value: unknown }>();
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(private readonly o: RevocationClientOptions = {}) {}

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** One look-up per key at a time, reused until `until` (bounded by maxCacheMs). */
  private async cached<V>(key: string, load: () => Promise<{ value: V; until?: Date | undefined }>): Promise<V> {
    const hit = this.cache.get(key);
    const t = this.now().getTime();
    if (hit && hit.until > t) return hit.value as V;
    const running = this.inflight.get(key);
    if (running) return running as Promise<V>;
    const p = load().then(({ value, until }) => {
      const limit = t + (this.o.maxCacheMs ?? 3600e3);
      const u = Math.min(until ? until.getTime() : limit, limit);
      if (u > t) this.cache.set(key, { until: u, value });
      if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value!);
      return value;
    });
    this.inflight.set(key, p);
    try {
      return await p;
    } finally {
      this.inflight.delete(key);
    }
  }

  private ocspRequest(cert: X509Certificate, issuer: X509Certificate): Buffer {
    const i = certInfo(issuer);
    const certId = encSeq(encSeq(encOid(SHA1), encNull()), encOctets(createHash('sha1').update(i.subjectRaw).digest()), encOctets(createHash('sha1').update(i.publicKeyBits).digest()), certInfo(cert).serialRaw);
    return encSeq(encSeq(encSeq(encSeq(certId))));
  }

  private parseOcsp(der: Buffer, cert: X509Certificate, issuer: X509Certificate, o: RevocationOptions): { value: Status; until?: Date | undefined } {
    return reading('OCSPResponse', () => this.readOcsp(der, cert, issuer, o));
  }

  private readOcsp(der: Buffer, cert: X509Certificate, issuer: X509Certificate, o: RevocationOptions): { value: Status; until?: Date | undefined } {
    const top = seq(parseDer(der, 'OCSPResponse'), 'OCSPResponse');
    const status = uint(expect(top[0], T.ENUMERATED, 'responseStatus'), 'responseStatus');
    if (status !== 0) unavailable(`the OCSP responder answered status ${status} (not successful)`);
    if (!isCtx(top[1], 0)) unavailable('the OCSP response has no responseBytes');
    const [type, respOctets] = seq(top[1]!.subs[0], 'responseBytes');
    if (oid(type) !== OCSP_BASIC) unavailable('not a basic OCSP response');
    const basic = seq(inner(respOctets, 'BasicOCSPResponse'), 'BasicOCSPResponse');
    const [tbs, sigAlg, sigBits] = basic;
    const sig = expect(sigBits, T.BIT_STRING, 'signature').value.subarray(1);
    const certs = isCtx(basic[3], 0) ? seq(basic[3]!.subs[0], 'certs').map((c) => new (issuer.constructor as typeof X509Certificate)(tlvOf(c))) : [];
    // Signed by the issuer, or by a responder certificate the issuer gave OCSPSigning.
    const signers = [issuer, ...certs.filter((c) => isIssuedBy(c, issuer) && certInfo(c).extKeyUsage?.oids.includes(X509_OID.ekuOcspSigning))];
    const tbsRaw = tlvOf(expect(tbs, T.SEQUENCE, 'ResponseData'));
    const ok = signers.some((s) => {
      try {
        return verifyCmsSignature(s, sigAlg!, 'sha256', tbsRaw, sig);
      } catch {
        return false;
      }
    });
    if (!ok) unavailable('the OCSP response is not signed by the issuer or a responder it authorised');
    const rd = seq(tbs, 'ResponseData');
    let k = isCtx(rd[0], 0) ? 1 : 0;
    k++; // responderID
    k++; // producedAt
    const responses = seq(rd[k], 'responses');
    const ci = certInfo(cert);
    const nameHash = (alg: string) => createHash(alg).update(certInfo(issuer).subjectRaw).digest();
    for (const r of responses) {
      const sr = seq(r, 'SingleResponse');
      const [alg, nh, kh, sn] = seq(sr[0], 'CertID');
      const h = oid(seq(alg, 'hashAlgorithm')[0]) === SHA1 ? 'sha1' : 'sha256';
      if (bigInt(sn) !== ci.serial || !octets(nh).equals(nameHash(h)) || !octets(kh).equals(createHash(h).update(certInfo(issuer).publicKeyBits).digest())) continue;
      const now = this.now();
      const thisUpdate = time(sr[2], 'thisUpdate');
      if (thisUpdate.getTime() > now.getTime() + 5 * 60e3) unavailable('the OCSP response is from the future');
      let nextUpdate: Date | undefined;
      let ext: ASN1Obj | undefined;
      for (const x of sr.slice(3)) {
        if (isCtx(x, 0)) nextUpdate = time(x.subs[0], 'nextUpdate');
        if (isCtx(x, 1)) ext = x.subs[0];
      }
      if (nextUpdate && now > nextUpdate) unavailable('the OCSP response has expired');
      const st = sr[1]!;
      if (isCtx(st, 0)) return { value: { status: 'good' }, until: nextUpdate };
      if (isCtx(st, 1)) {
        const inv = extensionsOf(ext).get(INVALIDITY_DATE);
        const invalidity = inv ? time(parseDer(inv.value, 'invalidityDate'), 'invalidityDate') : undefined;
        // Revoked only from the invalidity date on, when the signature's time is authentic.
        if (invalidity && o.signingTime && o.signingTime < invalidity) return { value: { status: 'good' }, until: nextUpdate };
        const revokedAt = time(st.subs[0], 'revocationTime');
        return { value: { status: 'revoked', why: `revoked at ${revokedAt.toISOString()} (OCSP)` }, until: nextUpdate };
      }
      return { value: { status: 'unknown', why: 'the OCSP responder does not know the certificate' }, until: nextUpdate };
    }
    return unavailable('the OCSP response does not cover the certificate');
  }

  private async ocsp(cert: X509Certificate, issuer: X509Certificate, o: RevocationOptions): Promise<Status> {
    const reasons: string[] = [];
    for (const url of certInfo(cert).ocspUrls) {
      try {
        const key = `ocsp ${url} ${certInfo(cert).serial} ${createHash('sha256').update(certInfo(issuer).publicKeyBits).digest('hex')} ${o.signingTime?.getTime() ?? ''}`;
        const s = await this.cached(key, async () => this.parseOcsp(await httpGetOrPost(url, this.o.ocspTimeoutMs ?? 2000, MAX_OCSP_BYTES, this.ocspRequest(cert, issuer)), cert, issuer, o));
        if (s.status !== 'unknown') return s;
        reasons.push(`${url}: ${s.why}`);
        break; // a definite "unknown" from a responder is its answer (as notation-core-go)
      } catch (err) {
        if (!(err instanceof Unavailable) && !(err instanceof DerError)) throw err;
        reasons.push(err instanceof DerError ? `${url}: malformed OCSP response (${err.message})` : err.message);
      }
    }
    return { status: 'unknown', why: `OCSP: ${reasons.join('; ')}` };
  }

  private async fetchCrl(url: string, issuer: X509Certificate): Promise<Crl> {
    const issuerKey = createHash('sha256').update(certInfo(issuer).publicKeyBits).digest('hex');
    return this.cached(`crl ${url} ${issuerKey}`, async () => {
      const der = await httpGetOrPost(url, this.o.crlTimeoutMs ?? 5000, this.o.maxCrlBytes ?? 8 << 20);
      return reading('CertificateList', () => this.readCrl(url, der, issuer));
    });
  }

  private readCrl(url: string, der: Buffer, issuer: X509Certificate): { value: Crl; until?: Date | undefined } {
    const [tbsT, sigAlg, sigBits] = seq(parseDer(der, 'CertificateList'), 'CertificateList');
    if (!verifyCmsSignature(issuer, sigAlg!, 'sha256', tlvOf(expect(tbsT, T.SEQUENCE, 'TBSCertList')), expect(sigBits, T.BIT_STRING, 'signature').value.subarray(1))) unavailable(`${url}: the CRL is not signed by the issuer`);
    const tbs = seq(tbsT, 'TBSCertList');
    let k = isUniversal(tbs[0], T.INTEGER) ? 1 : 0;
    k++; // signature
    const issuerName = expect(tbs[k++], T.SEQUENCE, 'issuer');
    if (!tlvOf(issuerName).equals(certInfo(issuer).subjectRaw)) unavailable(`${url}: the CRL is issued by another name`);
    k++; // thisUpdate
    let nextUpdate: Date | undefined;
    if (isUniversal(tbs[k], T.UTCTime) || isUniversal(tbs[k], T.GeneralizedTime)) nextUpdate = time(tbs[k++]);
    const entries: Crl['entries'] = new Map();
    if (isUniversal(tbs[k], T.SEQUENCE)) {
      for (const e of seq(tbs[k++], 'revokedCertificates')) {
        const p = seq(e, 'revoked certificate');
        const ext = extensionsOf(p[2]);
        const r = ext.get(CRL_REASON);
        const inv = ext.get(INVALIDITY_DATE);
        entries.set(bigInt(p[0]), { date: time(p[1]), reason: r ? uint(expect(parseDer(r.value, 'reason'), T.ENUMERATED, 'reason'), 'reason') : undefined, invalidity: inv ? time(parseDer(inv.value, 'invalidityDate')) : undefined });
      }
    }
    const crlExt = isCtx(tbs[k], 0) ? extensionsOf(tbs[k]!.subs[0]) : new Map();
    // Delta CRLs are not supported (as notation-core-go): a CRL that is one, or points at one, cannot decide.
    if (crlExt.has(DELTA_CRL_INDICATOR) || crlExt.has(FRESHEST_CRL)) unavailable(`${url}: delta CRLs are not supported`);
    for (const [id, x] of crlExt) if (x.critical && ![CRL_NUMBER, AUTHORITY_KEY_ID, ISSUING_DP].includes(id)) unavailable(`${url}: unsupported critical CRL extension ${id}`);
    return { value: { tbs, entries, nextUpdate }, until: nextUpdate };
  }

  private async crl(cert: X509Certificate, issuer: X509Certificate, o: RevocationOptions): Promise<Status> {
    const reasons: string[] = [];
    for (const url of certInfo(cert).crlUrls) {
      try {
        const crl = await this.fetchCrl(url, issuer);
        const entry = crl.entries.get(certInfo(cert).serial);
        const expired = crl.nextUpdate !== undefined && this.now() > crl.nextUpdate;
        if (entry && entry.reason !== HOLD) {
          if (entry.invalidity && o.signingTime && o.signingTime < entry.invalidity) return { status: 'good' };
          return { status: 'revoked', why: `revoked at ${entry.date.toISOString()} (CRL ${url})` };
        }
        if (expired) unavailable(`${url}: the CRL has expired`);
        if (entry) return { status: 'unknown', why: `${url}: the certificate is on hold` };
        return { status: 'good' };
      } catch (err) {
        if (!(err instanceof Unavailable) && !(err instanceof DerError)) throw err;
        reasons.push(err instanceof DerError ? `${url}: malformed CRL (${err.message})` : err.message);
      }
    }
    return { status: 'unknown', why: `CRL: ${reasons.join('; ')}` };
  }

  private async status(cert: X509Certificate, issuer: X509Certificate, o: RevocationOptions): Promise<Status | undefined> {
    const i = certInfo(cert);
    if (i.ocspUrls.length) {
      const s = await this.ocsp(cert, issuer, o);
      if (s.status !== 'unknown' || !i.crlUrls.length) return s;
      const c = await this.crl(cert, issuer, o);
      return c.status === 'unknown' ? { status: 'unknown', why: `${s.why}; then ${c.why}` } : c;
    }
    if (i.crlUrls.length) return this.crl(cert, issuer, o);
    return undefined; // not revocable
  }

  async check(chain: readonly X509Certificate[], o: RevocationOptions): Promise<string | undefined> {
    // Every certificate but the root, concurrently; a revoked one outranks one of unknown status.
    const results = await Promise.all(chain.slice(0, -1).map((c, i) => this.status(c, chain[i + 1]!, o)));
    const who = o.purpose === 'timeStamping' ? 'timestamping certificate' : 'certificate';
    const revoked = results.findIndex((r) => r?.status === 'revoked');
    if (revoked >= 0) return `${who} ${subjectLine(chain[revoked]!)} is revoked: ${(results[revoked] as { why: string }).why}`;
    const unknown = results.findIndex((r) => r?.status === 'unknown');
    if (unknown >= 0) return `the revocation status of ${who} ${subjectLine(chain[unknown]!)} is unknown: ${(results[unknown] as { why: string }).why}`;
    return undefined;
  }
}


