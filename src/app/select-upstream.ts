// Which upstream serves an image, named as a person names it (`alpine`, `host:5000/team/app:1.2`):
// the upstream whose `gun` is the longest prefix of the image's name.
import type { Config, UpstreamConfig } from '../config/schema.js';
import { fail } from '../errors.js';

/** docker reference → { name (host/path), tag }: `alpine` is docker.io/library/alpine. */
export function parseImage(ref: string): { name: string; tag?: string | undefined } {
  if (ref.includes('@')) throw fail('USAGE', 'name an image by tag, not by digest');
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  const tag = colon > slash ? ref.slice(colon + 1) : undefined;
  let name = colon > slash ? ref.slice(0, colon) : ref;
  const first = name.split('/')[0]!;
  if (!name.includes('/') || !(first.includes('.') || first.includes(':') || first === 'localhost')) {
    name = `docker.io/${name.includes('/') ? name : `library/${name}`}`;
  }
  if (name.startsWith('index.docker.io/')) name = `docker.io/${name.slice('index.docker.io/'.length)}`;
  return { name, tag };
}

/** The upstream whose `gun` is the longest prefix of `name`, whatever trust it has (resign's `--into`). */
export function upstreamByGun(config: Config, name: string): UpstreamConfig {
  const u = [...config.upstreams].sort((a, b) => b.gun.length - a.gun.length).find((x) => name.startsWith(`${x.gun}/`));
  if (!u) throw fail('NOT_FOUND', `no upstream in the configuration serves ${name} (upstream gun prefixes: ${config.upstreams.map((x) => x.gun).join(', ')})`);
  return u;
}

/** `allowCosignOnly`: inspect also lists cosign signatures, so an upstream with cosign and no notary is enough. */
export function upstreamForImage(config: Config, name: string, allowCosignOnly = false): UpstreamConfig {
  const u = upstreamByGun(config, name);
  if (!u.notary && !(allowCosignOnly && u.cosign)) throw fail('TRUST_DATA_MISSING', `upstream ${u.name} has no notary server configured`);
  return u;
}

