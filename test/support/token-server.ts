// A registry token server (distribution's token auth, docs/spec/auth/token.md) for testing the
// Bearer flow against a real notary-server configured with `auth.type: token`: it checks Basic
// credentials, issues an ES256 JWT whose x5c chain notary-server verifies against its
// rootcertbundle, and records every request so tests can see where credentials went.
import { execFile } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Pki } from './pki.js';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface TokenServer {
  realm: string;
  /** The token-signing certificate: what a registry or notary-server trusts (rootcertbundle). */
  certFile: string;
  issuer: string;
  requests: Array<{ path: string; authorization: string | undefined; scope: string | null; service: string | null }>;
  close(): Promise<void>;
}

export interface TokenServerOptions {
  /** Working directory: the token-signing key and certificate are made there with openssl. */
  dir: string;
  /** TLS for the token endpoint itself. */
  pki: Pki;
  username: string;
  password: string;
  issuer?: string;
  expiresIn?: number;
}

const run = promisify(execFile);
const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const keyFile = join(opts.dir, 'token-signer.key');
  const certFile = join(opts.dir, 'token-signer.pem');
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
  await run('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=token-signer', '-days', '2', '-out', certFile]);
  const issuer = opts.issuer ?? 'trustgate-test';
  const signingKey = createPrivateKey(readFileSync(keyFile));
  const certDer = new X509Certificate(readFileSync(certFile)).raw;
  const requests: TokenServer['requests'] = [];
  const server: Server = createServer({ key: readFileSync(opts.pki.keyFile), cert: readFileSync(opts.pki.certFile) }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://x');
    const scope = url.searchParams.get('scope');
    const service = url.searchParams.get('service');
    requests.push({ path: url.pathname, authorization: req.headers.authorization, scope, service });
    const expected = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
    if (url.pathname !== '/auth' || req.headers.authorization !== expected) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
      return;
    }
    // scope = repository:<name>:<actions>; the name may itself contain ':' (host:port).
    const access = [];
    const m = scope ? /^repository:(.+):([a-z,*]+)$/.exec(scope) : null;
    if (m) access.push({ type: 'repository', name: m[1], actions: m[2]!.split(',') });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] };
    const claims = { iss: issuer, sub: opts.username, aud: service, exp: now + (opts.expiresIn ?? 300), nbf: now - 10, iat: now, jti: randomUUID(), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign('sha256', Buffer.from(input), { key: signingKey, dsaEncoding: 'ieee-p1363' });
    const token = `${input}.${b64url(sig)}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: opts.expiresIn ?? 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `https://127.0.0.1:${port}/auth`,
    certFile,
    issuer,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
