// A real CNCF distribution registry (Debian's docker-registry) on 127.0.0.1, storage in a temp dir.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loggedRequests } from './notary-server.js';
import { freePort, spawnServer, type RunningServer } from './spawn-server.js';

export interface Registry extends RunningServer {
  url: string;
  host: string;
  storage: string;
  /** Request URIs the registry logged, oldest first. */
  requests(): string[];
  /** Every request URI the registry logged, answered with an error too (a 404 is "response completed with error"). */
  allRequests(): string[];
}

export interface RegistryOptions {
  /** Pull-through cache mode (distribution's proxy.remoteurl). */
  proxyRemote?: string;
  /** Token authentication (distribution's auth.token): the realm, and the certificate tokens are signed with. */
  tokenAuth?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  /** Serve an existing storage directory (e.g. filled by another registry before auth was switched on). */
  storage?: string;
}

export async function startRegistry(dir: string, opts: RegistryOptions = {}): Promise<Registry> {
  const port = await freePort();
  const storage = opts.storage ?? join(dir, `registry-${port}`);
  mkdirSync(storage, { recursive: true });
  const cfg = join(dir, `registry-${port}.yml`);
  writeFileSync(
    cfg,
    [
      'version: 0.1',
      // info: every request is logged ("response completed"), so tests can count from the registry's side.
      'log: { level: info, formatter: json, accesslog: { disabled: true } }',
      `storage: { filesystem: { rootdirectory: ${storage} }, delete: { enabled: true } }`,
      `http: { addr: 127.0.0.1:${port} }`,
      ...(opts.proxyRemote ? [`proxy: { remoteurl: ${opts.proxyRemote} }`] : []),
      ...(opts.tokenAuth
        ? [`auth: { token: { realm: "${opts.tokenAuth.realm}", service: ${opts.tokenAuth.service}, issuer: ${opts.tokenAuth.issuer}, rootcertbundle: ${opts.tokenAuth.rootCertBundle} } }`]
        : []),
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${port}`;
  const srv = await spawnServer({
    cmd: 'docker-registry',
    args: ['serve', cfg],
    logFile: join(dir, `registry-${port}.log`),
    // With token auth the ping answers 401 with a challenge: that is ready too.
    ready: async () => [200, 401].includes((await fetch(`${url}/v2/`)).status),
  });
  return { ...srv, url, host: `127.0.0.1:${port}`, storage, requests: () => loggedRequests(srv.logFile), allRequests: () => loggedRequests(srv.logFile, true) };
}
