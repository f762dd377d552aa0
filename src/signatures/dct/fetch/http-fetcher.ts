// Online metadata source: a notary server over HTTPS (storage/httpstore.go), with the registry token
// flow docker used (cli/trust/trust.go GetNotaryRepository) and a realm allowlist, so credentials go
// only to hosts somebody configured.
import { Agent, request, type Dispatcher } from 'undici';
import { fail, isTrustgateError } from '../../../errors.js';
import type { MetadataFetcher, MetadataRequest } from '../client.js';
import { BearerAuth, parseBearerChallenge } from '../../../http/bearer-auth.js';
import { UPSTREAM_KEEP_ALIVE_MS } from '../../../http/keep-alive.js';
import { readBodyCapped } from '../../../http/read-capped.js';
import { isValidGun } from '../model/names.js';
import { metadataFileName } from './metadata-path.js';

export interface NotaryHttpOptions {
  /** https://host[:port] of the notary server. */
  url: string;
  /** PEM CA bundle to verify the server with (default: Node's CA store). */
  ca?: string | Buffer | undefined;
  /** Basic credentials for the token realm (never sent to the notary server itself). */
  credentials?: { username: string; password: string } | undefined;
  /** Origins allowed as a token realm. Default: the notary server's own origin. */
  realmAllowlist?: readonly string[] | undefined;
  /** Deadline for one request, headers and body together: slow-retrieval attack. */
  timeoutMs?: number | undefined;
  dispatcher?: Dispatcher | undefined;
}

export class NotaryHttpFetcher implements MetadataFetcher {
  readonly source: string;
  private readonly base: URL;
  private readonly dispatcher: Dispatcher;
  private readonly timeoutMs: number;
  private readonly auth: BearerAuth;

  constructor(private readonly opts: NotaryHttpOptions, now: () => number = Date.now) {
    this.base = new URL(opts.url);
    // docker/cli trust.Server: "valid https URL required for trust server". Metadata is signed, but
    // tokens and credentials are not, and plain HTTP would hand them to anyone on the path.
    if (this.base.protocol !== 'https:') throw fail('USAGE', `valid https URL required for the notary server, got ${opts.url}`);
    for (const o of opts.realmAllowlist ?? []) {
      if (new URL(o).protocol !== 'https:') throw fail('USAGE', `token realm origins must be https, got ${o}`);
    }
    this.source = this.base.host;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    // Idle connections kept for UPSTREAM_KEEP_ALIVE_MS: a new GUN after a quiet moment costs no handshakes.
    this.dispatcher =
      opts.dispatcher ??
      new Agent({ connect: opts.ca ? { ca: opts.ca } : {}, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs, connections: 16, keepAliveTimeout: UPSTREAM_KEEP_ALIVE_MS });
    this.auth = new BearerAuth({
      dispatcher: this.dispatcher,
      realmAllowlist: opts.realmAllowlist ?? [this.base.origin],
      credentials: opts.credentials,
      timeoutMs: this.timeoutMs,
      errorCode: 'NOTARY_UNAUTHORIZED',
      now,
    });
  }

  async close(): Promise<void> {
    if (!this.opts.dispatcher) await this.dispatcher.close();
  }

  async fetch(req: MetadataRequest): Promise<Uint8Array | null> {
    // The GUN becomes part of the URL path: only ever one that matches the reference grammar.
    if (!isValidGun(req.gun)) throw fail('USAGE', `invalid GUN ${JSON.stringify(req.gun.slice(0, 100))}`);
    const path = `${this.base.pathname.replace(/\/$/, '')}/v2/${req.gun}/_trust/tuf/${metadataFileName(req)}`;
    const url = new URL(path, this.base);
    const scope = `repository:${req.gun}:pull`;
    let res = await this.get(url, this.auth.cached(scope));
    if (res.statusCode === 401) {
      const challenge = parseBearerChallenge(res.headers['www-authenticate']);
      await res.body.dump();
      if (!challenge) throw fail('NOTARY_UNAUTHORIZED', `${this.source} asked for authentication without a Bearer challenge`);
      const token = await this.auth.token(challenge, scope);
      res = await this.get(url, token);
      if (res.statusCode === 401) {
        await res.body.dump();
        throw fail('NOTARY_UNAUTHORIZED', `${this.source} refused the token for ${scope}`);
      }
    }
    return this.readResponse(res, req, url.pathname);
  }

  private async get(url: URL, token: string | undefined): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, {
        method: 'GET',
        dispatcher: this.dispatcher,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw networkError(this.source, err);
    }
  }

  private async readResponse(res: Dispatcher.ResponseData, req: MetadataRequest, path: string): Promise<Uint8Array | null> {
    const status = res.statusCode;
    if (status === 404) {
      await res.body.dump();
      return null;
    }
    if (status !== 200) {
      const detail = await readBodyCapped(res.body, 1024, path).then(
        (b) => Buffer.from(b).toString('utf8'),
        () => '',
      );
      throw fail('NOTARY_UNAVAILABLE', `${this.source} answered ${status} for ${path}${detail ? `: ${detail.slice(0, 200)}` : ''}`);
    }
    try {
      return await readBodyCapped(res.body, req.maxBytes, path, res.headers['content-length']);
    } catch (err) {
      if (isTrustgateError(err)) throw err;
      throw networkError(this.source, err);
    }
  }
}

function networkError(host: string, err: unknown): Error {
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || e?.code === 'UND_ERR_HEADERS_TIMEOUT' || e?.code === 'UND_ERR_BODY_TIMEOUT') {
    return fail('TIMEOUT', `${host} did not answer in time`, err);
  }
  return fail('NOTARY_UNAVAILABLE', `error contacting notary server ${host}: ${e?.message ?? String(err)}`, err);
}
