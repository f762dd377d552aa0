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
}

export async function startRegistry(dir: string, opts: { proxyRemote?: string } = {}): Promise<Registry> {
  const port = await freePort();
  const storage = join(dir, `registry-${port}`);
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
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${port}`;
  const srv = await spawnServer({
    cmd: 'docker-registry',
    args: ['serve', cfg],
    logFile: join(dir, `registry-${port}.log`),
    ready: async () => (await fetch(`${url}/v2/`)).status === 200,
  });
  return { ...srv, url, host: `127.0.0.1:${port}`, storage, requests: () => loggedRequests(srv.logFile) };
}
