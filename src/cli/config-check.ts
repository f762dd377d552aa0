// `trustgate config check FILE`: validate without starting; every problem names key, value, expectation.
import { loadConfig, readConfigFile } from '../config/load.js';
import { loadCosignTrustSelector } from '../cosign/load-trust.js';
import { EXIT_OK, reportError, UsageError, type Io } from './output.js';

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
    io.stdout(JSON.stringify({ ok: true, file, listen: `${config.listen.host}:${config.listen.port}`, store: config.store.kind, upstreams: config.upstreams.map((u) => u.name) }));
    return EXIT_OK;
  } catch (err) {
    return reportError(io, err, 'usage: trustgate config check FILE');
  }
}
