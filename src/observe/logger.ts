// The one root pino logger; components take children of it. Credentials never reach a log line.
import { pino, type Logger, type LoggerOptions } from 'pino';
import type { LogFormat } from '../config/schema.js';

export type { LogFormat };

export type { Logger };

export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  '*.authorization',
  '*.token',
  '*.password',
  'password',
  'token',
];


/**
 * The format when `log.format` is not set: pretty when stdout is a terminal (someone is watching),
 * JSON otherwise — a pipe, a file, a container's log driver all get machine-readable lines.
 */
export function logFormatFor(configured: LogFormat | undefined, stdoutIsTTY: boolean): LogFormat {
  return configured ?? (stdoutIsTTY ? 'pretty' : 'json');
}

/** Where pretty lines go: write, flush before exit, flush synchronously on a fatal error. */
export interface PrettySink {
  readonly stream: pino.DestinationStream;
  write(line: string): void;
  drain(): Promise<void>;
  flushSync(): void;
}

/**
 * pino-pretty run by pino's own transport (pino.transport, a worker thread): the formatting work is
 * off the event loop, and the worker takes the same JSON lines a collector would get, so audit lines
 * (written as JSON strings, log-streams.ts) are prettified alike. Colour only on a terminal.
 * The worker writes the fd synchronously (`sync: true`, in the worker, not on the event loop):
 * thread-stream's flush() only waits until the worker took the lines, and with an asynchronous
 * destination there they could still sit in its buffer when drain() resolved (a WARN line was
 * missing after drain() under the full suite's load).
 */
export function prettySink(fd: number, colorize: boolean): PrettySink {
  const stream = pino.transport({ target: 'pino-pretty', options: { destination: fd, colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', sync: true } });
  return {
    stream,
    write: (line) => void stream.write(line),
    drain: () => new Promise<void>((resolve) => stream.flush(() => resolve())),
    flushSync: () => stream.flushSync(),
  };
}

export function createLogger(level: LoggerOptions['level'] = 'info', destination?: pino.DestinationStream): Logger {
  const opts: LoggerOptions = { level, base: { service: 'trustgate' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return destination ? pino(opts, destination) : pino(opts);
}

/**
 * The audit decisions (docs/audit.md has the fields of each): `allow` a requirement was met; `allow-digest`
 * a digest served content-addressed under `digestPulls: allow`; `audit-allow` served under policy audit
 * although refused; `pass` served under policy off; `deny` refused; `not-found` the upstream has no such
 * manifest. Every decision that serves bytes carries `digest`.
 */
export type AuditDecision = 'allow' | 'allow-digest' | 'audit-allow' | 'pass' | 'deny' | 'not-found';

/** One line per trust decision (DESIGN.md): the fields operators grep and alert on. */
export interface AuditRecord {
  upstream: string;
  gun: string;
  repo: string;
  ref: string;
  digest?: string | undefined;
  role?: string | undefined;
  decision: AuditDecision;
  /** The effective policy and requirement after repository overrides (src/policy/effective.ts). */
  policy: string;
  require?: string | undefined;
  digestPulls?: string | undefined;
  code?: string | undefined;
  reason?: string | undefined;
  /** Which signatures satisfied the policy: `dct <role>`, `notation <signature> policy <name>`, or both. */
  satisfiedBy?: string | undefined;
  /** Notation check failures the trust policy only logs (levels permissive/audit, overrides to log). */
  notationLogged?: readonly string[] | undefined;
  /** A server was unreachable and cached data decided: unexpired notary metadata, or a cached manifest by digest (stale-if-error). */
  stale?: boolean | undefined;
  /** DCT trust is frozen (notary.frozenAt): the instant it was frozen at, ISO 8601. */
  frozen?: string | undefined;
  durationMs: number;
}

/**
 * A record answered many times with the same fields but its duration (the warm tag path serves one
 * verified mapping over and over): its fields are serialised once, here, with JSON.stringify's
 * escaping, and every line after that only adds the time and `durationMs`.
 */
export class PreparedAudit {
  /** The record's fields as JSON, without the braces: `"upstream":"…",…` in the record's key order. */
  readonly fields: string;
  /** signatureKindOf(rec), made once: the warm path counts it per answer. */
  readonly kind: string;

  constructor(readonly rec: Readonly<Omit<AuditRecord, 'durationMs'>>) {
    this.fields = JSON.stringify(rec).slice(1, -1);
    this.kind = signatureKindOf(rec);
  }
}

const KIND_WORDS = /\b(dct|notation|cosign)\b/g;
// The two-kind shorthands of `require` (policy/vocabulary.ts REQUIRE_WORDS): both mean dct and notation.
const REQUIRE_SHORTHANDS: Readonly<Record<string, string>> = { 'any-of': 'dct+notation', 'all-of': 'dct+notation' };

/**
 * The signature kind of a decision, as the metric label trustgate_trust_decisions_by_kind_total has it:
 * on allow the kinds that satisfied the policy (its `satisfiedBy`, `dct …`, `notation …`, `cosign …`
 * joined by ` + `), otherwise the kinds the requirement names, in the order written, joined by `+`;
 * `none` when neither names one. Bounded: at most the seven combinations of three kinds, plus none.
 */
export function signatureKindOf(rec: Pick<AuditRecord, 'satisfiedBy' | 'require'>): string {
  const from = rec.satisfiedBy ? rec.satisfiedBy.split(' + ').map((p) => p.split(' ', 1)[0]!).join(' ') : rec.require;
  if (from === undefined) return 'none';
  const short = REQUIRE_SHORTHANDS[from];
  if (short) return short;
  const kinds = [...new Set(Array.from(from.matchAll(KIND_WORDS), (m) => m[1]!))];
  return kinds.length > 0 ? kinds.join('+') : 'none';
}

/** Where audit records go when they have a stream of their own (log-streams.ts). */
export interface AuditWriter {
  write(rec: AuditRecord): void;
  /** The same line as write({ ...p.rec, durationMs }), from the fields serialised once. */
  writePrepared?(p: PreparedAudit, durationMs: number): void;
  /**
   * false: the audit buffer is full and `audit.onFailure` is refuse — a decision made now could not be
   * recorded, so none is made (the server answers AUDIT_UNAVAILABLE). Absent: always accepting.
   */
  accepting?(): boolean;
  /** Why audit lines wait or are refused (readiness answers 503 with it); undefined while all is well. */
  problem?(): string | undefined;
}

export interface AuditSinks {
  log: Logger;
  /** The always-on audit stream; absent where a caller built only a logger (tests). */
  audit?: AuditWriter | undefined;
  metrics?: { decision(upstream: string, decision: string, code: string, kind?: string): void; answered?(path: 'warm' | 'cold', durationMs: number): void } | undefined;
}

// A fixed message: the decision, GUN and tag are fields already, and a string built per line was a
// visible cost on the warm path (docs/benchmarks.md, "Audit at line rate").
export const AUDIT_MSG = 'trust decision';

/**
 * One audit line and its metrics. `answer`: the line is that of a manifest answer and its durationMs is
 * observed as `path="cold"` (the full path) — except a tags/list refusal (not a manifest answer), and
 * callers that record a decision that answers nothing (a refused redirect) pass false.
 */
export function audit(to: AuditSinks, rec: AuditRecord, answer: 'cold' | false = 'cold', kind?: string): void {
  if (to.audit) to.audit.write(rec);
  else if (to.log.isLevelEnabled('info')) to.log.info({ audit: true, ...rec }, AUDIT_MSG);
  to.metrics?.decision(rec.upstream, rec.decision, rec.code ?? 'OK', kind ?? signatureKindOf(rec));
  if (answer && rec.ref !== 'tags/list') to.metrics?.answered?.(answer, rec.durationMs);
}

/** audit() for a prepared record (the warm path): the same line, the same metrics, observed as `path="warm"`. */
export function auditPrepared(to: AuditSinks, p: PreparedAudit, durationMs: number): void {
  if (to.audit?.writePrepared) {
    to.audit.writePrepared(p, durationMs);
    to.metrics?.decision(p.rec.upstream, p.rec.decision, p.rec.code ?? 'OK', p.kind);
    to.metrics?.answered?.('warm', durationMs);
  } else {
    audit(to, { ...p.rec, durationMs }, false, p.kind);
    to.metrics?.answered?.('warm', durationMs);
  }
}
