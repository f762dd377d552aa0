// The cosign part of `trustgate inspect`: a registry client and the upstream's cosign trust, built for
// one command and closed after it.
import type { Config, UpstreamConfig } from '../config/schema.js';
import { formatCosignInspection, inspectCosign, type CosignTagView } from '../cosign/inspect.js';
import { loadCosignTrustSelector } from '../cosign/load-trust.js';
import { readConfigFile } from '../config/load.js';
import { RegistryClient } from '../registry/registry-client.js';

export async function inspectCosignFor(config: Config, u: UpstreamConfig, name: string, tag: string | undefined, env: NodeJS.ProcessEnv): Promise<CosignTagView[]> {
  const i = config.upstreams.indexOf(u);
  const trustFor = loadCosignTrustSelector(u, `upstreams[${i}]`);
  const password = u.passwordEnv ? env[u.passwordEnv] : undefined;
  const registry = new RegistryClient({
    registry: u.registry,
    ca: u.ca ? readConfigFile(u.ca, `upstreams[${i}].ca`) : undefined,
    credentials: u.username && password !== undefined ? { username: u.username, password } : undefined,
    realmAllowlist: u.realms,
    timeoutMs: config.limits.upstreamTimeoutMs,
    manifestBytes: config.limits.manifestBytes,
  });
  try {
    const repo = name.slice(u.gun.length + 1);
    return await inspectCosign(registry, repo, trustFor(repo), tag);
  } finally {
    await registry.close();
  }
}

export { formatCosignInspection };
