// Real notary-server (and notary-signer) from Debian's notary package, TLS on 127.0.0.1.
// `local`: the server signs with in-memory ed25519 keys; `remote`: a separate notary-signer over
// mutual TLS with ecdsa keys (LAB.md) — tests run both.
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { Pki } from './pki.js';
import { freePort, spawnServer, type RunningServer } from './spawn-server.js';

export interface NotaryLab {
  url: string;
  caFile: string;
  logFile: string;
  stop(): Promise<void>;
  /** Request URIs the server itself logged ("response completed"), oldest first: counts from its side. */
  requests(): string[];
}

export function loggedRequests(logFile: string, withErrors = false): string[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"response completed"') || (withErrors && l.includes('"response completed with error"')))
    .flatMap((l) => {
      try {
        return [(JSON.parse(l) as { 'http.request.uri': string })['http.request.uri']];
      } catch {
        return [];
      }
    });
}

/** The TUF metadata paths notary-server logged for `gun` (root.json, targets.json, …), oldest first. */
export function tufRequestsFor(notary: Pick<NotaryLab, 'requests'>, gun: string): string[] {
  const prefix = `/v2/${gun}/_trust/tuf/`;
  return notary
    .requests()
    .filter((u) => u.startsWith(prefix))
    .map((u) => u.slice(prefix.length));
}

export interface NotaryOptions {
  signer: 'local' | 'remote';
  /** Extra top-level server config, e.g. `auth` for token authentication. */
  extra?: Record<string, unknown>;
  name?: string;
  /** Listen on this port (a server revived at the same URL); default a free one. */
  port?: number;
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function httpsReady(url: string, ca: Buffer): Promise<boolean> {
  const dispatcher = new Agent({ connect: { ca } });
  try {
    const res = await request(url, { dispatcher, signal: AbortSignal.timeout(1000) });
    await res.body.dump();
    return res.statusCode === 200;
  } finally {
    await dispatcher.close();
  }
}

export async function startNotary(dir: string, pki: Pki, opts: NotaryOptions): Promise<NotaryLab> {
  const name = opts.name ?? `notary-${opts.signer}`;
  const ca = readFileSync(pki.caFile);
  const servers: RunningServer[] = [];
  let trust: Record<string, unknown> = { type: 'local', hostname: '', port: '', key_algorithm: 'ecdsa' };
  if (opts.signer === 'remote') {
    const grpc = await freePort();
    const http = await freePort();
    const signerCfg = join(dir, `${name}-signer.json`);
    writeFileSync(
      signerCfg,
      JSON.stringify({
        server: { http_addr: `127.0.0.1:${http}`, grpc_addr: `127.0.0.1:${grpc}`, tls_cert_file: pki.certFile, tls_key_file: pki.keyFile, client_ca_file: pki.caFile },
        logging: { level: 'info' },
        storage: { backend: 'memory' },
      }),
    );
    servers.push(
      await spawnServer({
        cmd: 'notary-signer',
        args: ['-config', signerCfg],
        // The signer needs a passphrase alias for its key encryption even with memory storage.
        env: { ...process.env, NOTARY_SIGNER_DEFAULT_ALIAS: 'alias1', NOTARY_SIGNER_ALIAS1: 'signer-test-passphrase' },
        logFile: join(dir, `${name}-signer.log`),
        ready: () => tcpOpen(grpc),
      }),
    );
    trust = { type: 'remote', hostname: '127.0.0.1', port: String(grpc), key_algorithm: 'ecdsa', tls_ca_file: pki.caFile, tls_client_cert: pki.certFile, tls_client_key: pki.keyFile };
  }
  const port = opts.port ?? (await freePort());
  const cfg = join(dir, `${name}-server.json`);
  writeFileSync(
    cfg,
    JSON.stringify({
      server: { http_addr: `127.0.0.1:${port}`, tls_cert_file: pki.certFile, tls_key_file: pki.keyFile },
      trust_service: trust,
      logging: { level: 'info' },
      storage: { backend: 'memory' },
      ...opts.extra,
    }),
  );
  const url = `https://127.0.0.1:${port}`;
  try {
    servers.push(
      await spawnServer({
        cmd: 'notary-server',
        args: ['-config', cfg, '-logf', 'json'],
        logFile: join(dir, `${name}-server.log`),
        ready: () => httpsReady(`${url}/_notary_server/health`, ca),
      }),
    );
  } catch (err) {
    for (const s of servers) await s.stop();
    throw err;
  }
  return {
    url,
    caFile: pki.caFile,
    logFile: join(dir, `${name}-server.log`),
    stop: async () => {
      for (const s of servers.reverse()) await s.stop();
    },
    requests: () => loggedRequests(join(dir, `${name}-server.log`)),
  };
}
