// Small node:http stand-ins for hostile or malformed upstreams (what no real registry does), on
// 127.0.0.1 and closed by the test that made them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export class StandIns {
  private readonly servers: Server[] = [];

  /** Start one on a free port; its base URL. */
  async listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const s = createServer(handler);
    this.servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }

  close(): void {
    for (const s of this.servers) {
      s.closeAllConnections();
      s.close();
    }
  }
}
