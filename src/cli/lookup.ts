// `trustgate lookup GUN TAG (--metadata-dir DIR | --server URL) …`: one verified tag → digest.
import { readFile, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { upstreamByGun } from '../app/select-upstream.js';
import { pinningOf } from '../app/store.js';
import { notaryFetcherFor } from '../app/upstream-clients.js';
import { TrustClient, type MetadataFetcher, type TrustStateStore } from '../signatures/dct/client.js';
import type { TrustPinning } from '../signatures/dct/verify/root.js';
import { DirectoryFetcher } from '../signatures/dct/fetch/directory-fetcher.js';
import { NotaryHttpFetcher } from '../signatures/dct/fetch/http-fetcher.js';
import { MemoryTrustState } from '../signatures/dct/state/memory-state.js';
import { loadTrustDirState } from '../signatures/dct/state/trust-dir-state.js';
import { EXIT_OK, reportError, UsageError, type Io } from './output.js';

export const LOOKUP_USAGE = `usage: trustgate lookup GUN TAG --metadata-dir DIR [--trusted-root FILE] [--trusted-dir DIR2] [--now ISO8601]
       trustgate lookup GUN TAG --server URL [--ca FILE] [--username USER] [--realm-allow ORIGIN]... [--trusted-root FILE] [--trusted-dir DIR2] [--now ISO8601]
       trustgate lookup GUN TAG --config FILE [--trusted-root FILE] [--trusted-dir DIR2] [--now ISO8601]
  --config: the notary server of the upstream whose gun prefixes GUN, with its CA, credentials (passwordEnv),
    realms and timeout, and the config's trust_pinning, as \`start\` uses them.
  --username: Basic credentials for the token realm; the password comes from TRUSTGATE_NOTARY_PASSWORD.
  --realm-allow: an origin allowed as token realm (repeatable); default: the notary server's own origin.`;

export function parseNow(s: string | undefined): Date | undefined {
  if (s === undefined) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(s) || Number.isNaN(Date.parse(s))) {
    throw new UsageError(`--now must be an ISO 8601 time, got ${JSON.stringify(s)}`);
  }
  return new Date(s);
}

export async function runLookup(argv: string[], io: Io, env: NodeJS.ProcessEnv = {}): Promise<number> {
  let fetcher: MetadataFetcher | undefined;
  try {
    const { values, positionals } = (() => {
      try {
        return parseArgs({
          args: argv,
          allowPositionals: true,
          options: {
            'metadata-dir': { type: 'string' },
            server: { type: 'string' },
            ca: { type: 'string' },
            'trusted-root': { type: 'string' },
            'trusted-dir': { type: 'string' },
            now: { type: 'string' },
            username: { type: 'string' },
            'realm-allow': { type: 'string', multiple: true },
            config: { type: 'string' },
          },
        });
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    })();
    const [gun, tag, ...extra] = positionals;
    if (!gun || !tag || extra.length > 0) throw new UsageError('lookup needs exactly GUN and TAG');
    const dir = values['metadata-dir'];
    const server = values.server;
    const configFile = values.config;
    if ([dir, server, configFile].filter((v) => v !== undefined).length !== 1) throw new UsageError('give exactly one of --metadata-dir, --server or --config');
    if (values.ca !== undefined && server === undefined) throw new UsageError('--ca only applies with --server');
    const now = parseNow(values.now);
    if (dir !== undefined && !(await stat(dir).then((s) => s.isDirectory(), () => false))) {
      throw new UsageError(`--metadata-dir ${dir} is not a directory`);
    }

    const readArg = async (flag: string, path: string) => {
      try {
        return await readFile(path);
      } catch (err) {
        throw new UsageError(`${flag} ${path}: ${(err as Error).message}`);
      }
    };
    if ((values.username !== undefined || values['realm-allow'] !== undefined) && server === undefined) {
      throw new UsageError('--username and --realm-allow only apply with --server');
    }
    const password = env.TRUSTGATE_NOTARY_PASSWORD;
    if (values.username !== undefined && password === undefined) throw new UsageError('--username needs TRUSTGATE_NOTARY_PASSWORD in the environment');
    let pinning: TrustPinning | undefined;
    if (configFile !== undefined) {
      // The composition root's rules (src/app/): the same notary client and pinning `start` builds.
      const config = loadConfig(configFile, env);
      const u = upstreamByGun(config, gun);
      fetcher = notaryFetcherFor(config, u, env);
      if (!fetcher) throw new UsageError(`upstream ${u.name} (which serves ${gun}) has no notary server configured`);
      pinning = pinningOf(config);
    } else if (dir !== undefined) {
      fetcher = new DirectoryFetcher(dir);
    } else {
      try {
        fetcher = new NotaryHttpFetcher({
          url: server!,
          ca: values.ca ? await readArg('--ca', values.ca) : undefined,
          credentials: values.username !== undefined ? { username: values.username, password: password! } : undefined,
          realmAllowlist: values['realm-allow'],
        });
      } catch (err) {
        throw new UsageError(`--server/--realm-allow: ${(err as Error).message}`);
      }
    }
    const state: TrustStateStore = new MemoryTrustState();
    if (values['trusted-dir'] !== undefined) await state.save(gun, await loadTrustDirState(values['trusted-dir']));
    const trustedRoot = values['trusted-root'] !== undefined ? await readArg('--trusted-root', values['trusted-root']) : undefined;
    const client = new TrustClient({ fetcher, state, trustedRoot, pinning, clock: { now: () => now ?? new Date() } });
    const t = await client.lookup(gun, tag);
    io.stdout(JSON.stringify({ gun: t.gun, tag: t.tag, digest: t.digest, length: t.length, role: t.role }));
    return EXIT_OK;
  } catch (err) {
    return reportError(io, err, LOOKUP_USAGE);
  } finally {
    if (fetcher instanceof NotaryHttpFetcher) await fetcher.close();
  }
}
