// Notation timestamps and revocation through the proxy with skopeo (issue 17): certificates issued by
// `openssl ca` with exact validity periods, RFC 3161 tokens answered by `openssl ts -reply`, signatures
// pushed to a real docker-registry as referrers, notation's trustpolicy.json with ca and tsa stores.
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { derB64, jwsEnvelope, LEAF_EXT, pushSignatures, withJwsTimestamp, writeNotationTrust, type KeyPair } from '../support/notation-sign.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { OpensslCa, timestampToken, TSA_EXT } from '../support/openssl-ca.js';
import { freePort } from '../support/spawn-server.js';
import { auditRecords, manifestAnswer, refusalReason, skopeoPull } from '../support/through-proxy.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

let dir: string;
let registry: Registry;
let proxy: Trustgate;
const images: Record<string, PushedImage> = {};
let shortLivedUntil = 0;
let ocsp: { url: string; stop(): void } | undefined;
let crlServer: Server | undefined;
let logFile = '';
const REV = ['ocspgood', 'ocsprevoked', 'crlrevoked', 'ocspdown', 'ocspdownlenient'];

async function sign(name: string, signer: KeyPair, ca: OpensslCa, stamp?: (sig: Buffer) => Buffer): Promise<void> {
  const img = images[name]!;
  const target = { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length };
  let env = await jwsEnvelope({ signer, chain: [derB64(signer.cert), derB64(ca.cert)], target });
  if (stamp) env = withJwsTimestamp(env, stamp);
  await pushSignatures(registry.url, `t/${name}`, target, [env]);
}

const pull = (repo: string) => skopeoPull(proxy.host, repo, 'v1', dir);

const denial = (repo: string) => manifestAnswer(proxy.url, repo);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-ntsrev-'));
  registry = await startRegistry(dir);
  for (const name of ['tsgood', 'tsnone', ...REV]) images[name] = await pushImage(dir, registry.host, `t/${name}`, 'v1');
  const acme = new OpensslCa(dir, 'acme');
  const tsaRoot = new OpensslCa(dir, 'tsaroot');
  const tsa = tsaRoot.issue('tsa', '/C=US/ST=WA/O=tsa/CN=Test TSA', TSA_EXT);
  // A signing certificate that expires a few seconds from now: signatures made now, judged after.
  shortLivedUntil = Date.now() + 6000;
  const shortLived = acme.issue('shortlived', '/C=US/ST=WA/O=acme/OU=Build/CN=builder', LEAF_EXT, { notAfter: new Date(shortLivedUntil) });
  shortLivedUntil = Date.parse(new X509Certificate(readFileSync(shortLived.cert)).validTo);
  await sign('tsgood', shortLived, acme, (sig) => timestampToken(dir, tsa, [tsa.cert, tsaRoot.cert], sig));
  await sign('tsnone', shortLived, acme);

  // Revocation: a responder (openssl ocsp) and a CRL (openssl ca -gencrl, served by node:http) on 127.0.0.1.
  const ocspPort = await freePort();
  const closedPort = await freePort();
  let crl: Buffer = Buffer.alloc(0);
  crlServer = createServer((_req, res) => void res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(crl));
  await new Promise<void>((r) => crlServer!.listen(0, '127.0.0.1', r));
  const ocspExt = (port: number) => `authorityInfoAccess=OCSP;URI:http://127.0.0.1:${port}\n`;
  const leaves: Record<string, KeyPair> = {
    ocspgood: acme.issue('ocspgood', '/C=US/ST=WA/O=acme/CN=ocspgood', LEAF_EXT + ocspExt(ocspPort)),
    ocsprevoked: acme.issue('ocsprevoked', '/C=US/ST=WA/O=acme/CN=ocsprevoked', LEAF_EXT + ocspExt(ocspPort)),
    crlrevoked: acme.issue('crlrevoked', '/C=US/ST=WA/O=acme/CN=crlrevoked', LEAF_EXT + `crlDistributionPoints=URI:http://127.0.0.1:${(crlServer.address() as AddressInfo).port}/acme.crl\n`),
    ocspdown: acme.issue('ocspdown', '/C=US/ST=WA/O=acme/CN=ocspdown', LEAF_EXT + ocspExt(closedPort)),
  };
  leaves.ocspdownlenient = leaves.ocspdown!;
  acme.revoke(leaves.ocsprevoked!.cert);
  acme.revoke(leaves.crlrevoked!.cert);
  crl = acme.crl();
  ocsp = await acme.startOcsp(ocspPort);
  for (const name of REV) await sign(name, leaves[name]!, acme);

  const notation = writeNotationTrust(
    dir,
    [
      ['ca', 'acme', acme.cert],
      ['tsa', 'tsa', tsaRoot.cert],
    ],
    [
      // Revocation only logged: an unreachable responder does not refuse.
      { name: 'lenient', registryScopes: [`${registry.host}/t/ocspdownlenient`], signatureVerification: { level: 'permissive' }, trustStores: ['ca:acme'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=acme'] },
      { name: 'timestamped', registryScopes: ['*'], signatureVerification: { level: 'strict', verifyTimestamp: 'afterCertExpiry' }, trustStores: ['ca:acme', 'tsa:tsa'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=acme'] },
    ],
  );
  proxy = await startTrustgate(dir, {
    upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notation, policy: 'enforce', require: 'notation' }],
    default: 'lab',
  });
  logFile = proxy.logFile;
});

afterAll(async () => {
  await proxy?.stop();
  ocsp?.stop();
  crlServer?.close();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Notation timestamps through the proxy', () => {
  it('after the signing certificate expires, a signature with a trusted timestamp is still served; one without is refused', async () => {
    while (Date.now() < shortLivedUntil + 1500) await new Promise((r) => setTimeout(r, 200));
    const good = await pull('t/tsgood');
    expect(good.ok, good.out).toBe(true);
    const none = await pull('t/tsnone');
    expect(none.ok).toBe(false);
    const d = await denial('t/tsnone');
    expect(d.status).toBe(403);
    expect(d.body.errors[0]!.detail.code).toBe('NOTATION_INVALID');
    expect(await refusalReason(proxy.logFile, 't/tsnone')).toMatch(/authenticTimestamp: the policy names a tsa trust store but the signature has no timestamp countersignature/);
  });
});

describe('Notation revocation through the proxy', () => {
  it('serves a signature whose certificate OCSP says is good', async () => {
    const r = await pull('t/ocspgood');
    expect(r.ok, r.out).toBe(true);
  });

  it.each([
    ['revoked by OCSP', 'ocsprevoked', /revocation: certificate .*CN=ocsprevoked is revoked: revoked at .* \(OCSP\)/],
    ['revoked by CRL', 'crlrevoked', /revocation: certificate .*CN=crlrevoked is revoked: revoked at .* \(CRL /],
    ['whose OCSP responder is unreachable (strict: unknown status enforced)', 'ocspdown', /revocation: the revocation status of certificate .*CN=ocspdown is unknown/],
  ])('refuses a signing certificate %s', async (_n, name, reason) => {
    const r = await pull(`t/${name}`);
    expect(r.ok).toBe(false);
    const d = await denial(`t/${name}`);
    expect(d.status).toBe(403);
    expect(d.body.errors[0]!.detail.code).toBe('NOTATION_INVALID');
    expect(await refusalReason(proxy.logFile, `t/${name}`)).toMatch(reason);
  });

  it('permissive: an unreachable responder is logged into the audit record, and the image served', async () => {
    const r = await pull('t/ocspdownlenient');
    expect(r.ok, r.out).toBe(true);
    expect(auditRecords(logFile)).toContainEqual(expect.objectContaining({ repo: 't/ocspdownlenient', decision: 'allow', notationLogged: [expect.stringMatching(/^revocation: the revocation status of certificate .* is unknown/)] }));
  });
});
