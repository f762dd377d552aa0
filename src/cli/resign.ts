// `trustgate resign`: argv and output only; the work is src/resign/plan.ts. Report lines go to --report
// FILE (else stdout) as they are made; progress and the summary table go to stderr.
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { buildKv } from '../app/store.js';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import { fail } from '../errors.js';
import { CosignPublisher } from '../resign/cosign-publisher.js';
import { checkCosignKey } from '../resign/cosign-signer.js';
import { loadSigningKey, type SigningKey } from '../resign/keys.js';
import { NotationPublisher } from '../resign/notation-publisher.js';
import { parseChain, schemeFor, type EnvelopeFormat } from '../resign/notation-signer.js';
import { resignImages } from '../resign/plan.js';
import { exitCodeOf, formatLine, summaryTable } from '../resign/report.js';
import { reportError, UsageError, type Io } from './output.js';

const USAGE = `usage: trustgate resign --config FILE --to cosign|notation --key FILE [--cert CHAIN.pem] [--format jws|cose]
                       [--into REGISTRY_HOST/REPOSITORY] [--report FILE] [--dry-run] IMAGE[:TAG]...

  Re-signs tags that Docker Content Trust verifies now, with the site's key: cosign (tag form,
  sha256-<hex>.sig) or Notation (JWS or COSE, pushed as an OCI referrer). Without :TAG every signed tag
  of the repository. An encrypted cosign key's passphrase is read from COSIGN_PASSWORD.
  exit 0: every tag signed or present; 1: any refused or failed; 2: usage.`;

function readFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw fail('USAGE', `${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export async function runResign(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  let reportFd: number | undefined;
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
          config: { type: 'string' },
          to: { type: 'string' },
          key: { type: 'string' },
          cert: { type: 'string' },
          format: { type: 'string' },
          into: { type: 'string' },
          report: { type: 'string' },
          'dry-run': { type: 'boolean' },
          help: { type: 'boolean', short: 'h' },
        },
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const v = parsed.values;
    if (v.help) {
      io.stderr(USAGE);
      return 0;
    }
    if (v.to !== 'cosign' && v.to !== 'notation') throw new UsageError('--to cosign or --to notation is required');
    if (!v.key) throw new UsageError('--key FILE is required');
    if (parsed.positionals.length === 0) throw new UsageError('name at least one IMAGE[:TAG]');
    if (v.to === 'cosign' && (v.cert !== undefined || v.format !== undefined)) throw new UsageError('--cert and --format are for --to notation');
    if (v.to === 'notation' && !v.cert) throw new UsageError('--to notation needs --cert CHAIN.pem (the leaf certificate of --key first)');
    if (v.format !== undefined && v.format !== 'jws' && v.format !== 'cose') throw new UsageError('--format is jws or cose');
    const format: EnvelopeFormat = (v.format as EnvelopeFormat | undefined) ?? 'jws';
    // cosign reads the passphrase from COSIGN_PASSWORD; unset means "no passphrase given".
    const key: SigningKey = loadSigningKey(readFile(v.key, '--key'), env.COSIGN_PASSWORD);
    const chain = v.to === 'notation' ? parseChain(readFile(v.cert!, '--cert').toString('utf8'), key.publicKey) : [];
    if (v.to === 'cosign') checkCosignKey(key.privateKey);
    else schemeFor(key.privateKey);
    const config = loadConfig(v.config ?? env.TRUSTGATE_CONFIG ?? DEFAULT_CONFIG_FILE, env);
    if (v.report) {
      try {
        reportFd = openSync(v.report, 'w');
      } catch (err) {
        throw fail('USAGE', `--report ${v.report}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    const clock = { now: () => new Date() };
    const kv = buildKv(config);
    let lines;
    try {
      lines = await resignImages(parsed.positionals, {
        config,
        env,
        kv,
        clock,
        dryRun: v['dry-run'] ?? false,
        into: v.into,
        publisherFor: (reader, writer, repo, repository) =>
          v.to === 'cosign' ? new CosignPublisher(reader, writer, repo, repository, key) : new NotationPublisher(reader, writer, repo, repository, key, chain, format, clock.now),
        emit: (line) => (reportFd !== undefined ? writeSync(reportFd, formatLine(line) + '\n') : io.stdout(formatLine(line))),
        progress: (line) => io.stderr(`resign ${line}`),
      });
    } finally {
      await kv.close();
    }
    io.stderr(summaryTable(lines));
    return exitCodeOf(lines);
  } catch (err) {
    return reportError(io, err, USAGE);
  } finally {
    if (reportFd !== undefined) closeSync(reportFd);
  }
}
