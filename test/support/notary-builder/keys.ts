// Test keys as notary writes them (tuf/data/keys.go) and the signatures notary's signers make
// (ECDSA r‖s, Ed25519, RSA-PSS salt 32, RSA PKCS#1 v1.5, all over SHA-256). Key IDs come from the
// builder's own canonical encoder, never from src.
import { constants, createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

/** Plain keys; `rsa` signs rsapss, `rsa-pkcs1` rsapkcs1v15, `rsa-1024` rsapss with a too-small modulus. */
export type KeyKind = 'ecdsa' | 'ecdsa-p384' | 'ed25519' | 'rsa' | 'rsa-pkcs1' | 'rsa-1024';

export interface TestKey {
  /** Notary keytype: ecdsa | ed25519 | rsa | ecdsa-x509 | rsa-x509. */
  readonly keytype: string;
  /** keyval.public exactly as written in metadata (base64). */
  readonly public: string;
  /** hex sha256 of canonical {"keytype","keyval":{"private":null,"public"}}. */
  readonly id: string;
  readonly privateKey: KeyObject;
  /** The signature method this key signs with by default. */
  readonly method: string;
  readonly label: string;
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256B64(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('base64');
}

/** tuf/data/keys.go TUFKey.ID. */
export function keyId(keytype: string, publicB64: string): string {
  return sha256Hex(canonicalJson({ keytype, keyval: { private: null, public: publicB64 } }));
}

/** The `keys` entry for a key in root.json or delegations.keys. */
export function keyJson(k: Pick<TestKey, 'keytype' | 'public'>): { keytype: string; keyval: { private: null; public: string } } {
  return { keytype: k.keytype, keyval: { private: null, public: k.public } };
}

/** A key whose ID, type or material is changed on purpose (the private key stays, for signing). */
export function withKey(k: TestKey, over: Partial<Pick<TestKey, 'keytype' | 'public' | 'id' | 'method'>>): TestKey {
  const keytype = over.keytype ?? k.keytype;
  const pub = over.public ?? k.public;
  return { ...k, keytype, public: pub, id: over.id ?? keyId(keytype, pub), method: over.method ?? k.method };
}

const cache = new Map<string, TestKey>();
let fresh = 0;

/**
 * A signing key. With a label the same key comes back for the same (kind, label) within a test file,
 * which keeps RSA generation off the hot path; without one, a new key every call.
 */
export function makeKey(kind: KeyKind, label?: string): TestKey {
  const name = label ?? `fresh-${++fresh}`;
  const cacheKey = `${kind} ${name}`;
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  const k = generate(kind, name);
  cache.set(cacheKey, k);
  return k;
}

function finish(keytype: string, pub: string, privateKey: KeyObject, method: string, label: string): TestKey {
  return { keytype, public: pub, id: keyId(keytype, pub), privateKey, method, label };
}

function generate(kind: KeyKind, label: string): TestKey {
  switch (kind) {
    case 'ed25519': {
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      // keyval.public is the raw 32-byte key: the tail of the 44-byte SPKI.
      const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
      return finish('ed25519', raw.toString('base64'), privateKey, 'eddsa', label);
    }
    case 'ecdsa':
    case 'ecdsa-p384': {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: kind === 'ecdsa' ? 'P-256' : 'P-384' });
      return finish('ecdsa', publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), privateKey, 'ecdsa', label);
    }
    case 'rsa':
    case 'rsa-pkcs1':
    case 'rsa-1024': {
      const { publicKey, privateKey } = rsaPair(kind === 'rsa-1024' ? 1024 : 2048, kind === 'rsa-pkcs1' ? label + ' pkcs1' : label);
      return finish('rsa', publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), privateKey, kind === 'rsa-pkcs1' ? 'rsapkcs1v15' : 'rsapss', label);
    }
  }
}

const rsaPairs = new Map<string, { publicKey: KeyObject; privateKey: KeyObject }>();
/** RSA key pairs are slow to make: one per (bits, label) per test file. */
export function rsaPair(bits: number, label: string): { publicKey: KeyObject; privateKey: KeyObject } {
  const k = `${bits} ${label}`;
  let p = rsaPairs.get(k);
  if (!p) {
    p = generateKeyPairSync('rsa', { modulusLength: bits });
    rsaPairs.set(k, p);
  }
  return p;
}

/** How one signature is made; the defaults are what notary's signers do. */
export interface SignOptions {
  method?: string;
  /** ECDSA only: 'der' makes an ASN.1 signature, which notary refuses. */
  ecdsaEncoding?: 'ieee-p1363' | 'der';
  /** RSA-PSS salt length (notary: 32). */
  saltLength?: number;
  /** Hash for ECDSA/RSA (notary: sha256). */
  hash?: string;
}

/** Raw signature bytes over `msg` as the key's method (or `opts.method`) prescribes. */
export function signBytes(key: TestKey, msg: Uint8Array, opts: SignOptions = {}): Buffer {
  const method = (opts.method ?? key.method).toLowerCase();
  const hash = opts.hash ?? 'sha256';
  switch (method) {
    case 'ecdsa':
      return sign(hash, msg, { key: key.privateKey, dsaEncoding: opts.ecdsaEncoding ?? 'ieee-p1363' });
    case 'eddsa':
      return sign(null, msg, key.privateKey);
    case 'rsapss':
      return sign(hash, msg, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: opts.saltLength ?? 32 });
    case 'rsapkcs1v15':
      return sign(hash, msg, { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING });
    default:
      // Unknown methods still get bytes (made with the key's own method) so a verifier can refuse them.
      return signBytes(key, msg, { ...opts, method: key.method });
  }
}
