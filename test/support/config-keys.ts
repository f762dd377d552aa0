// The configuration keys, read from the schema itself (src/config/schema.ts): validateConfig names the
// keys a mapping accepts when it meets an unknown one, so probing each mapping with a key that does not
// exist lists them, level by level. A key added to or removed from the schema shows up here without any
// list to keep in step (docs/configuration.md is checked against this by a unit test).
import { validateConfig } from '../../src/config/schema.js';

const PROBE = '__probe__';
/** A valid minimal config: the probes go into it, so checks that need a valid upstream still run. */
export const BASE_CONFIG = { upstreams: [{ name: 'a', registry: 'https://r.example', gun: 'r.example', notary: { url: 'https://n.example' } }] };
/** Mappings whose accepted keys depend on a discriminator. */
const VARIANTS: Record<string, Array<Record<string, unknown>>> = { store: [{ kind: 'file' }, { kind: 'redis' }] };

function problems(doc: unknown): string[] {
  try {
    validateConfig(doc, 'probe');
    return [];
  } catch (e) {
    return (e as Error).message.split('\n  - ').slice(1);
  }
}

/** `upstreams[].notary` → the path validateConfig prints (`upstreams[0].notary`). */
const printed = (path: string[]) => path.map((s, i) => (s === '[]' ? '[0]' : i === 0 ? s : `.${s}`)).join('');
export const docPath = (path: string[]) => path.map((s, i) => (s === '[]' ? '[]' : i === 0 ? s : `.${s}`)).join('');

function withValue(base: unknown, path: string[], value: unknown): unknown {
  const root = structuredClone(base) as Record<string, unknown>;
  let at: Record<string, unknown> | unknown[] = root;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    if (seg === '[]') {
      const list = at as unknown as unknown[];
      if (last) list[0] = value;
      else list[0] = typeof list[0] === 'object' && list[0] !== null ? list[0] : path[i + 1] === '[]' ? [] : {};
      at = list[0] as Record<string, unknown>;
    } else {
      const obj = at as Record<string, unknown>;
      if (last) obj[seg] = value;
      else obj[seg] = typeof obj[seg] === 'object' && obj[seg] !== null ? obj[seg] : path[i + 1] === '[]' ? [] : {};
      at = obj[seg] as Record<string, unknown>;
    }
  }
  return root;
}

function knownKeys(doc: unknown, path: string[]): string[] | undefined {
  const key = path.length === 0 ? PROBE : `${printed(path)}.${PROBE}`;
  const line = problems(doc).find((l) => l.startsWith(`${key}: got 1, expected no such key (known: `));
  return line ? line.slice(line.indexOf('(known: ') + 8, -1).split(', ') : undefined;
}

/** Every leaf key the schema accepts, as docs write them: `limits.manifestBytes`, `upstreams[].notary.url`. */
export function schemaKeys(): string[] {
  const leaves = new Set<string>();
  const walk = (path: string[]) => {
    const contexts = VARIANTS[docPath(path)] ?? [{}];
    const keys = new Set<string>();
    for (const ctx of contexts) {
      const doc = path.length === 0 ? { ...BASE_CONFIG, [PROBE]: 1 } : withValue(BASE_CONFIG, path, { ...ctx, [PROBE]: 1 });
      for (const k of knownKeys(doc, path) ?? []) keys.add(k);
    }
    for (const k of keys) {
      const child = [...path, k];
      if (knownKeys(withValue(BASE_CONFIG, child, { [PROBE]: 1 }), child)) walk(child);
      else if (knownKeys(withValue(BASE_CONFIG, [...child, '[]'], { [PROBE]: 1 }), [...child, '[]'])) walk([...child, '[]']);
      else leaves.add(docPath(child));
    }
  };
  walk([]);
  return [...leaves].sort();
}
