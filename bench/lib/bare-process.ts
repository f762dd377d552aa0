// The bare node:http floor (bare-server.ts) as a process of its own, so bench:profile can profile it
// under the same load as trustgate: `bare-process.ts MANIFEST_FILE MEDIA_TYPE DIGEST PORT`.
import { readFileSync } from 'node:fs';
import { startBareServer } from './bare-server.js';

const [file, mediaType, digest, port] = process.argv.slice(2);
const server = await startBareServer(readFileSync(file!), mediaType!, digest!, Number(port));
// Exit normally on SIGTERM: --cpu-prof writes its profile at exit.
process.once('SIGTERM', () => {
  setTimeout(() => process.exit(0), 2000).unref();
  void server.close().then(() => process.exit(0));
});
