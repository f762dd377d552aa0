// An air-gapped site's starting point, with real parts: a registry holding `repo:v1`, signed with the
// real notary CLI on a real notary-server, exported as a trust bundle by `trustgate bundle export`, and
// the notary server then stopped (the site trusts the bundle only). Used by tests of the proxy's own
// faults, which need a signed tag and nothing else.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startRegistry, type Registry } from './docker-registry.js';
import { NotaryCli, pushSignedImage } from './notary-cli.js';
import { startNotary, type NotaryLab } from './notary-server.js';
import type { PushedImage } from './oci-image.js';
import { makePki } from './pki.js';
import { runCli } from './trustgate-process.js';

export async function signedBundleLab(dir: string, repo: string): Promise<{ origin: Registry; notary: NotaryLab; image: PushedImage; bundle: string }> {
  const pki = await makePki(dir);
  const [origin, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  const image = await pushSignedImage(cli, dir, origin.host, repo, 'v1');
  const online = join(dir, 'online.yaml');
  writeFileSync(online, stringify({ upstreams: [{ name: 'origin', registry: origin.url, gun: origin.host, notary: { url: notary.url, ca: notary.caFile } }], default: 'origin' }));
  const bundle = join(dir, 'bundle.json');
  const e = await runCli(['bundle', 'export', '--out', bundle, '--config', online, `${origin.host}/${repo}:v1`]);
  if (e.code !== 0) throw new Error(`bundle export failed: ${e.stdout}${e.stderr}`);
  await notary.stop();
  return { origin, notary, image, bundle };
}
