// The cosign part of `trustgate inspect`: a registry client and the upstream's cosign trust, built for
// one command and closed after it.
import type { Config, UpstreamConfig } from '../config/schema.js';
import { formatCosignInspection, inspectCosign, type CosignTagView } from '../cosign/inspect.js';
import { loadCosignTrustSelector } from '../cosign/load-trust.js';
import { indexOfUpstream, registryClientFor } from '../app/upstream-clients.js';

export async function inspectCosignFor(config: Config, u: UpstreamConfig, name: string, tag: string | undefined, env: NodeJS.ProcessEnv): Promise<CosignTagView[]> {
  const i = indexOfUpstream(config, u);
  const trustFor = loadCosignTrustSelector(u, `upstreams[${i}]`);
  const registry = registryClientFor(config, u, env);
  try {
    const repo = name.slice(u.gun.length + 1);
    return await inspectCosign(registry, repo, trustFor(repo), tag);
  } finally {
    await registry.close();
  }
}

export { formatCosignInspection };
