// `trustgate inspect IMAGE[:TAG] [--json] [--config FILE]`: the signed tags, their digests and signers,
// and the repository's administrative keys, as `docker trust inspect` showed them — verified first.
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import { parseImage, upstreamForImage } from '../app/select-upstream.js';
import { buildKv, pinningOf } from '../app/store.js';
import { notaryFetcherFor } from '../app/upstream-clients.js';
import { TrustClient } from '../signatures/dct/client.js';
import type { NotaryHttpFetcher } from '../signatures/dct/fetch/http-fetcher.js';
import { formatInspection, inspectTrust, type TrustInspection } from '../signatures/dct/inspect.js';
import type { CosignTagView } from '../signatures/cosign/inspect.js';
import { dctTrustFor } from '../app/dct-trust.js';
import { MemoryTrustState } from '../signatures/dct/state/memory-state.js';
import { formatCosignInspection, inspectCosignFor } from './inspect-cosign.js';
import { EXIT_OK, reportError, UsageError, type Io } from './output.js';


const USAGE = `usage: trustgate inspect IMAGE[:TAG] [--json] [--config FILE]`;

function show(json: boolean, io: Io, shown: string, tag: string | undefined, result: TrustInspection, cosign: CosignTagView[] | undefined): number {
  if (tag !== undefined) result.SignedTags = result.SignedTags.filter((t) => t.SignedTag === tag);
  // Cosign signatures beside the DCT ones, when the upstream has cosign configured.
  if (json) io.stdout(JSON.stringify([cosign ? { ...result, CosignSignatures: cosign } : result]));
  else io.stdout(cosign ? `${formatInspection(result)}\n\n${formatCosignInspection(shown, cosign)}` : formatInspection(result));
  return EXIT_OK;
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
    if (u.notary.frozenAt && new Date() >= u.notary.frozenAt) {
      // Frozen: what the proxy serves from is the store's state verified before the freeze; the notary
      // server is not contacted.
      const kv = buildKv(config);
      const dct = dctTrustFor(config, u, env, kv, { now: () => new Date() })!;
      try {
        return show(parsed.values.json === true, io, shown, tag, inspectTrust(shown, await dct.service.verifiedSet(name)), cosign);
      } finally {
        await dct.close();
        await kv.close();
      }
    }
    fetcher = notaryFetcherFor(config, u, env)!;
    const client = new TrustClient({
      fetcher,
      state: new MemoryTrustState(),
      clock: { now: () => new Date() },
      pinning: pinningOf(config),
    });
    return show(parsed.values.json === true, io, shown, tag, inspectTrust(shown, await client.update(name)), cosign);
  } catch (err) {
    return reportError(io, err, USAGE);
  } finally {
    await fetcher?.close();
  }
}
