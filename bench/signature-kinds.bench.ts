// Warm HEAD and GET by tag under every signature kind (issue 25): one image signed with Docker Content
// Trust (the real notary CLI), cosign (classic tag form) and Notation (JWS), served by one trustgate in
// the default configuration (an audit line per decision, info log, stdout to a file), one repository
// per `require` form; against a bare node:http server answering the same bytes. Interleaved rounds,
// medians, ratios against the bare floor and against the DCT warm path of the same run, and the
// registry's own log says how many upstream requests the warm answers cost. Traffic only to
// 127.0.0.1, every load bounded in time. `npm run bench:kinds` (BENCH_SECONDS, BENCH_ROUNDS).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { cosignSignImage, makeCosignKey } from '../test/support/cosign-sign.js';
import { startRegistry } from '../test/support/docker-registry.js';
import { NotaryCli } from '../test/support/notary-cli.js';
import { startNotary } from '../test/support/notary-server.js';
import { acmeNotation } from '../test/support/notation-sign.js';
import { pushImage } from '../test/support/oci-image.js';
import { makePki } from '../test/support/pki.js';
import { startTrustgate } from '../test/support/trustgate-process.js';
import { startBareProcess } from './lib/bare-server.js';
import { getLoad, headLoad, type LoadResult } from './lib/load.js';
import { printEnv, runBench, writeResults } from './lib/report.js';
import { updateKindsDocs } from './lib/docs-kinds.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 64;
const dir = mkdtempSync(join(tmpdir(), 'trustgate-bench-kinds-'));
const stops: Array<() => Promise<unknown>> = [];

/** The forms the issue names, and the repository each is configured on. */
export const FORMS = [
  { label: 'require: dct', repo: 'k-dct/app', require: 'dct' },
  { label: 'require: cosign', repo: 'k-cosign/app', require: 'cosign' },
  { label: 'require: notation', repo: 'k-notation/app', require: 'notation' },
  { label: 'any-of: [dct, cosign]', repo: 'k-any/app', require: { 'any-of': ['dct', 'cosign'] } },
  { label: 'all-of: [dct, notation]', repo: 'k-all/app', require: { 'all-of': ['dct', 'notation'] } },
] as const;

const fmt = (n: number, d = 0) => n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  printEnv();
  const pki = await makePki(dir);
  const [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  stops.push(() => registry.stop(), () => notary.stop());
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  const cosign = makeCosignKey();
  const notation = acmeNotation(dir);
  let manifestBytes = 0;
  let image: { manifest: Buffer; mediaType: string; digest: string } = { manifest: Buffer.alloc(0), mediaType: '', digest: '' };
  for (const f of FORMS) {
    // The same image bytes in every repository: the bare floor answers exactly these.
    const img = await pushImage(dir, registry.host, f.repo, 'v1', 'bench-kinds');
    image = img;
    manifestBytes = img.manifest.length;
    const gun = `${registry.host}/${f.repo}`;
    await cli.initRepo(gun);
    const file = join(dir, `m-${f.repo.replace('/', '_')}`);
    writeFileSync(file, img.manifest);
    await cli.sign(gun, 'v1', file);
    await cosignSignImage(registry.url, registry.host, f.repo, img.digest, cosign.privateKey);
    await notation.sign(registry.url, f.repo, img);
  }
  const keyFile = join(dir, 'cosign.pub');
  writeFileSync(keyFile, cosign.publicPem);
  // The default configuration; only the upstream and its repositories are set.
  const tg = await startTrustgate(
    dir,
    {
      upstreams: [
        {
          name: 'lab',
          registry: registry.url,
          gun: registry.host,
          notary: { url: notary.url, ca: notary.caFile },
          cosign: { keys: [keyFile] },
          notation: { trustPolicy: notation.trustPolicy, trustStore: notation.trustStore },
          policy: 'enforce',
          repositories: FORMS.map((f) => ({ match: f.repo, policy: 'enforce', require: f.require })),
        },
      ],
      default: 'lab',
    },
    'tg-kinds',
  );
  stops.push(() => tg.stop());
  const bare = await startBareProcess(dir, image.manifest, image.mediaType, image.digest);
  stops.push(() => bare.stop());
  const targets: Array<{ label: string; url: string }> = [{ label: 'bare node:http', url: `${bare.url}/v2/k-dct/app/manifests/v1` }, ...FORMS.map((f) => ({ label: f.label, url: `${tg.url}/v2/${f.repo}/manifests/v1` }))];
  for (const t of targets) {
    const r = await request(t.url, { headers: { accept: image.mediaType } });
    await r.body.dump();
    if (r.statusCode !== 200) throw new Error(`${t.label}: ${r.statusCode}`);
  }

  const rows: Array<{ method: string; target: string; rounds: number[]; upstreamPerRequest?: number } & LoadResult> = [];
  for (const method of ['HEAD', 'GET'] as const) {
    const samples = new Map<string, Array<LoadResult & { upstream: number }>>();
    for (let round = 0; round < ROUNDS; round++) {
      // Each round starts one target later: a target measured right after the bare floor in every round
      // (or last, on a process whose log has grown) would carry that position's bias into its ratio.
      const order = targets.map((_, i) => targets[(i + round * 2) % targets.length]!);
      for (const t of order) {
        const before = registry.allRequests().length;
        const r = method === 'HEAD' ? await headLoad(t.url, CONNECTIONS, SECONDS, { accept: image.mediaType }) : await getLoad(t.url, CONNECTIONS, SECONDS, { accept: image.mediaType });
        await new Promise((res) => setTimeout(res, 300)); // the registry logs a request a moment after it answered
        const upstream = registry.allRequests().length - before;
        samples.set(t.label, [...(samples.get(t.label) ?? []), { ...r, upstream }]);
        console.log(`${method} ${t.label.padEnd(26)} ${fmt(r.rps).padStart(8)} req/s  p50 ${fmt(r.p50, 1)} ms  p99 ${fmt(r.p99, 1)} ms  errors ${r.errors} non2xx ${r.non2xx}  upstream ${upstream}  (round ${round + 1})`);
      }
    }
    for (const [target, rs] of samples) {
      const sum = (k: 'requests' | 'errors' | 'non2xx' | 'upstream') => rs.reduce((a, r) => a + r[k], 0);
      rows.push({
        method,
        target,
        rps: med(rs.map((r) => r.rps)),
        p50: med(rs.map((r) => r.p50)),
        p99: med(rs.map((r) => r.p99)),
        requests: sum('requests'),
        errors: sum('errors'),
        non2xx: sum('non2xx'),
        rounds: rs.map((r) => Math.round(r.rps)),
        ...(target === 'bare node:http' ? {} : { upstreamPerRequest: sum('upstream') / sum('requests') }),
      });
    }
  }
  const results = { seconds: SECONDS, connections: CONNECTIONS, rounds: ROUNDS, manifestBytes, rows };
  console.log(`results: ${writeResults('signature-kinds', results)}`);
  const goals = updateKindsDocs(results);
  for (const g of goals) console.log(`${g.ok ? 'met ' : 'MISSED'} ${g.what}`);
}

runBench(main, stops, dir);
