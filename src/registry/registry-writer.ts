// The few writes `trustgate resign` makes to a registry (distribution spec "Push"): a blob by
// monolithic upload (POST a session, PUT the bytes with their digest; skipped when HEAD finds the blob)
// and a manifest by reference. The token flow is the registry client's (http/bearer-auth.ts, realm
// allowlist, no credentials in clear text unless `insecure`), with scope `repository:<repo>:pull,push`.
// Everything else the proxy does reads, through registry-client.ts; this class is only ever built for
// a command an operator runs, never for the proxy.
import { Agent, request, type Dispatcher } from 'undici';
import { fail } from '../errors.js';
import { parseBearerChallenge, type BearerAuth } from '../http/bearer-auth.js';
import { readBodyCapped } from '../http/read-capped.js';
import { upstreamAuth, upstreamError, withSystemRoots, type RegistryClientOptions } from './registry-client.js';

/** The registry client's connection options: the same upstream, reached the same way. */
export type RegistryWriterOptions = Pick<RegistryClientOptions, 'registry' | 'ca' | 'credentials' | 'realmAllowlist' | 'insecure' | 'timeoutMs' | 'dispatcher'>;

type Method = 'HEAD' | 'POST' | 'PUT';

export interface PushedManifest {
  /** Docker-Content-Digest as the registry answered it. */
  digest: string | undefined;
  /** OCI-Subject: the registry indexed the subject itself (it has the referrers API). */
  subject: string | undefined;
}

const header = (h: Record<string, string | string[] | undefined>, name: string) => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export class RegistryWriter {
  private readonly base: URL;
  private readonly dispatcher: Dispatcher;
  private readonly auth: BearerAuth;

  constructor(private readonly opts: RegistryWriterOptions) {
    this.base = new URL(opts.registry);
    this.dispatcher = opts.dispatcher ?? new Agent({ connect: opts.ca ? { ca: withSystemRoots(opts.ca) } : {}, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs, connections: 4 });
    this.auth = upstreamAuth(this.dispatcher, this.base, opts);
  }

  async close(): Promise<void> {
    if (!this.opts.dispatcher) await this.dispatcher.close();
  }

  private urlFor(path: string): URL {
    return new URL(this.base.pathname.replace(/\/+$/, '') + path, this.base);
  }

  private async once(url: URL, method: Method, headers: Record<string, string>, body: Buffer | undefined, auth: Record<string, string>) {
    try {
      return await request(url, { method, dispatcher: this.dispatcher, headers: { ...headers, ...auth }, body, signal: AbortSignal.timeout(this.opts.timeoutMs) });
    } catch (err) {
      throw upstreamError(this.base.host, err);
    }
  }

  /** One request with the auth flow. Only ever to the registry's own origin: credentials go nowhere else. */
  private async send(url: URL, method: Method, repo: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Dispatcher.ResponseData> {
    if (url.origin !== this.base.origin) throw fail('UPSTREAM_INVALID', `${this.base.host} sent an upload location on another origin (${url.origin}): not followed`);
    const scope = `repository:${repo}:pull,push`;
    const bearer = (t: string | undefined): Record<string, string> => (t ? { authorization: `Bearer ${t}` } : {});
    let res = await this.once(url, method, headers, body, bearer(this.auth.cached(scope)));
    if (res.statusCode !== 401) return res;
    const challenge = res.headers['www-authenticate'];
    await res.body.dump();
    const ch = parseBearerChallenge(challenge);
    if (ch) {
      res = await this.once(url, method, headers, body, bearer(await this.auth.token(ch, scope)));
    } else if (this.opts.credentials && /^basic/i.test(String(challenge ?? ''))) {
      if (url.protocol !== 'https:' && !this.opts.insecure) throw fail('UPSTREAM_UNAUTHORIZED', `${this.base.host} asks for Basic credentials over plain http: not sent (insecure: true on the upstream allows it)`);
      const { username, password } = this.opts.credentials;
      res = await this.once(url, method, headers, body, { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` });
    } else {
      throw fail('UPSTREAM_UNAUTHORIZED', `${this.base.host} asked for authentication we cannot give (push to ${repo})`);
    }
    if (res.statusCode === 401) {
      await res.body.dump();
      throw fail('UPSTREAM_UNAUTHORIZED', `${this.base.host} refused our credentials for ${scope}`);
    }
    return res;
  }

  private async failed(res: Dispatcher.ResponseData, what: string): Promise<never> {
    const text = Buffer.from(await readBodyCapped(res.body, 4096, what, undefined).catch(() => new Uint8Array())).toString('utf8').slice(0, 300);
    const code = res.statusCode === 403 || res.statusCode === 401 ? 'UPSTREAM_UNAUTHORIZED' : 'UPSTREAM_UNAVAILABLE';
    throw fail(code, `${this.base.host} answered ${res.statusCode} to ${what}${text ? `: ${text}` : ''}`);
  }

  /** Upload `bytes` as the blob `digest` (the caller computed it), unless the registry has it already. */
  async putBlob(repo: string, digest: string, bytes: Buffer): Promise<void> {
    const head = await this.send(this.urlFor(`/v2/${repo}/blobs/${digest}`), 'HEAD', repo);
    await head.body.dump();
    if (head.statusCode === 200) return;
    const start = await this.send(this.urlFor(`/v2/${repo}/blobs/uploads/`), 'POST', repo, { 'content-length': '0' });
    if (start.statusCode !== 202) return this.failed(start, `blob upload start in ${repo}`);
    await start.body.dump();
    const location = header(start.headers, 'location');
    if (!location) throw fail('UPSTREAM_INVALID', `${this.base.host} started an upload in ${repo} without a Location`);
    const url = new URL(location, this.urlFor(`/v2/${repo}/blobs/uploads/`));
    url.searchParams.set('digest', digest);
    const put = await this.send(url, 'PUT', repo, { 'content-type': 'application/octet-stream' }, bytes);
    if (put.statusCode !== 201) return this.failed(put, `blob upload ${digest} in ${repo}`);
    await put.body.dump();
  }

  /** PUT a manifest under `reference` (a tag or its digest). */
  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<PushedManifest> {
    const res = await this.send(this.urlFor(`/v2/${repo}/manifests/${reference}`), 'PUT', repo, { 'content-type': mediaType }, bytes);
    if (res.statusCode !== 201) return this.failed(res, `manifest ${repo}:${reference}`);
    await res.body.dump();
    return { digest: header(res.headers, 'docker-content-digest'), subject: header(res.headers, 'oci-subject') };
  }
}
