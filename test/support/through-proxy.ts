// What a client sees through a running trustgate, as the integration tests read it: a pull with the real
// skopeo, the digest a HEAD answers, the registry error body of a manifest answer, and the audit lines
// trustgate wrote to its log.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request, type Agent } from 'undici';
import { expect } from 'vitest';

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

/**
 * The `reason` of the latest refusal audited for `repo`:`ref` (issue 27: a refusal tells the client what
 * it asked for and the rule; the verifier's detail is the audit line's). Waits for the line to be written.
 */
export async function refusalReason(logFile: string, repo: string, ref = 'v1'): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const line = auditRecords(logFile).filter((l) => l.repo === repo && l.ref === ref && l.decision === 'deny').pop();
    if (line || Date.now() > deadline) return String(line?.reason ?? '');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A refusal as a client sees it: skopeo's pull fails, and a GET of the manifest answers 403 with the
 * trustgate error `code`, a message naming the image asked for. Returns the refusal's audited reason,
 * for the test to check the rule it names.
 */
export async function expectRefused(proxy: { host: string; url: string; logFile: string }, repo: string, dir: string, code: string): Promise<string> {
  const r = await skopeoPull(proxy.host, repo, 'v1', dir);
  expect(r.ok, r.out).toBe(false);
  const { status, body } = await manifestAnswer(proxy.url, repo);
  expect(status).toBe(403);
  expect(body.errors[0]!.detail.code).toBe(code);
  expect(body.errors[0]!.message).toContain(`${repo}:v1`);
  return refusalReason(proxy.logFile, repo);
}

/** A tag served by its verified digest, byte for byte, with the proof named in X-Trustgate-Verified-By. */
export async function expectServedWithProof(proxyUrl: string, repo: string, image: { digest: string; manifest: Buffer; mediaType: string }, verifiedBy: RegExp): Promise<void> {
  const res = await fetch(`${proxyUrl}/v2/${repo}/manifests/v1`, { headers: { accept: image.mediaType } });
  expect(res.status).toBe(200);
  expect(res.headers.get('docker-content-digest')).toBe(image.digest);
  expect(Buffer.from(await res.arrayBuffer()).equals(image.manifest)).toBe(true);
  expect(res.headers.get('x-trustgate-verified-by')).toMatch(verifiedBy);
}
