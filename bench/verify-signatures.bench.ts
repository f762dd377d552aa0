// Which library verifies notary's signatures: node:crypto (OpenSSL) or @noble/*? Verifications per
// second for each key type notary produces, on fixed inputs, in one run. The figure decides
// src/signatures/dct/verify/signatures.ts and is recorded in docs/benchmarks.md ("Dependency choices (measured)").
import { constants, createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { p256 } from '@noble/curves/nist.js';
import { sha256 as nobleSha256, sha512 } from '@noble/hashes/sha2.js';
import { opsPerSecond, printEnv, writeResults } from './lib/report.js';

ed.hashes.sha512 = sha512;
const MS = Number(process.env.BENCH_MS ?? 1000);
// A typical targets.json signed payload is ~1 KiB canonical JSON.
const msg = Buffer.from(JSON.stringify({ _type: 'Targets', targets: { latest: { hashes: { sha256: 'x'.repeat(44) }, length: 529 } } }).repeat(8));

const edKeys = generateKeyPairSync('ed25519');
const edSig = sign(null, msg, edKeys.privateKey);
const edRaw = edKeys.publicKey.export({ format: 'jwk' }).x!;
const edPub = Buffer.from(edRaw, 'base64url');

const ecKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ecSig = sign('sha256', msg, { key: ecKeys.privateKey, dsaEncoding: 'ieee-p1363' });
const ecPubRaw = ecKeys.publicKey.export({ format: 'der', type: 'spki' }).subarray(-65);
const msgHash = createHash('sha256').update(msg).digest();

const rsaKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
const rsaSig = sign('sha256', msg, { key: rsaKeys.privateKey, ...pss });

const rows: Array<{ op: string; lib: string; opsPerSec: number }> = [];
const run = (op: string, lib: string, fn: () => boolean) => {
  if (!fn()) throw new Error(`${op} ${lib}: verification failed`);
  rows.push({ op, lib, opsPerSec: Math.round(opsPerSecond(fn, MS)) });
};

printEnv();
run('ed25519 verify (eddsa)', 'node:crypto', () => verify(null, msg, edKeys.publicKey, edSig));
run('ed25519 verify (eddsa)', '@noble/ed25519', () => ed.verify(edSig, msg, edPub));
run('ecdsa P-256 verify', 'node:crypto', () => verify('sha256', msg, { key: ecKeys.publicKey, dsaEncoding: 'ieee-p1363' }, ecSig));
run('ecdsa P-256 verify', '@noble/curves', () => p256.verify(ecSig, msgHash, ecPubRaw, { prehash: false }));
run('rsapss 2048 verify', 'node:crypto', () => verify('sha256', msg, { key: rsaKeys.publicKey, ...pss }, rsaSig));
run('sha256 of 1 KiB', 'node:crypto', () => createHash('sha256').update(msg).digest().length === 32);
run('sha256 of 1 KiB', '@noble/hashes', () => nobleSha256(msg).length === 32);

console.log('| operation | library | verifications/s | ratio to node:crypto |');
console.log('|---|---|---:|---:|');
for (const r of rows) {
  const base = rows.find((x) => x.op === r.op && x.lib === 'node:crypto')!.opsPerSec;
  console.log(`| ${r.op} | ${r.lib} | ${r.opsPerSec.toLocaleString('en')} | ${(r.opsPerSec / base).toFixed(2)} |`);
}
console.log(writeResults('verify-signatures', { rows }));
