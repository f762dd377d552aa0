// `trustgate inspect IMAGE[:TAG] [--json] [--config FILE]`: the signed tags, their digests and signers,
// and the repository's administrative keys, as `docker trust inspect` showed them — verified first.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import type { Config, UpstreamConfig } from '../config/schema.js';
import { fail } from '../errors.js';
import { TrustClient } from '../trust/client.js';
import { NotaryHttpFetcher } from '../trust/fetch/http-fetcher.js';
import { formatInspection, inspectTrust } from '../trust/inspect.js';
import { MemoryTrustState } from '../trust/state/memory-state.js';
import { formatCosignInspection, inspectCosignFor } from './inspect-cosign.js';
import { EXIT_OK, reportError, UsageError, type Io } from './output.js';

const USAGE = `usage: trustgate inspect IMAGE[:TAG] [--json] [--config FILE]`;

/** docker reference → { name (host/path), tag }: `alpine` is docker.io/library/alpine. */
export function parseImage(ref: string): { name: string; tag?: string | undefined } {
  if (ref.includes('@')) throw new UsageError('inspect takes a tag, not a digest');
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  const tag = colon > slash ? ref.slice(colon + 1) : undefined;
  let name = colon > slash ? ref.slice(0, colon) : ref;
  const first = name.split('/')[0]!;
  if (!name.includes('/') || !(first.includes('.') || first.includes(':') || first === 'localhost')) {
    name = `docker.io/${name.includes('/') ? name : `library/${name}`}`;
  }
  if (name.startsWith('index.docker.io/')) name = `docker.io/${name.slice('index.docker.io/'.length)}`;
  return { name, tag };
}

/** `allowCosignOnly`: inspect also lists cosign signatures, so an upstream with cosign and no notary is enough. */
export function upstreamForImage(config: Config, name: string, allowCosignOnly = false): UpstreamConfig {
  const u = [...config.upstreams].sort((a, b) => b.gun.length - a.gun.length).find((x) => name.startsWith(`${x.gun}/`));
  if (!u) throw fail('NOT_FOUND', `no upstream in the configuration serves ${name} (upstream gun prefixes: ${config.upstreams.map((x) => x.gun).join(', ')})`);
  if (!u.notary && !(allowCosignOnly && u.cosign)) throw fail('TRUST_DATA_MISSING', `upstream ${u.name} has no notary server configured`);
  return u;
}

export async function runInspect(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  let fetcher: NotaryHttpFetcher | undefined;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' }, config: { type: 'string' } } });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const [image, ...extra] = parsed.positionals;
    if (!image || extra.length) throw new UsageError('inspect needs exactly one IMAGE[:TAG]');
    const config = loadConfig(parsed.values.config ?? env.TRUSTGATE_CONFIG ?? DEFAULT_CONFIG_FILE, env);
    const { name, tag } = parseImage(image);
    const u = upstreamForImage(config, name, true);
    const shown = tag !== undefined ? image.slice(0, image.length - tag.length - 1) : image;
    const cosign = u.cosign ? await inspectCosignFor(config, u, name, tag, env) : undefined;
    if (!u.notary) {
      io.stdout(parsed.values.json ? JSON.stringify([{ Name: shown, CosignSignatures: cosign }]) : formatCosignInspection(shown, cosign!));
      return EXIT_OK;
    }
    const n = u.notary;
    const password = n.passwordEnv ? env[n.passwordEnv] : undefined;
    fetcher = new NotaryHttpFetcher({
      url: n.url,
      ca: n.ca ? readFileSync(n.ca) : undefined,
      credentials: n.username && password !== undefined ? { username: n.username, password } : undefined,
      realmAllowlist: n.realms,
      timeoutMs: n.timeoutMs,
    });
    const client = new TrustClient({
      fetcher,
      state: new MemoryTrustState(),
      clock: { now: () => new Date() },
      pinning: { certs: config.trustPinning.certs, ca: Object.fromEntries(Object.entries(config.trustPinning.ca).map(([p, f]) => [p, readFileSync(f, 'utf8')])), disableTofu: config.trustPinning.disableTofu },
    });
    const result = inspectTrust(shown, await client.update(name));
    if (tag !== undefined) result.SignedTags = result.SignedTags.filter((t) => t.SignedTag === tag);
    // Cosign signatures beside the DCT ones, when the upstream has cosign configured.
    if (parsed.values.json) io.stdout(JSON.stringify([cosign ? { ...result, CosignSignatures: cosign } : result]));
    else io.stdout(cosign ? `${formatInspection(result)}\n\n${formatCosignInspection(shown, cosign)}` : formatInspection(result));
    return EXIT_OK;
  } catch (err) {
    return reportError(io, err, USAGE);
  } finally {
    await fetcher?.close();
  }
}
