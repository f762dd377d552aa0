// docs/errors.md and src/errors.ts must list the same codes with the same OCI code and status.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CODES } from '../../src/errors.js';

const rows = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
  .split('\n')
  .map((l) => /^\| `([A-Z_]+)` \| ([A-Z_]+) \| (\d+) \|/.exec(l))
  .filter((m): m is RegExpExecArray => m !== null)
  .map((m) => ({ code: m[1]!, oci: m[2]!, status: Number(m[3]) }));

describe('error code table', () => {
  it('docs/errors.md lists every code in src/errors.ts, and nothing else', () => {
    expect(rows.map((r) => r.code).sort()).toEqual(Object.keys(CODES).sort());
  });
  it.each(rows)('$code has the documented OCI code and status', ({ code, oci, status }) => {
    const c = CODES[code as keyof typeof CODES];
    expect({ oci: c.oci, status: c.status }).toEqual({ oci, status });
  });
});
