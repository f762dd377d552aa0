// The two-upstream configuration the routing tests share: a local lab registry and Docker Hub (the default).
import { validateConfig } from '../../../src/config/schema.js';

export const routingConfig = validateConfig(
  {
    upstreams: [
      { name: 'local', registry: 'http://127.0.0.1:5000', gun: '127.0.0.1:5000', notary: { url: 'https://127.0.0.1:4443' } },
      { name: 'hub', registry: 'https://registry-1.docker.io', gun: 'docker.io', notary: { url: 'https://notary.docker.io' } },
    ],
    default: 'hub',
  },
  'test',
);
export const routingContext = { upstreams: routingConfig.upstreams, defaultUpstream: routingConfig.default };
/** A well-formed digest. */
export const D = 'sha256:' + 'a'.repeat(64);
