// BearerAuth with a real node:http token server on 127.0.0.1: credentials never go to a plain-http
// realm unless the upstream says insecure: true, and a token answer that is not a token is
// UPSTREAM_INVALID (the invalidCode), not a crash.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BearerAuth } from '../../../src/http/bearer-auth.js';

let server: Server;
let origin: string;
let answer = '{"token":"t-1","expires_in":300}';
const seen: IncomingHttpHeaders[] = [];
const dispatcher = new Agent();

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.close();
  await dispatcher.close();
});

const auth = (allowInsecure: boolean) =>
  new BearerAuth({ dispatcher, realmAllowlist: [origin], credentials: { username: 'u', password: 'p' }, timeoutMs: 2000, errorCode: 'UPSTREAM_UNAUTHORIZED', invalidCode: 'UPSTREAM_INVALID', allowInsecure });

describe('BearerAuth', () => {
  it('refuses to send Basic credentials to an http realm without insecure: true, and sends nothing', async () => {
    seen.length = 0;
    await expect(auth(false).token({ realm: `${origin}/token` }, 'repository:a:pull')).rejects.toMatchObject({ code: 'UPSTREAM_UNAUTHORIZED', message: expect.stringContaining('not sent in clear text') });
    expect(seen).toHaveLength(0);
  });

  it('sends them with insecure: true', async () => {
    seen.length = 0;
    answer = '{"token":"t-1","expires_in":300}';
    await expect(auth(true).token({ realm: `${origin}/token` }, 'repository:a:pull')).resolves.toBe('t-1');
    expect(seen[0]?.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
  });

  it.each([['not JSON', '<html>'], ['an array', '["t"]'], ['no token', '{"expires_in":5}'], ['a token with a newline', '{"token":"a\\nb"}'], ['null', 'null']])('%s → UPSTREAM_INVALID', async (_what, body) => {
    answer = body;
    await expect(auth(true).token({ realm: `${origin}/token` }, `repository:${_what.length}:pull`)).rejects.toMatchObject({ code: 'UPSTREAM_INVALID' });
  });

  it('keeps at most maxTokens tokens, least recently fetched first (one per repository scope)', async () => {
    answer = '{"token":"t-1","expires_in":300}';
    const a = new BearerAuth({ dispatcher, realmAllowlist: [origin], timeoutMs: 2000, errorCode: 'UPSTREAM_UNAUTHORIZED', maxTokens: 3 });
    for (const r of ['a', 'b', 'c', 'd']) await a.token({ realm: `${origin}/token` }, `repository:${r}:pull`);
    expect(a.cached('repository:a:pull')).toBeUndefined();
    for (const r of ['b', 'c', 'd']) expect(a.cached(`repository:${r}:pull`)).toBe('t-1');
  });
});
