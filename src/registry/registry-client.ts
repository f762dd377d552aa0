// Upstream registry client (undici): manifests by digest (bounded, with deadlines), blobs streamed,
// tags listed; the Bearer token flow with a realm allowlist; redirects (registries send blobs to a
// CDN) followed here rather than handed to the client, without our Authorization on another host,
// and only where the redirect policy allows (redirect-policy.ts).
// Three connection pools: blob streams go at the client's pace and can hold a connection for minutes,
// so manifests, tags and tokens have a pool of their own and never queue behind them; signature
// discovery (listings, signature manifests, payloads, envelopes, bundles: artifacts anyone who can push
// may multiply) has a third, so junk signatures slow their own lookups and not every manifest pull.
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import { fail, isTrustgateError } from '../errors.js';
import { BearerAuth, parseBearerChallenge } from '../http/bearer-auth.js';
import { UPSTREAM_KEEP_ALIVE_MS } from '../http/keep-alive.js';
import { readBodyCapped } from '../http/read-capped.js';
import { checkRedirect, guardedLookup, REFUSED_ADDRESS, type RedirectPolicy } from './redirect-policy.js';

export interface RegistryClientOptions {
  /** Upstream base URL, e.g. http://127.0.0.1:5000. */
  registry: string;
  ca?: string | Buffer | undefined;
  credentials?: { username: string; password: string } | undefined;
  realmAllowlist?: readonly string[] | undefined;
  /** Credentials may travel over plain http (registry or token realm): the upstream's `insecure: true`. */
  insecure?: boolean | undefined;
  timeoutMs: number;
  manifestBytes: number;
  dispatcher?: Dispatcher | undefined;
  /** Connections per origin: blob streams, signature discovery, and everything else (manifests, tags, tokens). */
  connections?: { blobs: number; metadata: number; signatures?: number | undefined } | undefined;
  /** Where redirects may lead besides the registry's own host (upstream `redirects:`). */
  redirects?: { allowHosts: readonly string[]; allowPrivate: boolean } | undefined;
  /** trustgate's own listen address: never followed as a redirect target. */
  self?: { host: string; port: number } | undefined;
  /** Resolver for redirect targets (tests). */
  resolve?: RedirectPolicy['resolve'];
  /** A redirect was refused (the audit line). */
  onRedirectRefused?: ((info: { repo: string; path: string; target: string; code: string; reason: string }) => void) | undefined;
  /** Time to response headers per request kind (metrics). */
  onTiming?: ((kind: 'manifest' | 'blob' | 'tags' | 'other', seconds: number) => void) | undefined;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { dump(opts?: { limit: number }): Promise<void> };
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string | undefined;
}

/** Every manifest media type a client may pull; sent when the client's own Accept is missing. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v1+json',
];

const MAX_REDIRECTS = 5;

/**
 * The CA list for a registry with its own `ca`: node's bundled roots plus it. (undici's `ca` replaces
 * the default roots; a redirect to a publicly trusted storage host must still verify.)
 */
export function withSystemRoots(ca: string | Buffer): string[] {
  return [...rootCertificates, typeof ca === 'string' ? ca : ca.toString('utf8')];
}

/** Token auth against an upstream registry, the same for its reading client and `resign`'s writer. */
export function upstreamAuth(dispatcher: Dispatcher, base: URL, opts: Pick<RegistryClientOptions, 'realmAllowlist' | 'credentials' | 'timeoutMs' | 'insecure'>): BearerAuth {
  return new BearerAuth({
    dispatcher,
    realmAllowlist: opts.realmAllowlist ?? [base.origin],
    credentials: opts.credentials,
    timeoutMs: opts.timeoutMs,
    errorCode: 'UPSTREAM_UNAUTHORIZED',
    invalidCode: 'UPSTREAM_INVALID',
    allowInsecure: opts.insecure,
  });
}

export class RegistryClient {
  private readonly base: URL;
  private readonly dispatcher: Dispatcher;
  private readonly blobDispatcher: Dispatcher;
  private readonly signatureDispatcher: Dispatcher;
  private readonly auth: BearerAuth;
  private readonly redirectPolicy: RedirectPolicy;

  constructor(private readonly opts: RegistryClientOptions) {
    this.base = new URL(opts.registry);
    // A registry `ca` is added to the system roots, not put in their place: redirects lead to storage
    // hosts (S3, a CDN) with publicly trusted certificates.
    const ca = opts.ca ? { ca: withSystemRoots(opts.ca) } : {};
    // Host names the operator configured may resolve anywhere; any other (a redirect target) is
    // checked again at connect time against the addresses it resolves to then (DNS rebinding).
    const trusted = new Set([this.base.hostname, ...(opts.realmAllowlist ?? []).map((o) => new URL(o).hostname), ...(opts.redirects?.allowHosts ?? []).map((h) => h.replace(/:\d+$/, ''))]);
    const connect = opts.redirects?.allowPrivate ? ca : { ...ca, lookup: guardedLookup((h) => trusted.has(h)) };
    const pool = (connections: number) =>
      new Agent({ connect, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs, connections, pipelining: 1, keepAliveTimeout: UPSTREAM_KEEP_ALIVE_MS });
    this.dispatcher = opts.dispatcher ?? pool(opts.connections?.metadata ?? 32);
    this.blobDispatcher = opts.dispatcher ?? pool(opts.connections?.blobs ?? 64);
    this.signatureDispatcher = opts.dispatcher ?? pool(opts.connections?.signatures ?? 8);
    this.redirectPolicy = {
      registry: this.base,
      allowHosts: opts.redirects?.allowHosts ?? [],
      allowPrivate: opts.redirects?.allowPrivate ?? false,
      self: opts.self,
      resolve: opts.resolve,
    };
    this.auth = upstreamAuth(this.dispatcher, this.base, opts);
  }

  get origin(): string {
    return this.base.origin;
  }

  async close(): Promise<void> {
    if (!this.opts.dispatcher) await Promise.all([this.dispatcher.close(), this.blobDispatcher.close(), this.signatureDispatcher.close()]);
  }

  /** A path under the registry URL: a path prefix in it (a registry served under /prefix) is kept. */
  private urlFor(path: string): URL {
    return new URL(this.base.pathname.replace(/\/+$/, '') + path, this.base);
  }

  /**
   * One request to the upstream with its auth flow; redirects to other URLs are followed, and the
   * Authorization header is only ever sent to the registry's own origin.
   */
  async send(
    path: string,
    init: {
      method: 'GET' | 'HEAD';
      repo: string;
      headers?: Record<string, string>;
      signal?: AbortSignal | undefined;
      /** A blob relay: read from the socket in 1 MiB steps (measured: +20% throughput, bench/). */
      stream?: boolean;
      /** Signature discovery: the signature pool (token requests still use the metadata pool). */
      pool?: 'signatures' | undefined;
    },
  ): Promise<UpstreamResponse> {
    const scope = `repository:${init.repo}:pull`;
    let url = this.urlFor(path);
    let res = await this.once(url, init, this.authHeader(url, this.auth.cached(scope)));
    if (res.statusCode === 401) {
      const ch = parseBearerChallenge(res.headers['www-authenticate']);
      await res.body.dump();
      if (ch) {
        const token = await this.auth.token(ch, scope);
        res = await this.once(url, init, this.authHeader(url, token));
      } else if (this.opts.credentials && /^basic/i.test(String(res.headers['www-authenticate'] ?? ''))) {
        if (url.protocol !== 'https:' && !this.opts.insecure) {
          throw fail('UPSTREAM_UNAUTHORIZED', `${this.base.host} asks for Basic credentials over plain http: not sent (insecure: true on the upstream allows it)`);
        }
        const { username, password } = this.opts.credentials;
        res = await this.once(url, init, { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` });
      } else {
        throw fail('UPSTREAM_UNAUTHORIZED', `${this.base.host} asked for authentication we cannot give`);
      }
      if (res.statusCode === 401) {
        await res.body.dump();
        throw fail('UPSTREAM_UNAUTHORIZED', `${this.base.host} refused our credentials for ${scope}`);
      }
    }
    for (let hop = 0; [301, 302, 303, 307, 308].includes(res.statusCode); hop++) {
      const location = res.headers.location;
      await res.body.dump();
      let next: URL | undefined;
      try {
        if (hop >= MAX_REDIRECTS || typeof location !== 'string') throw fail('UPSTREAM_INVALID', `${this.base.host}: too many or bad redirects for ${path}`);
        next = new URL(location, url);
        await checkRedirect(url, next, this.redirectPolicy);
      } catch (err) {
        const e = isTrustgateError(err) ? err : fail('UPSTREAM_INVALID', `${this.base.host} sent an invalid redirect for ${path}`, err);
        this.opts.onRedirectRefused?.({ repo: init.repo, path, target: next ? `${next.protocol}//${next.host}` : String(location).slice(0, 200), code: e.code, reason: e.message });
        throw e;
      }
      url = next;
      res = await this.once(url, init, this.authHeader(url, this.auth.cached(scope)));
    }
    return res;
  }

  private authHeader(url: URL, token: string | undefined): Record<string, string> {
    return token && url.origin === this.base.origin ? { authorization: `Bearer ${token}` } : {};
  }

  private async once(
    url: URL,
    init: { method: 'GET' | 'HEAD'; headers?: Record<string, string>; signal?: AbortSignal | undefined; stream?: boolean; pool?: 'signatures' | undefined },
    auth: Record<string, string>,
  ): Promise<UpstreamResponse> {
    const t0 = performance.now();
    try {
      const res = await request(url, {
        method: init.method,
        dispatcher: init.stream ? this.blobDispatcher : init.pool === 'signatures' ? this.signatureDispatcher : this.dispatcher,
        headers: { ...init.headers, ...auth },
        signal: init.signal,
        ...(init.stream ? { highWaterMark: 1 << 20 } : {}),
      });
      if (this.opts.onTiming) {
        const p = url.pathname;
        this.opts.onTiming(p.includes('/manifests/') ? 'manifest' : p.includes('/blobs/') ? 'blob' : p.endsWith('/tags/list') ? 'tags' : 'other', (performance.now() - t0) / 1000);
      }
      return res as unknown as UpstreamResponse;
    } catch (err) {
      throw upstreamError(this.base.host, err);
    }
  }

  /**
   * GET a manifest by digest with a size cap and a deadline for the whole body: an endless or trickling
   * upstream fails this request quickly with bounded memory.
   */
  async fetchManifest(repo: string, digest: string, accept: readonly string[], maxBytes = this.opts.manifestBytes, opts: { pool?: 'signatures' | undefined } = {}): Promise<FetchedManifest | null> {
    const signal = AbortSignal.timeout(this.opts.timeoutMs);
    const res = await this.send(`/v2/${repo}/manifests/${digest}`, { method: 'GET', repo, headers: { accept: accept.join(', ') }, signal, pool: opts.pool });
    if (res.statusCode === 404) {
      await res.body.dump();
      return null;
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => {});
      throw fail('UPSTREAM_UNAVAILABLE', `${this.base.host} answered ${res.statusCode} for manifest ${repo}@${digest}`);
    }
    try {
      const bytes = Buffer.from(await readBodyCapped(res.body, maxBytes, `manifest ${repo}@${digest}`, res.headers['content-length']));
      const ct = res.headers['content-type'];
      return { bytes, mediaType: typeof ct === 'string' ? ct.split(';')[0]!.trim() : undefined };
    } catch (err) {
      if ((err as { code?: string }).code === 'TOO_LARGE') throw fail('MANIFEST_TOO_LARGE', (err as Error).message, err);
      throw upstreamError(this.base.host, err);
    }
  }
}

export function upstreamError(host: string, err: unknown): Error {
  const e = err as { name?: string; code?: string; message?: string };
  if (isTrustgateError(err)) return err;
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  if (e?.code === REFUSED_ADDRESS || cause?.code === REFUSED_ADDRESS) return fail('UPSTREAM_INVALID', `${host}: ${e?.code === REFUSED_ADDRESS ? e.message : cause?.message}`, err);
  if (e?.name === 'TimeoutError' || e?.code === 'UND_ERR_HEADERS_TIMEOUT' || e?.code === 'UND_ERR_BODY_TIMEOUT' || e?.name === 'AbortError') {
    return fail('UPSTREAM_TIMEOUT', `${host} did not answer in time`, err);
  }
  return fail('UPSTREAM_UNAVAILABLE', `error contacting upstream ${host}: ${e?.message ?? String(err)}`, err);
}
