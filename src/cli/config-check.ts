// `trustgate config check FILE`: validate without starting; every problem names key, value, expectation.
import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { loadConfig, readConfigFile } from '../config/load.js';
import { loadCosignTrustSelector } from '../signatures/cosign/load-trust.js';
import { descriptorWarning, type Config } from '../config/schema.js';
import { loadNotationTrust } from '../app/notation-trust.js';
import { buildKv } from '../app/store.js';
import { notarySourceOf } from '../app/upstream-clients.js';
import { VerifiedRecords } from '../signatures/dct/state/verified-records.js';
import { EXIT_OK, reportError, UsageError, type Io } from './output.js';

/**
 * An upstream with notary.frozenAt whose store holds no DCT state verified before the freeze would refuse
 * every signed tag once frozen (FROZEN_NO_STATE): say so while there is still time to prefetch or import.
 */
async function frozenStateWarnings(config: Config): Promise<string[]> {
  const frozen = config.upstreams.filter((u) => u.notary?.frozenAt);
  if (frozen.length === 0) return [];
  const kv = buildKv(config);
  const out: string[] = [];
  try {
    for (const u of frozen) {
      const at = u.notary!.frozenAt!;
      const index = await new VerifiedRecords(kv, notarySourceOf(u)!).index();
      const before = [...index.values()].filter((d) => d <= at).length;
      if (before === 0) {
        out.push(`upstream ${u.name}: notary.frozenAt is ${at.toISOString()} and the ${config.store.kind} store holds no DCT state verified before it: every signed tag will be refused with FROZEN_NO_STATE once frozen (prefetch the repositories through trustgate or import a bundle exported before the freeze)`);
      }
    }
  } finally {
    await kv.close();
  }
  return out;
}

/** The size of the filesystem a path is (or would be) on: statfs of its nearest existing ancestor. */
async function filesystemSize(path: string): Promise<number | undefined> {
  for (let p = resolve(path); ; p = dirname(p)) {
    const st = await statfs(p).catch(() => undefined);
    if (st) return st.blocks * st.bsize;
    if (dirname(p) === p) return undefined;
  }
}

/** blobCache.maxBytes larger than its filesystem: the disk fills before the cache evicts (it then relays). */
async function blobCacheWarnings(config: Config): Promise<string[]> {
  if (!config.blobCache) return [];
  const size = await filesystemSize(config.blobCache.path);
  if (size === undefined || config.blobCache.maxBytes <= size) return [];
  return [`blobCache.maxBytes (${config.blobCache.maxBytes}) exceeds the size of the filesystem holding blobCache.path ${config.blobCache.path} (${size} bytes): the disk fills before the cache evicts, and misses are then relayed uncached`];
}

export async function runConfigCheck(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  try {
    const [sub, file, ...extra] = argv;
    if (sub !== 'check' || !file || extra.length) throw new UsageError('usage: trustgate config check FILE');
    const config = loadConfig(file, env);
    // Files named in the config must be readable, as at start.
    config.upstreams.forEach((u, i) => {
      if (u.ca) readConfigFile(u.ca, `upstreams[${i}].ca`);
      if (u.notary?.ca) readConfigFile(u.notary.ca, `upstreams[${i}].notary.ca`);
      // Cosign keys and trusted roots are parsed as start parses them (upstream and repository entries).
      if (u.cosign) loadCosignTrustSelector(u, `upstreams[${i}]`);
      for (const k of [u.passwordEnv, u.notary?.passwordEnv]) {
        if (k !== undefined && env[k] === undefined) throw new UsageError(`upstreams[${i}]: environment variable ${k} is not set`);
      }
    });
    for (const [p, f] of Object.entries(config.trustPinning.ca)) readConfigFile(f, `trust_pinning.ca.${p}`);
    // The Notation trust policy and the trust stores it names, parsed as start parses them.
    for (const [i, u] of config.upstreams.entries()) await loadNotationTrust(u, i);
    const fds = descriptorWarning(config);
    const warnings = [...(await frozenStateWarnings(config)), ...(await blobCacheWarnings(config)), ...(fds ? [fds] : [])];
    for (const w of warnings) io.stderr(`warning: ${w}`);
    io.stdout(JSON.stringify({ ok: true, file, listen: `${config.listen.host}:${config.listen.port}`, store: config.store.kind, upstreams: config.upstreams.map((u) => u.name), ...(warnings.length ? { warnings } : {}) }));
    return EXIT_OK;
  } catch (err) {
    return reportError(io, err, 'usage: trustgate config check FILE');
  }
}
