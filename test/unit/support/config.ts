// Config-validation tests start from the same minimal config and read the same thing off a refusal:
// its message, after checking it is CONFIG_INVALID (a refusal with another code is a bug of its own).
import { expect } from 'vitest';
import { validateConfig } from '../../../src/config/schema.js';

/** An upstream with a Notary server on localhost: valid on its own under the default policy enforce. */
export const localUpstream = { name: 'local', registry: 'http://127.0.0.1:5000', gun: '127.0.0.1:5000', notary: { url: 'https://127.0.0.1:4443' } };

/** The smallest config that validates, built on localUpstream. */
export const minimalConfig = { listen: '127.0.0.1:5050', upstreams: [localUpstream], default: 'local' };

/** The problems validateConfig reports for `doc`; throws when `doc` is accepted. */
export function configProblems(doc: unknown): string {
  try {
    validateConfig(doc, 'test.yaml');
  } catch (err) {
    expect((err as { code?: string }).code).toBe('CONFIG_INVALID');
    return (err as Error).message;
  }
  throw new Error('config was accepted');
}
