// Signed mock Notary v1 repositories for unit tests (NOTARY.md; STYLE.md "Tests").
//
//   const repo = buildRepo({ gun, now, tags: { v1: manifestBytes }, delegations: [{ name: 'targets/releases', tags }] });
//   repo.files                          // Map: root.json, 1.root.json, timestamp.json, snapshot.json, targets.json, targets/releases.json
//   repo.resign('targets', (s) => …).relink()    // change, re-sign, re-hash snapshot + timestamp
//   repo.tamper('targets', (s) => …)             // change without re-signing
//   repo.rotateRoot([newKey], { signWithOld: true, signWithNew: true })
//   repoFetcher(repo)                   // MetadataFetcher for TrustClient
//
// Signatures are made over the builder's own canonical JSON (canonical-json.ts), independent of
// src/signatures/dct, so an encoder bug in src cannot cancel itself out.
export { canonicalJson, utf8Order, wireJson, type Json, type WireOptions } from './canonical-json.js';
export { keyId, keyJson, makeKey, sha256B64, sha256Hex, signBytes, withKey, type KeyKind, type SignOptions, type TestKey } from './keys.js';
export { canonicalKeyIdOf, makeCa, makeCertKey, pemOf, withPem, DEFAULT_NOT_AFTER, DEFAULT_NOT_BEFORE, type CertKey, type CertOptions } from './x509.js';
export {
  buildRepo,
  digestOf,
  fileMeta,
  fileOf,
  signaturesFor,
  toDate,
  DEFAULT_NOW,
  Repo,
  type BuildOptions,
  type DelegationOptions,
  type EnvelopeJson,
  type RoleOptions,
  type Signed,
  type Signer,
  type TargetValue,
} from './repo.js';
export { fileForRequest, MemoryFetcher, readFiles, repoFetcher, type MemoryFetcherOptions } from './memory-fetcher.js';
