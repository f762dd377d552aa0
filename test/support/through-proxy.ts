// What a client sees through a running trustgate, as the integration tests read it: a pull with the real
// skopeo, the digest a HEAD answers, the registry error body of a manifest answer, and the audit lines
// trustgate wrote to its log.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request, type Agent } from 'undici';

const run = promisify(execFile);

export interface PullResult {
  ok: boolean;
  /** skopeo's stdout and stderr, for assertions on why it failed (or, passed to expect, why it did not). */
  out: string;
}

/**
 * skopeo copies `host/repo:tag` (plain http) into an OCI layout under `dir`. Never throws: a refused
 * pull is an expected outcome, told by `ok` and skopeo's output.
 */
export async function skopeoPull(host: string, repo: string, tag: string, dir: string): Promise<PullResult> {
  return run('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/${repo}:${tag}`, `oci:${join(dir, `pulled-${repo.replace(/\//g, '_')}`)}:x`], { timeout: 120_000 }).then(
    (r) => ({ ok: true, out: r.stdout + r.stderr }),
    (e) => ({ ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
  );
}

/** HEAD `base + path` (through `dispatcher` when given): the status and the Docker-Content-Digest answered. */
export async function headDigest(base: string, path: string, dispatcher?: Agent): Promise<{ status: number; digest?: string }> {
  const res = await request(`${base}${path}`, { method: 'HEAD', dispatcher });
  await res.body.dump();
  return { status: res.statusCode, digest: res.headers['docker-content-digest'] as string | undefined };
}

/** The OCI distribution error body trustgate answers a refusal with. */
export interface ErrorBody {
  errors: Array<{ message: string; detail: { code: string } }>;
}

/**
 * GET a manifest through trustgate: the status, and the body read as an error body. A body that is not
 * JSON reads as no errors, so that a test asserting the status first fails on the status it got.
 */
export async function manifestAnswer(proxyUrl: string, repo: string, ref = 'v1'): Promise<{ status: number; body: ErrorBody }> {
  const res = await fetch(`${proxyUrl}/v2/${repo}/manifests/${ref}`);
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as ErrorBody };
  } catch {
    return { status: res.status, body: { errors: [] } };
  }
}

/** Every audit record in a trustgate log (the lines marked "audit":true), parsed, in order (untyped: tests match them field by field). */
export function auditRecords(logFile: string): any[] {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"audit":true'))
    .map((l) => JSON.parse(l));
}

/** Every JSON line of a trustgate log (none while the file does not exist yet), parsed, in order. */
export function logLines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
