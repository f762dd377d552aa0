// The real `notary` CLI, non-interactive: passphrases from the environment, a trust dir per test.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pushImage, type PushedImage } from './oci-image.js';

const run = promisify(execFile);

export const PASSPHRASES = {
  NOTARY_ROOT_PASSPHRASE: 'root-passphrase',
  NOTARY_TARGETS_PASSPHRASE: 'targets-passphrase',
  NOTARY_SNAPSHOT_PASSPHRASE: 'snapshot-passphrase',
  NOTARY_DELEGATION_PASSPHRASE: 'delegation-passphrase',
};

export class NotaryCli {
  constructor(
    readonly server: string,
    readonly caFile: string,
    readonly trustDir: string,
  ) {}

  async run(args: string[], input?: string): Promise<string> {
    const child = run('notary', ['-s', this.server, '--tlscacert', this.caFile, '-d', this.trustDir, ...args], {
      env: { ...process.env, ...PASSPHRASES },
      timeout: 60_000,
    });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    } else child.child.stdin?.end();
    try {
      return (await child).stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      throw new Error(`notary ${args.join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`);
    }
  }

  /** A new repository whose snapshot key the server manages, as `docker trust` sets it up. */
  async initRepo(gun: string): Promise<void> {
    await this.run(['init', gun]);
    await this.run(['key', 'rotate', gun, 'snapshot', '-r']);
    await this.run(['publish', gun]);
  }

  async sign(gun: string, tag: string, file: string, roles: string[] = []): Promise<void> {
    await this.run(['add', gun, tag, file, ...roles.flatMap((r) => ['--roles', r])]);
    await this.run(['publish', gun]);
  }

  async unsign(gun: string, tag: string): Promise<void> {
    await this.run(['remove', gun, tag]);
    await this.run(['publish', gun]);
  }

  /** `notary lookup`: `<tag> sha256:<hex> <length>`, or null when notary refuses. */
  async lookup(gun: string, tag: string): Promise<{ digest: string; length: number } | null> {
    try {
      const out = (await this.run(['lookup', gun, tag])).trim().split(/\s+/);
      return { digest: out[1]!, length: Number(out[2]) };
    } catch {
      return null;
    }
  }
}

/**
 * A new image pushed to `registryHost/repo:tag` and that tag signed with Docker Content Trust by the
 * CLI (its manifest bytes written under `dir` for `notary add`). `init` creates the repository first;
 * pass false to sign a further tag in a repository already initialised.
 */
export async function pushSignedImage(cli: NotaryCli, dir: string, registryHost: string, repo: string, tag: string, init = true): Promise<PushedImage> {
  const img = await pushImage(dir, registryHost, repo, tag);
  const f = join(dir, `m-${repo.replace(/\//g, '_')}-${tag}`);
  writeFileSync(f, img.manifest);
  const gun = `${registryHost}/${repo}`;
  if (init) await cli.initRepo(gun);
  await cli.sign(gun, tag, f);
  return img;
}
