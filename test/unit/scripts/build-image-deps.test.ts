// `npm run image` on a fresh machine (issue 24): scripts/build-image.sh installs podman and mmdebstrap
// when they are missing (root with apt-get, as `npm test` does), or prints the one command to run and
// fails. The machine here has both, so each case runs the real script with a PATH that lacks a tool:
// a directory of links to every command on this machine except the ones the case removes, and, for
// the install branch, an apt-get that records its arguments and "installs" the tool as a stub.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../../../scripts/build-image.sh', import.meta.url));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A bin directory with every command from the real PATH except `without`. */
function pathWithout(without: string[]): string {
  const d = mkdtempSync(join(tmpdir(), 'tg-bin-'));
  dirs.push(d);
  const bin = join(d, 'bin');
  mkdirSync(bin);
  for (const p of (process.env.PATH ?? '').split(':')) {
    if (!p || !existsSync(p)) continue;
    for (const f of readdirSync(p)) {
      if (without.includes(f) || existsSync(join(bin, f))) continue;
      symlinkSync(join(p, f), join(bin, f));
    }
  }
  return bin;
}

function runScript(bin: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile('/bin/bash', [SCRIPT, ...args], { env: { PATH: bin, HOME: process.env.HOME ?? '/root' }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    ),
  );
}

describe('scripts/build-image.sh on a machine without its tools', () => {
  it('without apt-get (or root) it names the single command to run and fails', async () => {
    const bin = pathWithout(['mmdebstrap', 'apt-get']);
    const r = await runScript(bin, ['--deps-only']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('build-image: ERROR: mmdebstrap not found. Run: sudo apt-get install -y mmdebstrap');
  });

  it('as root with apt-get it installs what is missing (one apt-get install of exactly those packages), and succeeds', async () => {
    expect(process.getuid?.()).toBe(0); // the sandbox and CI run as root; the other branch is the case above
    const bin = pathWithout(['mmdebstrap', 'podman', 'apt-get']);
    const calls = join(bin, '..', 'apt-calls');
    // The stand-in apt-get: logs its arguments; `install` creates the named commands as stubs.
    writeFileSync(
      join(bin, 'apt-get'),
      `#!/bin/bash\necho "$*" >> ${calls}\nif [[ $1 == install ]]; then for p in "$@"; do [[ $p == -* || $p == install ]] && continue; printf '#!/bin/sh\\nexit 0\\n' > ${bin}/$p; chmod +x ${bin}/$p; done; fi\n`,
    );
    chmodSync(join(bin, 'apt-get'), 0o755);
    const r = await runScript(bin, ['--deps-only']);
    expect(r.out).toContain('build-image: podman mmdebstrap not found: installing with apt-get');
    expect(r.code, r.out).toBe(0);
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual(['update -qq', 'install -y -qq --no-install-recommends podman mmdebstrap']);
  });

  it('fails loudly when apt-get does not deliver the tool', async () => {
    const bin = pathWithout(['mmdebstrap', 'apt-get']);
    writeFileSync(join(bin, 'apt-get'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(bin, 'apt-get'), 0o755);
    const r = await runScript(bin, ['--deps-only']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('build-image: ERROR: mmdebstrap still missing after apt-get install');
  });

  it('with everything there it installs nothing', async () => {
    const r = await runScript(process.env.PATH ?? '', ['--deps-only']);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toContain('podman and mmdebstrap are installed');
    expect(r.out).not.toContain('installing');
  });
});
