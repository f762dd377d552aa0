// The clients of one upstream, built from its validated config entry with one set of rules for every
// command (start, inspect, bundle, resign): CA, credentials, token realms, `insecure`, redirects, time
// and size limits. Before this module `inspect` and `bundle export` wired their own clients and dropped
// `insecure`, `redirects` and credentials where `start` refused; a command may not be laxer than the proxy.
import { readConfigFile } from '../config/load.js';
import type { Config, UpstreamConfig } from '../config/schema.js';
import { fail } from '../errors.js';
import { RegistryClient, type RegistryClientOptions } from '../registry/registry-client.js';
import { RegistryWriter } from '../registry/registry-writer.js';
import { NotaryHttpFetcher } from '../signatures/dct/fetch/http-fetcher.js';

/**
 * A secret named by a `…passwordEnv` key. A configured variable that is not set is a usage error, as
 * it is for `start`: silently going anonymous would turn an auth problem into a confusing refusal.
 */
export function secretFromEnv(env: NodeJS.ProcessEnv, name: string | undefined, key: string): string | undefined {
  if (name === undefined) return undefined;
  const v = env[name];
  if (v === undefined) throw fail('USAGE', `${key}: environment variable ${name} is not set`);
  return v;
}

export function indexOfUpstream(config: Config, u: UpstreamConfig): number {
  const i = config.upstreams.indexOf(u);
  if (i < 0) throw fail('INTERNAL', `upstream ${u.name} is not part of this configuration`);
  return i;
}

/** Hooks only the proxy wires (metrics, audit of refused redirects); commands leave them out. */
export type RegistryHooks = Pick<RegistryClientOptions, 'onTiming' | 'onRedirectRefused' | 'self' | 'connections'>;

/** How to reach an upstream's registry: what its reading client and `resign`'s writer share. */
function registryConnection(config: Config, u: UpstreamConfig, env: NodeJS.ProcessEnv) {
  const at = `upstreams[${indexOfUpstream(config, u)}]`;
  return {
    registry: u.registry,
    ca: u.ca ? readConfigFile(u.ca, `${at}.ca`) : undefined,
    credentials: u.username ? { username: u.username, password: secretFromEnv(env, u.passwordEnv, `${at}.passwordEnv`) ?? '' } : undefined,
    realmAllowlist: u.realms,
    insecure: u.insecure,
    timeoutMs: config.limits.upstreamTimeoutMs,
  };
}

export function registryClientFor(config: Config, u: UpstreamConfig, env: NodeJS.ProcessEnv, hooks: RegistryHooks = {}): RegistryClient {
  return new RegistryClient({
    ...registryConnection(config, u, env),
    manifestBytes: config.limits.manifestBytes,
    redirects: u.redirects,
    self: config.listen,
    ...hooks,
  });
}

/**
 * The writer `resign` pushes signatures with: the same URL, CA, credentials, realms and `insecure` as
 * the upstream's registry client.
 */
export function registryWriterFor(config: Config, u: UpstreamConfig, env: NodeJS.ProcessEnv): RegistryWriter {
  return new RegistryWriter(registryConnection(config, u, env));
}

/**
 * The name an upstream's notary server goes by in the store (`meta:<source>:…`, `dct:verified:<source>:…`):
 * its host, as NotaryHttpFetcher names its source. Commands that read the store need no fetcher for it.
 */
export function notarySourceOf(u: UpstreamConfig): string | undefined {
  return u.notary ? new URL(u.notary.url).host : undefined;
}

/** The upstream's notary server, or undefined when it has none (bundle, cosign or Notation only). */
export function notaryFetcherFor(config: Config, u: UpstreamConfig, env: NodeJS.ProcessEnv): NotaryHttpFetcher | undefined {
  const n = u.notary;
  if (!n) return undefined;
  const at = `upstreams[${indexOfUpstream(config, u)}].notary`;
  return new NotaryHttpFetcher({
    url: n.url,
    ca: n.ca ? readConfigFile(n.ca, `${at}.ca`) : undefined,
    credentials: n.username ? { username: n.username, password: secretFromEnv(env, n.passwordEnv, `${at}.passwordEnv`) ?? '' } : undefined,
    realmAllowlist: n.realms,
    timeoutMs: n.timeoutMs,
  });
}
