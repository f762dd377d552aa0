// Revocation of Notation chains against real responders on 127.0.0.1: `openssl ocsp` answering from an
// `openssl ca` index, and CRLs made by `openssl ca -gencrl` served by node:http; unreachable and
// silent servers for "revocation unavailable"; the cache.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RevocationClient } from '../../../src/signatures/notation/revocation.js';
import { LEAF_EXT } from '../../support/notation-sign.js';
import { OpensslCa } from '../../support/openssl-ca.js';
import { freePort } from '../../support/spawn-server.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-revocation-'));
const cert = (f: string) => new X509Certificate(readFileSync(f));
let ca: OpensslCa;
let ocsp: { url: string; stop(): void };
let crlServer: Server;
let silent: Server;
let crlHits = 0;
let crlBytes: Buffer;
const chains: Record<string, X509Certificate[]> = {};

beforeAll(async () => {
  ca = new OpensslCa(dir, 'acme');
  const ocspPort = await freePort();
  crlServer = createServer((req, res) => {
    crlHits++;
    res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(crlBytes);
  });
  silent = createServer(() => {
    /* never answers */
  });
  await Promise.all([new Promise<void>((r) => crlServer.listen(0, '127.0.0.1', r)), new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))]);
  const crlUrl = `http://127.0.0.1:${(crlServer.address() as AddressInfo).port}/acme.crl`;
  const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`;
  const closed = `http://127.0.0.1:${await freePort()}/`;
  const leaf = (name: string, extra: string) => {
    const k = ca.issue(name, `/C=US/ST=WA/O=acme/CN=${name}`, LEAF_EXT + extra);
    chains[name] = [cert(k.cert), cert(ca.cert)];
    return k;
  };
  leaf('ocspgood', `authorityInfoAccess=OCSP;URI:http://127.0.0.1:${ocspPort}\n`);
  const ocspRevoked = leaf('ocsprevoked', `authorityInfoAccess=OCSP;URI:http://127.0.0.1:${ocspPort}\n`);
  leaf('crlgood', `crlDistributionPoints=URI:${crlUrl}\n`);
  const crlRevoked = leaf('crlrevoked', `crlDistributionPoints=URI:${crlUrl}\n`);
  leaf('ocspdown', `authorityInfoAccess=OCSP;URI:${closed}\n`);
  leaf('ocspdowncrl', `authorityInfoAccess=OCSP;URI:${closed}\ncrlDistributionPoints=URI:${crlUrl}\n`);
  leaf('silent', `authorityInfoAccess=OCSP;URI:${silentUrl}\n`);
  leaf('nothing', '');
  ca.revoke(ocspRevoked.cert);
  ca.revoke(crlRevoked.cert);
  crlBytes = ca.crl();
  ocsp = await ca.startOcsp(ocspPort);
});

afterAll(() => {
  ocsp?.stop();
  crlServer?.close();
  silent?.closeAllConnections();
  silent?.close();
});

const client = () => new RevocationClient({ ocspTimeoutMs: 1500, crlTimeoutMs: 1500 });
const check = (name: string, c = client()) => c.check(chains[name]!, { purpose: 'codeSigning' });

describe('revocation checking', () => {
  it('OCSP: a good certificate passes, a revoked one is revoked', async () => {
    const g = await check('ocspgood');
    expect(g, g).toBeUndefined();
    expect(await check('ocsprevoked')).toMatch(/^certificate .*CN=ocsprevoked is revoked: revoked at .* \(OCSP\)$/);
  });

  it('CRL: a good certificate passes, a revoked one is revoked', async () => {
    expect(await check('crlgood')).toBeUndefined();
    expect(await check('crlrevoked')).toMatch(/is revoked: revoked at .* \(CRL http:\/\/127\.0\.0\.1:\d+\/acme\.crl\)$/);
  });

  it('an unreachable OCSP responder leaves the status unknown; with a CRL as well, the CRL decides', async () => {
    expect(await check('ocspdown')).toMatch(/the revocation status of certificate .*CN=ocspdown is unknown: OCSP: http:\/\/127\.0\.0\.1:\d+\/: /);
    expect(await check('ocspdowncrl')).toBeUndefined();
  });

  it('a responder that does not answer times out (unknown), within the timeout', async () => {
    const t0 = Date.now();
    expect(await new RevocationClient({ ocspTimeoutMs: 300 }).check(chains.silent!, { purpose: 'codeSigning' })).toMatch(/unknown: OCSP: .*no answer within 300 ms/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('a certificate naming neither OCSP nor CRL is not revocable and passes', async () => {
    expect(await check('nothing')).toBeUndefined();
  });

  it('answers are cached: the CRL is fetched once for many checks', async () => {
    const c = client();
    crlHits = 0;
    for (let i = 0; i < 5; i++) expect(await check('crlgood', c)).toBeUndefined();
    await Promise.all([check('crlrevoked', c), check('crlgood', c)]);
    expect(crlHits).toBe(1);
  });

  it('a CRL signed by another CA is not believed (unknown)', async () => {
    const other = new OpensslCa(dir, 'other');
    const good = crlBytes;
    crlBytes = other.crl();
    try {
      expect(await check('crlgood')).toMatch(/unknown: CRL: .*not signed by the issuer|issued by another name/);
    } finally {
      crlBytes = good;
    }
  });
});
