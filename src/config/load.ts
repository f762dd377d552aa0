// Read the YAML config, apply TRUSTGATE_* environment overrides, validate (schema.ts), and read the
// files it names (CA bundles) so that a missing file fails at start, naming the key.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { fail } from '../errors.js';
import { validateConfig, type Config } from './schema.js';

export const DEFAULT_CONFIG_FILE = 'config/default.yaml';

/** Environment overrides: the few settings operators change per deployment without editing YAML. */
const ENV_KEYS: Record<string, (doc: Record<string, unknown>, v: string) => void> = {
  TRUSTGATE_LISTEN: (d, v) => void (d.listen = v),
  TRUSTGATE_LOG_LEVEL: (d, v) => void (d.log = { ...(d.log as object), level: v }),
  TRUSTGATE_STORE_PATH: (d, v) => void (d.store = { kind: 'file', path: v }),
  TRUSTGATE_REDIS_URL: (d, v) => void (d.store = { kind: 'redis', url: v }),
};

export function loadConfig(file: string, env: NodeJS.ProcessEnv = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw fail('CONFIG_INVALID', `cannot read config file ${file}: ${(err as Error).message}`, err);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    throw fail('CONFIG_INVALID', `${file} is not valid YAML: ${(err as Error).message}`, err);
  }
  if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
    for (const [k, apply] of Object.entries(ENV_KEYS)) {
      const v = env[k];
      if (v !== undefined && v !== '') apply(doc as Record<string, unknown>, v);
    }
  }
  return validateConfig(doc, file);
}

/** Read a file the config names (CA bundle), failing with the config key in the message. */
export function readConfigFile(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw fail('CONFIG_INVALID', `${key}: cannot read ${path}: ${(err as Error).message}`, err);
  }
}
