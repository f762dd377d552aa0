// What reading certificates and RFC 3161 tokens with @sigstore/core costs against the hand-written DER
// reader it replaced (issue 25 point 7). Pure, no I/O after loading: one op parses and checks a code
// signing chain (certInfo of each certificate + chainProblems), or verifies a timestamp token
// (verifyTimestampToken: CMS structure, signature, signing-certificate-v2, the TSA chain and its
// requirements). Fresh X509Certificate objects every op, so CertInfo's memo does not hide the parse.
// Inputs are notation-go's own vectors (test/fixtures/notation-go): the x5c of ca_valid_sig_env.json
// (leaf and root) and the token of timestamp/jwsWithTimestamp.sig (GlobalSign TSA, chain of three).
//
//   NOTATION_BASELINE=/path/to/a/checkout/of/main npx tsx bench/notation-parse.bench.ts
//
// measures that checkout's Notation code beside this one's, in the same process, rounds interleaved.
import { X509Certificate } from 'node:crypto';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median, opsPerSecond, printEnv, writeResults } from './lib/report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIX = join(ROOT, 'test/fixtures/notation-go/timestamp');
const signed = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/notation-go/ca_valid_sig_env.json'), 'utf8')) as { header: { x5c: string[] } };
const chainDer = signed.header.x5c.map((c) => Buffer.from(c, 'base64'));
const env = JSON.parse(readFileSync(join(FIX, 'jwsWithTimestamp.sig'), 'utf8')) as { signature: string; header: { 'io.cncf.notary.timestampSignature': string } };
const token = Buffer.from(env.header['io.cncf.notary.timestampSignature'], 'base64');
const signature = Buffer.from(env.signature, 'base64url');
const tsaDir = join(FIX, 'truststore/x509/tsa/test-timestamp');
const tsaDer = readdirSync(tsaDir).map((f) => new X509Certificate(readFileSync(join(tsaDir, f))).raw);

interface Impl {
  name: string;
  chain: () => unknown;
  timestamp: () => unknown;
}

async function load(name: string, root: string): Promise<Impl> {
  // src/signatures/notation since issue 25 moved the adapters under the port; src/notation in older checkouts.
  const dir = existsSync(join(root, 'src/signatures/notation')) ? 'src/signatures/notation' : 'src/notation';
  const src = (m: string) => pathToFileURL(join(root, dir, m)).href;
  const { chainProblems } = (await import(src('cert-requirements.ts'))) as typeof import('../src/signatures/notation/cert-requirements.js');
  const { certInfo } = (await import(src('x509.ts'))) as typeof import('../src/signatures/notation/x509.js');
  const { verifyTimestampToken } = (await import(src('timestamp.ts'))) as typeof import('../src/signatures/notation/timestamp.js');
  const chain = () => {
    const certs = chainDer.map((d) => new X509Certificate(d));
    certs.forEach(certInfo);
    return chainProblems(certs, 'codeSigning');
  };
  const timestamp = () => verifyTimestampToken(token, signature, tsaDer.map((d) => new X509Certificate(d)));
  // Same answers from both, or the figures compare different work.
  const problems = chain() as string[];
  const ts = timestamp() as { genTime?: Date; problem?: string };
  if (!ts.genTime) throw new Error(`${name}: the vector's timestamp does not verify: ${ts.problem}`);
  console.log(`${name}: chain problems ${JSON.stringify(problems)}; genTime ${ts.genTime.toISOString()}`);
  return { name, chain, timestamp };
}

async function main(): Promise<void> {
  printEnv();
  const impls = [await load('after (@sigstore/core ASN1Obj)', ROOT)];
  const baseline = process.env.NOTATION_BASELINE;
  if (baseline) impls.unshift(await load('before (hand-written der.ts)', baseline));
  const rounds = 3;
  const figures = new Map<string, { chain: number[]; timestamp: number[] }>(impls.map((i) => [i.name, { chain: [], timestamp: [] }]));
  for (let r = 0; r < rounds; r++) {
    for (const i of impls) {
      figures.get(i.name)!.chain.push(opsPerSecond(i.chain, 1000));
      figures.get(i.name)!.timestamp.push(opsPerSecond(i.timestamp, 1000));
    }
  }
  const rows = impls.map((i) => ({ impl: i.name, chainOpsPerSec: Math.round(median(figures.get(i.name)!.chain)), timestampOpsPerSec: Math.round(median(figures.get(i.name)!.timestamp)) }));
  console.log(`\n${'implementation'.padEnd(34)} ${`chain (${chainDer.length} certs) ops/s`.padStart(22)} ${'timestamp token ops/s'.padStart(22)}`);
  for (const row of rows) console.log(`${row.impl.padEnd(34)} ${String(row.chainOpsPerSec).padStart(22)} ${String(row.timestampOpsPerSec).padStart(22)}`);
  if (rows.length === 2) console.log(`${'after / before'.padEnd(34)} ${(rows[1]!.chainOpsPerSec / rows[0]!.chainOpsPerSec).toFixed(2).padStart(22)} ${(rows[1]!.timestampOpsPerSec / rows[0]!.timestampOpsPerSec).toFixed(2).padStart(22)}`);
  console.log(`results: ${writeResults('notation-parse', { rounds, msPerRound: 1000, chainCertificates: chainDer.length, rows })}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
