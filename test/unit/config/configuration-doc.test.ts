// docs/configuration.md against the schema (issue 24): every key the schema accepts is documented with
// a default and an example, no documented key is stale, and the defaults the page states are the ones
// validateConfig fills in. The key list comes from the schema (test/support/config-keys.ts), so a key
// added there fails here until it is documented.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultMaxConnections, validateConfig } from '../../../src/config/schema.js';
import { BASE_CONFIG, schemaKeys } from '../../support/config-keys.js';

const DOC = readFileSync(fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url)), 'utf8');

interface Row {
  key: string;
  def: string;
  example: string;
  meaning: string;
}
/** Table rows whose first cell is one backticked key. */
function rows(): Row[] {
  return DOC.split('\n')
    .filter((l) => /^\| `[A-Za-z_][\w.[\]]*` \|/.test(l))
    .map((l) => {
      const cells = l.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
      return { key: cells[0]!.slice(1, -1), def: cells[1] ?? '', example: cells[2] ?? '', meaning: cells[3] ?? '' };
    });
}

/** The value validateConfig fills in for a documented key, when the key maps 1:1 onto the result. */
function defaultOf(cfg: unknown, key: string): unknown {
  let at: unknown = cfg;
  for (const seg of key.split('.')) {
    const m = /^(\w+)(\[\])?$/.exec(seg);
    if (!m || typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string, unknown>)[m[1]!];
    if (m[2]) at = Array.isArray(at) ? at[0] : undefined;
  }
  return at;
}

describe('docs/configuration.md', () => {
  const documented = rows();

  it('reads a plausible key list from the schema', () => {
    const keys = schemaKeys();
    expect(keys.length).toBeGreaterThan(50);
    expect(keys).toEqual(expect.arrayContaining(['listen', 'store.url', 'upstreams[].notary.timeoutMs', 'upstreams[].repositories[].cosign.identities[].subject', 'log.format', 'blobCache.maxBytes']));
  });

  it('documents every key the schema accepts, and nothing else', () => {
    const keys = new Set(schemaKeys());
    const doc = documented.map((r) => r.key);
    expect(doc.filter((k, i) => doc.indexOf(k) !== i), 'documented twice').toEqual([]);
    expect([...keys].filter((k) => !doc.includes(k)), 'in src/config/schema.ts but not in docs/configuration.md').toEqual([]);
    expect(doc.filter((k) => !keys.has(k)), 'in docs/configuration.md but not accepted by the schema (stale)').toEqual([]);
  });

  it('gives every key a default, an example that names the key, and a meaning', () => {
    for (const r of documented) {
      expect(r.def, r.key).not.toBe('');
      expect(r.meaning.length, r.key).toBeGreaterThan(10);
      const leaf = r.key.split('.').pop()!.replace('[]', '');
      expect(r.example, r.key).toMatch(new RegExp(`^\`${leaf}: .+\`$`));
    }
  });

  /** Defaults that depend on the machine, each with the words its row must use and the value the schema must give. */
  const MACHINE_DEFAULTS: Record<string, { says: string; value: () => number }> = {
    'limits.maxConnections': { says: 'half the soft open-file limit', value: () => defaultMaxConnections() },
    'limits.perClientConnections': { says: 'a quarter of `maxConnections`', value: () => Math.max(64, Math.floor(defaultMaxConnections() / 4)) },
  };

  it('states the defaults validateConfig fills in', () => {
    const cfg = validateConfig(BASE_CONFIG, 'base');
    let checked = 0;
    for (const r of documented) {
      if (defaultOf(BASE_CONFIG, r.key) !== undefined) continue; // set by the base config, not a default
      const rule = MACHINE_DEFAULTS[r.key];
      if (rule) {
        // Computed from the machine (its open-file limit): the row states the rule, the schema follows it.
        expect(r.def, `${r.key}: the row states how the default is computed`).toContain(rule.says);
        expect(defaultOf(cfg, r.key), r.key).toBe(rule.value());
        checked++;
        continue;
      }
      const v = defaultOf(cfg, r.key);
      if (v === undefined || (typeof v === 'object' && !Array.isArray(v))) continue;
      const shown = Array.isArray(v) ? JSON.stringify(v) : String(v);
      expect(r.def, `${r.key}: the schema's default is ${shown}`).toContain(`\`${shown}\``);
      checked++;
    }
    expect(checked).toBeGreaterThan(25);
  });

  it('every example value is accepted by the schema where it can stand alone', () => {
    // Examples of scalar keys outside upstreams, set one at a time on the base config.
    for (const r of documented) {
      if (r.key.includes('[]') || r.key.startsWith('store.') || r.key.startsWith('trust_pinning.')) continue;
      const value = (r.example.match(/^`\w+: (.+)`$/)?.[1] ?? '').replace(/^"|"$/g, '');
      const parsed: unknown = /^\d+$/.test(value) ? Number(value) : value === 'true' ? true : value === 'false' ? false : value;
      const [section, leaf] = r.key.includes('.') ? r.key.split('.') : [undefined, r.key];
      const doc = section ? { ...BASE_CONFIG, [section]: { [leaf!]: parsed } } : { ...BASE_CONFIG, [leaf!]: leaf === 'default' ? 'a' : parsed };
      expect(() => validateConfig(doc, r.key), `${r.key}: ${r.example}`).not.toThrow();
    }
  });
});
