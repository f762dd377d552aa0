// `trustgate start [--config FILE]`: load the config and serve.
// The trust-enforcing proxy routes arrive with issue 4; until then the listener answers the registry
// probe and health, and refuses everything else with an OCI error — fail closed, never pass through.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { EXIT_OK, reportError, UsageError, type Io } from './output.js';

const START_USAGE = 'usage: trustgate start [--config FILE]   (default config/default.yaml, or TRUSTGATE_CONFIG)';

export async function runStart(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  try {
    let values: { config?: string | undefined };
    try {
      ({ values } = parseArgs({ args: argv, options: { config: { type: 'string' } } }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const file = values.config ?? env.TRUSTGATE_CONFIG ?? 'config/default.yaml';
    let doc: unknown;
    try {
      doc = parseYaml(await readFile(file, 'utf8'));
    } catch (err) {
      throw new UsageError(`cannot read config ${file}: ${(err as Error).message}`);
    }
    const listen = (doc as { listen?: unknown })?.listen;
    const m = typeof listen === 'string' ? /^(.*):(\d+)$/.exec(listen) : null;
    if (!m) throw new UsageError(`${file}: listen must be HOST:PORT, got ${JSON.stringify(listen)}`);
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const send = (status: number, body: unknown) => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'docker-distribution-api-version': 'registry/2.0' });
        res.end(req.method === 'HEAD' ? undefined : text);
      };
      if (path === '/healthz') return send(200, { status: 'ok' });
      if (path === '/v2/' || path === '/v2') return send(200, {});
      send(503, { errors: [{ code: 'UNAVAILABLE', message: 'trust-enforcing proxying is not available in this build', detail: { code: 'UNSUPPORTED' } }] });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(m[2]), m[1], resolve);
    });
    io.stderr(JSON.stringify({ level: 'info', msg: 'trustgate listening', listen, config: file }));
    const stop = () => server.close();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    await new Promise((resolve) => server.once('close', resolve));
    return EXIT_OK;
  } catch (err) {
    return reportError(io, err, START_USAGE);
  }
}
