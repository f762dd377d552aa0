// Which destination for audit lines: what one line costs the thread that serves requests, and the
// whole process's CPU (a worker-thread transport moves the write off the main thread but still needs a
// core, and these machines have two shared by load generator, registries and proxy). Lines go to a
// temp file. `npm run bench:audit` (AUDIT_LINES to change the count).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { openLogStreams } from '../src/observe/log-streams.js';
import { audit } from '../src/observe/logger.js';
import { printEnv, writeResults } from './lib/report.js';

const LINES = Number(process.env.AUDIT_LINES ?? 200_000);
const dir = mkdtempSync(join(tmpdir(), 'trustgate-auditdest-'));
const rec = {
  upstream: 'lab',
  gun: '127.0.0.1:5000/bench/app',
  repo: 'bench/app',
  ref: 'v1',
  digest: 'sha256:8f7c1b2a3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8',
  role: 'targets',
  decision: 'allow' as const,
  policy: 'enforce',
  satisfiedBy: 'dct targets',
  durationMs: 0.3,
};

interface Row {
  destination: string;
  mainThreadNsPerLine: number;
  processCpuNsPerLine: number;
  linesWritten: number;
}

async function measure(name: string, file: string, write: () => void, finish: () => Promise<void>): Promise<Row> {
  for (let i = 0; i < 2000; i++) write(); // warm-up (counted in the file, subtracted below)
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < LINES; i++) write();
  const main = Number(process.hrtime.bigint() - t0);
  await finish();
  const cpu = process.cpuUsage(cpu0);
  const written = readFileSync(file, 'utf8').split('\n').filter(Boolean).length - 2000;
  const r = { destination: name, mainThreadNsPerLine: main / LINES, processCpuNsPerLine: ((cpu.user + cpu.system) * 1000) / LINES, linesWritten: written };
  console.log(`${r.destination.padEnd(64)} main thread ${r.mainThreadNsPerLine.toFixed(0).padStart(6)} ns/line  process CPU ${r.processCpuNsPerLine.toFixed(0).padStart(6)} ns/line  lines ${r.linesWritten}`);
  return r;
}

async function main(): Promise<void> {
  printEnv();
  // pino's transport worker is unref'd: without a handle of our own, waiting for it would end the process.
  const keepAlive = setInterval(() => undefined, 1000);
  const rows: Row[] = [];
  const logOpts = { base: { service: 'trustgate' } };
  {
    // What trustgate did before: pino, synchronous writes (pino's default for stdout), audit at info.
    const file = join(dir, 'sync.log');
    const dest = pino.destination({ dest: file, sync: true });
    const log = pino({ ...logOpts, redact: ['*.token', 'token'] }, dest);
    rows.push(await measure('pino, sync sonic-boom (before)', file, () => log.info({ audit: true, ...rec }, `trust decision ${rec.decision} ${rec.gun}:${rec.ref}`), async () => dest.flushSync()));
  }
  {
    const file = join(dir, 'async-pino.log');
    const dest = pino.destination({ dest: file, sync: false });
    await new Promise((r) => dest.once('ready', r));
    const log = pino(logOpts, dest).child({ audit: true });
    rows.push(
      await measure('pino, async sonic-boom', file, () => log.info(rec, 'trust decision'), async () => {
        await new Promise<void>((r) => dest.flush(() => r()));
        dest.flushSync();
      }),
    );
  }
  {
    const file = join(dir, 'async-min.log');
    const dest = pino.destination({ dest: file, sync: false, minLength: 4096 });
    await new Promise((r) => dest.once('ready', r));
    const log = pino(logOpts, dest).child({ audit: true });
    rows.push(
      await measure('pino, async sonic-boom, minLength 4096', file, () => log.info(rec, 'trust decision'), async () => {
        await new Promise<void>((r) => dest.flush(() => r()));
        dest.flushSync();
      }),
    );
  }
  {
    const file = join(dir, 'transport.log');
    const transport = pino.transport({ target: 'pino/file', options: { destination: file } });
    await new Promise((r) => transport.once('ready', r));
    const log = pino(logOpts, transport).child({ audit: true });
    rows.push(
      await measure('pino.transport (worker thread, pino/file)', file, () => log.info(rec, 'trust decision'), async () => {
        await new Promise<void>((r) => {
          transport.once('close', () => r());
          transport.end();
        });
      }),
    );
  }
  {
    const file = join(dir, 'streams.log');
    const streams = openLogStreams({ level: 'info', auditPath: file });
    const sinks = { log: streams.log, audit: streams.audit };
    rows.push(await measure('trustgate audit stream (LineWriter batches, native serialisation)', file, () => audit(sinks, rec), () => streams.drain()));
  }
  for (const r of rows) {
    if (r.linesWritten !== LINES) throw new Error(`${r.destination}: ${r.linesWritten} of ${LINES} lines written`);
  }
  clearInterval(keepAlive);
  console.log(writeResults('audit-destination', { lines: LINES, rows }));
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
