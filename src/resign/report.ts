// The resign report: one JSON line per tag (docs/resign.md "Report"), a summary table and the exit
// code. Pure: the CLI decides where lines go.
import type { DctProvenance } from './provenance.js';

/**
 * signed: a new signature was pushed; present: one by this key was there already; would-sign:
 * --dry-run, verified and not pushed; refused: the DCT engine (or the upstream's bytes) did not
 * verify the tag at that moment, nothing was signed; failed: verified, but the push failed.
 */
export type ResignResult = 'signed' | 'present' | 'would-sign' | 'refused' | 'failed';

export interface ReportLine {
  image: string;
  /** null when the repository's tags could not even be listed (a refusal for all of them). */
  tag: string | null;
  digest: string | null;
  dct: { role: string; keyIds: string[]; verifiedAt: string } | null;
  signature: { kind: 'cosign' | 'notation'; digest: string | null; repository: string } | null;
  result: ResignResult;
  code: string | null;
  message?: string;
}

/** One JSON line, fields always in the documented order. */
export function formatLine(l: ReportLine): string {
  const { image, tag, digest, dct, signature, result, code, message } = l;
  return JSON.stringify({ image, tag, digest, dct, signature, result, code, ...(message !== undefined ? { message } : {}) });
}

export function dctField(p: DctProvenance | undefined): ReportLine['dct'] {
  return p ? { role: p.role, keyIds: p.keyIds, verifiedAt: p.verifiedAt } : null;
}

/** 0 when every tag was signed or is present (or would be, dry run); 1 when any was refused or failed. */
export function exitCodeOf(lines: readonly ReportLine[]): 0 | 1 {
  return lines.length > 0 && lines.every((l) => l.result === 'signed' || l.result === 'present' || l.result === 'would-sign') ? 0 : 1;
}

export function countsOf(lines: readonly ReportLine[]): string {
  const order: ResignResult[] = ['signed', 'present', 'would-sign', 'refused', 'failed'];
  const n = (r: ResignResult) => lines.filter((l) => l.result === r).length;
  return order.filter((r) => n(r) > 0).map((r) => `${n(r)} ${r}`).join(', ') || 'no tags';
}

/** Fixed-width columns: IMAGE TAG RESULT CODE DIGEST, and a totals line. */
export function summaryTable(lines: readonly ReportLine[]): string {
  const rows = [['IMAGE', 'TAG', 'RESULT', 'CODE', 'DIGEST'], ...lines.map((l) => [l.image, l.tag ?? '-', l.result, l.code ?? '-', l.digest ?? '-'])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const text = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
  return `${text}\n${countsOf(lines)}`;
}
