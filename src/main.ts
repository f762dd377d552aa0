#!/usr/bin/env node
// Composition root and CLI entry: the only file that reads process.argv / env and exits.
import { EXIT_USAGE, processIo } from './cli/output.js';

const USAGE = `usage: trustgate <command> [options]

commands:
  start [--config FILE]          run the proxy (default config/default.yaml, or TRUSTGATE_CONFIG)
  lookup GUN TAG …               verify a signed tag offline (--metadata-dir) or online (--server)
  inspect IMAGE[:TAG] [--json]   signed tags, digests, signers and keys, like docker trust inspect
  config check FILE              validate a configuration file without starting
  bundle export|import|status    trust bundles for air-gapped sites
  cache status|prune             the blob cache on local disk: what it holds; remove least recently used
  resign --to cosign|notation …  re-sign DCT-verified tags with the site's key (cosign or Notation)

run 'trustgate <command> --help' for a command's options.`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  // Each command loads only its own modules: `lookup` need not pay for the proxy's HTTP server,
  // Redis client and metrics at start-up (CLI start-up was ~0.45 s with everything loaded).
  switch (cmd) {
    case 'lookup':
      return (await import('./cli/lookup.js')).runLookup(rest, processIo, process.env);
    case 'start':
      return (await import('./cli/start.js')).runStart(rest, processIo, process.env);
    case 'inspect':
      return (await import('./cli/inspect.js')).runInspect(rest, processIo, process.env);
    case 'config':
      return (await import('./cli/config-check.js')).runConfigCheck(rest, processIo, process.env);
    case 'bundle':
      return (await import('./cli/bundle.js')).runBundle(rest, processIo, process.env);
    case 'cache':
      return (await import('./cli/cache.js')).runCache(rest, processIo, process.env);
    case 'resign':
      return (await import('./cli/resign.js')).runResign(rest, processIo, process.env);
    case undefined:
    case '-h':
    case '--help':
      processIo.stderr(USAGE);
      return cmd === undefined ? EXIT_USAGE : 0;
    default:
      processIo.stderr(`unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      return EXIT_USAGE;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`trustgate: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
