// How every CLI command reports: one JSON line on stdout, exit 0 (ok), 1 (refused/failed), 2 (usage).
import { isTrustgateError } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {}

export interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

export const processIo: Io = {
  stdout: (l) => process.stdout.write(l + '\n'),
  stderr: (l) => process.stderr.write(l + '\n'),
};

/** Map any error to the contract's JSON line and exit code. */
export function reportError(io: Io, err: unknown, usage?: string): number {
  if (err instanceof UsageError || (isTrustgateError(err) && err.code === 'USAGE')) {
    io.stdout(JSON.stringify({ error: 'USAGE', message: (err as Error).message }));
    if (usage) io.stderr(usage);
    return EXIT_USAGE;
  }
  if (isTrustgateError(err)) {
    io.stdout(JSON.stringify({ error: err.code, message: err.message }));
    return EXIT_REFUSED;
  }
  io.stdout(JSON.stringify({ error: 'INTERNAL', message: err instanceof Error ? err.message : String(err) }));
  return EXIT_REFUSED;
}
