// The registry token flow (distribution docs/spec/auth/token.md), shared by the notary fetcher and
// the upstream registry client: parse a Bearer challenge, fetch a token from its realm — only if the
// realm's origin is allowlisted, so credentials never go to a host nobody configured — and cache it
// per scope until it expires.
import { request, type Dispatcher } from 'undici';
import { fail } from '../errors.js';
import { readBodyCapped } from './read-capped.js';

export interface Challenge {
  realm: string;
  service?: string | undefined;
  scope?: string | undefined;
}

/** RFC 7235 auth-params of a `Bearer` challenge; undefined when there is none. */
export function parseBearerChallenge(header: string | string[] | undefined): Challenge | undefined {
  const h = Array.isArray(header) ? header.find((x) => /^bearer\s/i.test(x)) : header;
  if (!h || !/^bearer\s/i.test(h)) return undefined;
  const params: Record<string, string> = {};
  for (const m of h.slice(6).matchAll(/([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) {
    params[m[1]!.toLowerCase()] = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return params.realm ? { realm: params.realm, service: params.service, scope: params.scope } : undefined;
}

export interface BearerAuthOptions {
  dispatcher: Dispatcher;
  /** Origins allowed as token realm. */
  realmAllowlist: readonly string[];
  credentials?: { username: string; password: string } | undefined;
  timeoutMs: number;
  /** What to call the refusing party in errors: NOTARY_UNAUTHORIZED or UPSTREAM_UNAUTHORIZED. */
  errorCode: 'NOTARY_UNAUTHORIZED' | 'UPSTREAM_UNAUTHORIZED';
  /** The code for a token response that is not what the token spec says (malformed JSON, no token). */
  invalidCode?: 'UPSTREAM_INVALID' | 'NOTARY_UNAVAILABLE';
  /** Credentials may go to an http:// realm only when the operator said `insecure: true`. */
  allowInsecure?: boolean | undefined;
  now?: () => number;
  /** Tokens kept at most (one per repository scope; default 10,000, least recently fetched go first). */
  maxTokens?: number;
}

export class BearerAuth {
  private readonly allow: Set<string>;
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly now: () => number;

  constructor(private readonly opts: BearerAuthOptions) {
    this.allow = new Set(opts.realmAllowlist.map((o) => new URL(o).origin));
    this.now = opts.now ?? Date.now;
  }

  /** A cached, unexpired token for the scope, if any. */
  cached(scope: string): string | undefined {
    const t = this.tokens.get(scope);
    return t && t.expiresAt > this.now() ? t.token : undefined;
  }

  /** Get a token for a challenge; concurrent callers for one scope share one request. */
  async token(ch: Challenge, scope: string): Promise<string> {
    const key = `${ch.realm} ${ch.service ?? ''} ${scope}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(ch, scope).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetchToken(ch: Challenge, scope: string): Promise<string> {
    const code = this.opts.errorCode;
    let realm: URL;
    try {
      realm = new URL(ch.realm);
    } catch {
      throw fail(code, `invalid token realm ${JSON.stringify(ch.realm.slice(0, 100))}`);
    }
    // The realm comes from the server we are talking to; a hostile one could point it anywhere.
    if (!this.allow.has(realm.origin)) {
      throw fail(code, `token realm ${realm.origin} is not in the allowlist (${[...this.allow].join(', ')})`);
    }
    // Basic credentials in clear text are refused unless the operator explicitly allowed it.
    if (this.opts.credentials && realm.protocol !== 'https:' && !this.opts.allowInsecure) {
      throw fail(code, `token realm ${realm.origin} is not https: credentials are not sent in clear text (insecure: true on the upstream allows it)`);
    }
    if (ch.service) realm.searchParams.set('service', ch.service);
    realm.searchParams.set('scope', scope);
    const headers: Record<string, string> = {};
    if (this.opts.credentials) {
      const { username, password } = this.opts.credentials;
      headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(realm, { method: 'GET', dispatcher: this.opts.dispatcher, headers, signal: AbortSignal.timeout(this.opts.timeoutMs) });
    } catch (err) {
      throw fail(code, `token server ${realm.host} could not be reached: ${(err as Error).message}`, err);
    }
    const body = await readBodyCapped(res.body, 64 * 1024, 'token response', res.headers['content-length']);
    if (res.statusCode !== 200) throw fail(code, `token server ${realm.host} answered ${res.statusCode}`);
    // The token server's answer is input: anything but an object with a token is UPSTREAM_INVALID.
    const invalid = this.opts.invalidCode ?? code;
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(Buffer.from(body).toString('utf8'));
    } catch {
      throw fail(invalid, `token server ${realm.host} sent invalid JSON`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail(invalid, `token server ${realm.host} sent no token object`);
    const token = typeof doc.token === 'string' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : undefined;
    if (!token || token.length > 16384 || /[\s\x00-\x1f]/.test(token)) throw fail(invalid, `token server ${realm.host} sent no usable token`);
    // docker floors expires_in at 60 s (distribution registry/client/auth/session.go).
    const ttl = typeof doc.expires_in === 'number' && doc.expires_in > 60 ? doc.expires_in : 60;
    this.tokens.delete(scope);
    this.tokens.set(scope, { token, expiresAt: this.now() + (ttl - 5) * 1000 });
    // One token per repository scope: clients naming endless repositories must not grow this forever.
    const max = this.opts.maxTokens ?? 10_000;
    for (const s of this.tokens.keys()) {
      if (this.tokens.size <= max) break;
      this.tokens.delete(s);
    }
    return token;
  }
}
