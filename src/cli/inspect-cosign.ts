// The cosign part of `trustgate inspect`: a registry client and the upstream's cosign trust, built for
// one command and closed after it.
import type { Config, UpstreamConfig } from '../config/schema.js';
import { formatCosignInspection, inspectCosign, type CosignTagView } from '../signatures/cosign/inspect.js';
import { loadCosignTrustSelector } from '../signatures/cosign/load-trust.js';
import { upstreamByGun } from '../app/select-upstream.js';
import { indexOfUpstream, registryClientFor } from '../app/upstream-clients.js';

export async function inspectCosignFor(config: Config, u: UpstreamConfig, name: string, tag: string | undefined, env: NodeJS.ProcessEnv): Promise<CosignTagView[]> {
  const i = indexOfUpstream(config, u);
  const trustFor = loadCosignTrustSelector(u, `upstreams[${i}]`);
  const repo = name.slice(u.gun.length + 1);
  const trust = trustFor(repo);
  const registry = registryClientFor(config, u, env);
  // A signature repository is read with the client of the upstream serving it, as `start` does.
  const sigUpstream = trust.repository !== undefined ? upstreamByGun(config, trust.repository) : u;
  const sigRegistry = sigUpstream === u ? registry : registryClientFor(config, sigUpstream, env);
  try {
    const signatures = trust.repository !== undefined ? { registry: sigRegistry, repo: trust.repository.slice(sigUpstream.gun.length + 1) } : undefined;
    return await inspectCosign(registry, repo, trust, tag, signatures);
  } finally {
    await registry.close();
    if (sigRegistry !== registry) await sigRegistry.close();
  }
}

export { formatCosignInspection };
