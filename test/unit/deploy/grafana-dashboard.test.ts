// deploy/grafana/trustgate.json (issue 24): the panels the issue lists are there, every query is
// scoped by the $instance variable and uses the dashboard's datasource variable, ids are unique.
// Whether each expression returns data is test/integration/observability.test.ts (a live scrape).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dashboardExpressions } from '../../support/prometheus.js';

const FILE = fileURLToPath(new URL('../../../deploy/grafana/trustgate.json', import.meta.url));
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}
const dash = JSON.parse(readFileSync(FILE, 'utf8')) as { uid: string; panels: Panel[] };

describe('deploy/grafana/trustgate.json', () => {
  it('has the panels issue 24 lists', () => {
    const titles = dash.panels.map((p) => p.title).join('\n');
    for (const want of [/Decisions by outcome/, /signature kind/, /Refusals by code/, /time to headers.*cold/i, /Upstream requests by upstream and kind/, /hit ratio/, /from cache vs from the upstream/, /store up/i, /Store operations/, /expiry/, /^Decisions by signature kind$/m, /answer time, warm and cold/, /trust data age/, /DCT trust data: time to expiry/, /notAfter \(Notation trust stores, cosign trusted roots\)/, /Frozen DCT trust/, /Signatures in use: time to their earliest end/, /Audit backlog/, /Blob cache free space and filling/]) expect(titles).toMatch(want);
  });

  it('every query uses the datasource variable and the instance filter; panel ids are unique', () => {
    const queries = dash.panels.filter((p) => p.type !== 'row');
    for (const p of queries) {
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        expect(t.datasource?.uid, p.title).toBe('${datasource}');
        for (const sel of t.expr.matchAll(/\b(trustgate_[a-z0-9_]+|up)(?![a-z0-9_])(\{[^}]*\})?/g)) expect(sel[2] ?? '', `${p.title}: ${sel[0]}`).toContain('instance=~"$instance"');
      }
    }
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboardExpressions(FILE).length).toBeGreaterThan(25);
  });
});
