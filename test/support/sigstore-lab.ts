// Local stand-ins for Sigstore's Fulcio (certificate authority, with its CT log) and Rekor
// (transparency log), served on 127.0.0.1 from @sigstore/mock's handlers, and keyless signing with
// @sigstore/sign against them, as `cosign sign --new-bundle-format` does for an image: a DSSE envelope
// over an in-toto statement (predicate https://sigstore.dev/cosign/sign/v1, subject = image digest).
// Also writes the trusted_root.json an air-gapped site would copy in. Stopped by closing the servers.
import { createHash, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bundleToJSON, type Bundle, type TransparencyLogEntry } from '@sigstore/bundle';
import { HashAlgorithm } from '@sigstore/protobuf-specs';
// Deep imports: the package index also loads nock, which would patch node:http in the test process.
import { fulcioHandler, initializeCA, initializeCTLog } from '@sigstore/mock/dist/fulcio/index.js';
import { initializeTLog, rekorHandler } from '@sigstore/mock/dist/rekor/index.js';
import { DSSEBundleBuilder, FulcioSigner, MessageSignatureBundleBuilder, RekorWitness } from '@sigstore/sign';

interface Handler {
  path: string;
  fn: (body: string) => Promise<{ statusCode: number; response: string | ArrayBufferView; contentType?: string }>;
}

async function serve(handler: Handler): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== handler.path) return void res.writeHead(404).end();
      handler.fn(Buffer.concat(chunks).toString('utf8')).then(
        (r) => res.writeHead(r.statusCode, { 'content-type': r.contentType ?? 'application/json' }).end(typeof r.response === 'string' ? r.response : Buffer.from(r.response.buffer, r.response.byteOffset, r.response.byteLength)),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const keyPair = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const spkiDer = (pem: Buffer | string) => createPublicKey(pem).export({ type: 'spki', format: 'der' });

export interface FulcioStandIn {
  url: string;
  rootDer: Buffer;
  ctlogKeyDer: Buffer;
  ctlogId: Buffer;
  server: Server;
}

/** A Fulcio stand-in: its own root CA and CT log (a second one is "another CA"). */
export async function startFulcio(): Promise<FulcioStandIn> {
  const ctKeys = keyPair();
  const ctlog = await initializeCTLog(ctKeys);
  const ca = await initializeCA(keyPair(), ctlog);
  const { url, server } = await serve(fulcioHandler(ca) as Handler);
  const rootDer = Buffer.from(ca.rootCertificate.buffer, ca.rootCertificate.byteOffset, ca.rootCertificate.byteLength);
  return { url, rootDer, ctlogKeyDer: spkiDer(ctKeys.publicKey.export({ type: 'spki', format: 'pem' })), ctlogId: Buffer.from(ctlog.logID.buffer, ctlog.logID.byteOffset, ctlog.logID.byteLength), server };
}

export interface RekorStandIn {
  url: string;
  keyDer: Buffer;
  server: Server;
}

export async function startRekor(): Promise<RekorStandIn> {
  const keys = keyPair();
  const tlog = await initializeTLog('http://127.0.0.1', keys);
  const { url, server } = await serve(rekorHandler(tlog) as Handler);
  return { url, keyDer: spkiDer(keys.publicKey.export({ type: 'spki', format: 'pem' })), server };
}

/** trusted_root.json (Sigstore protobuf JSON) naming these Fulcio CAs, Rekor logs and CT logs. */
export function trustedRootJson(fulcios: FulcioStandIn[], rekors: RekorStandIn[]): string {
  const start = new Date(Date.now() - 3600_000).toISOString();
  const b64 = (b: Buffer) => b.toString('base64');
  return JSON.stringify({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: rekors.map((r) => ({
      baseUrl: r.url,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: b64(r.keyDer), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
      logId: { keyId: b64(createHash('sha256').update(r.keyDer).digest()) },
    })),
    certificateAuthorities: fulcios.map((f) => ({ subject: { organization: 'sigstore.mock', commonName: 'sigstore' }, uri: f.url, certChain: { certificates: [{ rawBytes: b64(f.rootDer) }] }, validFor: { start } })),
    ctlogs: fulcios.map((f) => ({
      baseUrl: f.url,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: b64(f.ctlogKeyDer), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
      logId: { keyId: b64(f.ctlogId) },
    })),
    timestampAuthorities: [],
  });
}

/** An unsigned OIDC token: the Fulcio stand-in reads the claims without checking a signature. */
export function oidcToken(claims: { iss: string; sub: string }): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ aud: 'sigstore', iat: Math.floor(Date.now() / 1000), ...claims })}.`;
}

export function cosignSignStatement(digest: string): Buffer {
  const [alg, hex] = digest.split(':');
  return Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { [alg!]: hex } }], predicateType: 'https://sigstore.dev/cosign/sign/v1', predicate: {} }));
}

/** Keyless signing as cosign's new bundle format does it; `rekor` undefined means no transparency log. */
export async function signKeyless(opts: { fulcio: FulcioStandIn; rekor?: RekorStandIn | undefined; identity: { iss: string; sub: string }; statement: Buffer }): Promise<Buffer> {
  const signer = new FulcioSigner({ fulcioBaseURL: opts.fulcio.url, identityProvider: { getToken: async () => oidcToken(opts.identity) }, retry: 0 });
  // intoto entries: the Rekor stand-in logs the proposed entry as sent, which for intoto 0.0.2 is the
  // canonical form real Rekor keeps (its dsse entries are rewritten by the real server, not the stand-in).
  const witnesses = opts.rekor ? [new RekorWitness({ rekorBaseURL: opts.rekor.url, entryType: 'intoto', retry: 0 })] : [];
  const bundle: Bundle = await new DSSEBundleBuilder({ signer, witnesses }).create({ data: opts.statement, type: 'application/vnd.in-toto+json' });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}

/**
 * A keyless signature in cosign's classic tag form: a Fulcio certificate and a signature over the
 * simple-signing payload, with Rekor's answer (a hashedrekord entry and its signed entry timestamp) as
 * the dev.sigstore.cosign/bundle annotation, laid out as SIGNATURE_SPEC.md shows it.
 */
export async function signClassicKeyless(opts: { fulcio: FulcioStandIn; rekor: RekorStandIn; identity: { iss: string; sub: string }; payload: Buffer }): Promise<{ signature: string; certificate: string; rekorBundle: string }> {
  const signer = new FulcioSigner({ fulcioBaseURL: opts.fulcio.url, identityProvider: { getToken: async () => oidcToken(opts.identity) }, retry: 0 });
  const witnesses = [new RekorWitness({ rekorBaseURL: opts.rekor.url, retry: 0 })];
  const bundle = await new MessageSignatureBundleBuilder({ signer, witnesses }).create({ data: opts.payload });
  if (bundle.content.$case !== 'messageSignature') throw new Error('expected a message signature');
  const vm = bundle.verificationMaterial;
  const der = vm.content.$case === 'certificate' ? vm.content.certificate.rawBytes : vm.content.$case === 'x509CertificateChain' ? vm.content.x509CertificateChain.certificates[0]!.rawBytes : undefined;
  if (!der) throw new Error('expected a certificate');
  const pem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
  return { signature: Buffer.from(bundle.content.messageSignature.signature).toString('base64'), certificate: pem, rekorBundle: rekorAnnotation(vm.tlogEntries[0]!) };
}

/** A Rekor entry as cosign's dev.sigstore.cosign/bundle annotation (SignedEntryTimestamp + Payload). */
function rekorAnnotation(e: TransparencyLogEntry): string {
  return JSON.stringify({
    SignedEntryTimestamp: Buffer.from(e.inclusionPromise!.signedEntryTimestamp).toString('base64'),
    Payload: { body: Buffer.from(e.canonicalizedBody).toString('base64'), integratedTime: Number(e.integratedTime), logIndex: Number(e.logIndex), logID: Buffer.from(e.logId.keyId).toString('hex') },
  });
}

/** `cosign sign --key` uploads to Rekor by default: log a keyed signature, return the bundle annotation. */
export async function logKeyedSignature(rekor: RekorStandIn, payload: Buffer, signature: string, publicPem: string): Promise<string> {
  const witness = new RekorWitness({ rekorBaseURL: rekor.url, retry: 0 });
  const { tlogEntries } = await witness.testify(
    { $case: 'messageSignature', messageSignature: { messageDigest: { algorithm: HashAlgorithm.SHA2_256, digest: createHash('sha256').update(payload).digest() }, signature: Buffer.from(signature, 'base64') } },
    publicPem,
  );
  return rekorAnnotation(tlogEntries![0]!);
}

/** `cosign sign --key --new-bundle-format --tlog-upload=false`: a keyed DSSE bundle, signed with node:crypto. */
export async function signKeyedBundle(privateKey: KeyObject, publicPem: string, statement: Buffer): Promise<Buffer> {
  const signer = { sign: async (data: Buffer) => ({ signature: sign('sha256', data, privateKey), key: { $case: 'publicKey' as const, publicKey: publicPem, hint: 'signer-claimed-hint' } }) };
  const bundle = await new DSSEBundleBuilder({ signer, witnesses: [] }).create({ data: statement, type: 'application/vnd.in-toto+json' });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}
