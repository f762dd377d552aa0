// Request and decision counts are kept in plain cells and handed to prom-client when scraped: every
// scrape shows every count so far, none lost and none added twice.
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/observe/metrics.js';

function value(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('Metrics counters', () => {
  it('shows every request and decision counted so far, on every scrape', async () => {
    const m = new Metrics(false);
    expect(value(await m.registry.metrics(), 'trustgate_http_requests_total', 'route="manifest",method="HEAD",status="200"')).toBeUndefined();
    for (let i = 0; i < 5; i++) m.request('manifest', 'HEAD', 200);
    m.request('manifest', 'GET', 403);
    m.request('blob', 'GET', '200');
    for (let i = 0; i < 3; i++) m.decision('lab', 'allow', 'OK');
    m.decision('lab', 'deny', 'TAG_NOT_SIGNED');
    let text = await m.registry.metrics();
    expect(value(text, 'trustgate_http_requests_total', 'route="manifest",method="HEAD",status="200"')).toBe(5);
    expect(value(text, 'trustgate_http_requests_total', 'route="manifest",method="GET",status="403"')).toBe(1);
    expect(value(text, 'trustgate_http_requests_total', 'route="blob",method="GET",status="200"')).toBe(1);
    expect(value(text, 'trustgate_trust_decisions_total', 'upstream="lab",decision="allow",code="OK"')).toBe(3);
    expect(value(text, 'trustgate_trust_decisions_total', 'upstream="lab",decision="deny",code="TAG_NOT_SIGNED"')).toBe(1);
    // A second scrape with nothing new shows the same totals (not doubled); new counts add up.
    expect(await m.registry.metrics()).toBe(text);
    m.request('manifest', 'HEAD', 200);
    m.decision('lab', 'allow', 'OK');
    text = await m.registry.metrics();
    expect(value(text, 'trustgate_http_requests_total', 'route="manifest",method="HEAD",status="200"')).toBe(6);
    expect(value(text, 'trustgate_trust_decisions_total', 'upstream="lab",decision="allow",code="OK"')).toBe(4);
    // The counter read directly (not through the registry) is brought up to date too.
    m.request('manifest', 'HEAD', 200);
    const direct = await m.requests.get();
    expect(direct.values.find((v) => v.labels.route === 'manifest' && v.labels.method === 'HEAD')?.value).toBe(7);
  });
});
