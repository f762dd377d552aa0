// Unit tests of discovery and verification talk to a registry through trustgate's own RegistryClient;
// the registry is a small node:http stand-in (one that has the referrers API, which distribution 2.8,
// run by the integration tests, lacks), on 127.0.0.1 and closed by the test that made it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RegistryClient } from '../../../src/registry/registry-client.js';
import { StandIns } from '../../support/stand-in.js';

export interface RegistryStandIn {
  /** A RegistryClient for the stand-in (5 s timeout, 1 MiB manifests). */
  client: RegistryClient;
  close(): Promise<void>;
}

/** Start a stand-in registry answering with `handler`, and a client for it. */
export async function registryStandIn(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<RegistryStandIn> {
  const servers = new StandIns();
  const client = new RegistryClient({ registry: await servers.listen(handler), timeoutMs: 5000, manifestBytes: 1 << 20 });
  return {
    client,
    close: async () => {
      await client.close();
      servers.close();
    },
  };
}
