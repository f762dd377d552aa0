// The rule for children of a signed index under `digestPulls: signed` (policy/covered-children.ts),
// through decideDigest as handleDigest calls it: index parsing with caps, and a child covered only by a
// parent index that lists it and is covered now, as every kind of the requirement combines.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fail } from '../../../src/errors.js';
import { decideDigest, satisfyDigest, type DecidePorts } from '../../../src/policy/decide.js';
import { coverChild, indexChildren, MAX_INDEX_CHILDREN, MAX_PARENTS_TRIED, type CoverPorts } from '../../../src/policy/covered-children.js';
import type { EffectivePolicy } from '../../../src/policy/effective.js';
import type { DigestKind, SignatureKind } from '../../../src/policy/vocabulary.js';
import type { Descriptor } from '../../../src/signatures/port.js';

type M = { bytes: Buffer; mediaType: string };
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const caps = { maxBytes: 4096, maxChildren: 4 };

const child = (n: number): M => ({ bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, n })), mediaType: OCI_MANIFEST });
const indexOf = (children: readonly string[], mediaType = OCI_INDEX, extra: object = {}): M => ({
  bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests: children.map((digest) => ({ mediaType: OCI_MANIFEST, digest, size: 100 })), ...extra })),
  mediaType,
});

const A = child(1);
const B = child(2);
const STRAY = child(3);
const dA = digestOf(A.bytes);
const dB = digestOf(B.bytes);
const dStray = digestOf(STRAY.bytes);

describe('indexChildren: an index parsed with caps, all or nothing', () => {
  it('reads the manifests an OCI index or a Docker manifest list lists', () => {
    expect(indexChildren(indexOf([dA, dB]), caps)).toEqual([dA, dB]);
    expect(indexChildren(indexOf([dA], DOCKER_LIST), caps)).toEqual([dA]);
    // An OCI index may leave out its mediaType; the served type says what it is.
    const bare = { bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ digest: dA, size: 1 }] })), mediaType: OCI_INDEX };
    expect(indexChildren(bare, caps)).toEqual([dA]);
  });

  it.each<[string, M]>([
    ['an image manifest', A],
    ['bytes that are not JSON', { bytes: Buffer.from('{"schemaVersion":2,"manifests":['), mediaType: OCI_INDEX }],
    ['JSON that is not an object', { bytes: Buffer.from('[1,2]'), mediaType: OCI_INDEX }],
    ['no schemaVersion 2', { bytes: Buffer.from(JSON.stringify({ manifests: [{ digest: dA }] })), mediaType: OCI_INDEX }],
    ['manifests that are not an array', { bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: { digest: dA } })), mediaType: OCI_INDEX }],
    ['an entry without a digest', indexOf([dA, undefined as unknown as string])],
    ['an entry whose digest is not sha256 hex', indexOf([dA, 'sha256:ABC'])],
    ['an entry that is not an object', { bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [dA] })), mediaType: OCI_INDEX }],
    ['more entries than the cap', indexOf([dA, dB, dStray, dA, dB])],
    ['more bytes than the cap', indexOf([dA], OCI_INDEX, { annotations: { pad: 'x'.repeat(caps.maxBytes) } })],
    ['bytes that say they are an image manifest, served as an index', { bytes: indexOf([dA], OCI_MANIFEST).bytes, mediaType: OCI_INDEX }],
  ])('reads nothing from %s', (_n, m) => {
    expect(indexChildren(m, caps)).toBeUndefined();
  });

  it('caps the real parse at MAX_INDEX_CHILDREN entries', () => {
    const many = Array.from({ length: MAX_INDEX_CHILDREN + 1 }, () => dA);
    expect(indexChildren(indexOf(many), { maxBytes: 1 << 24, maxChildren: MAX_INDEX_CHILDREN })).toBeUndefined();
    expect(indexChildren(indexOf(many.slice(1)), { maxBytes: 1 << 24, maxChildren: MAX_INDEX_CHILDREN })).toHaveLength(MAX_INDEX_CHILDREN);
  });
});

/** A world: manifests by digest, DCT's signed digests, and per kind the digests it proves. */
interface World {
  manifests: Map<string, M>;
  dctSigned: Set<string>;
  proven: Partial<Record<DigestKind, Set<string>>>;
  /** Candidate parents the caller found (what was served, or a scan). */
  parents: string[];
}

function worldOf(parents: Record<string, M>, opts: { dct?: string[]; cosign?: string[]; notation?: string[] } = {}): World {
  const manifests = new Map<string, M>([[dA, A], [dB, B], [dStray, STRAY]]);
  for (const m of Object.values(parents)) manifests.set(digestOf(m.bytes), m);
  return {
    manifests,
    dctSigned: new Set(opts.dct ?? []),
    proven: { cosign: new Set(opts.cosign ?? []), notation: new Set(opts.notation ?? []) },
    parents: Object.values(parents).map((m) => digestOf(m.bytes)),
  };
}

const proved: Descriptor[] = [];
function portsOf(w: World): DecidePorts<M> {
  return {
    dct: {
      resolve: async () => Promise.reject(fail('TAG_NOT_SIGNED', 'unused')),
      signedTagForDigest: async (d) => (w.dctSigned.has(d) ? { tag: 'v1', role: 'targets' } : undefined),
      label: (t) => `dct ${t.role}`,
    },
    prove: async (kind, d) => {
      proved.push(d);
      if (w.proven[kind]?.has(d.digest)) return { kind, by: `${kind} key k1` };
      throw fail(kind === 'cosign' ? 'COSIGN_UNSIGNED' : 'NOTATION_UNSIGNED', `no ${kind} signature of ${d.digest}`);
    },
    bySignedDigest: async () => Promise.reject(new Error('unused')),
    byTag: async () => Promise.reject(new Error('unused')),
    keep: () => undefined,
    missingSource: () => undefined,
  };
}

const effOf = (mode: 'any-of' | 'all-of', of: SignatureKind[]): EffectivePolicy => ({ policy: 'enforce', require: { mode, of, label: `${mode}: [${of.join(', ')}]` }, digestPulls: 'signed' });

async function decideChild(w: World, eff: EffectivePolicy, digest = dA) {
  const ports = portsOf(w);
  const cover: CoverPorts<M> = {
    load: async (p) => w.manifests.get(p) ?? Promise.reject(fail('MANIFEST_UNKNOWN', `no ${p}`)),
    covered: (p, m, r) => satisfyDigest(ports, eff, 'reg/app', m, p, r),
    caps,
  };
  return decideDigest(
    { upstream: 'lab', gun: 'reg/app', repo: 'app', tag: digest, digest, load: async () => ({ m: w.manifests.get(digest)!, stale: false }), coveredBy: (r) => coverChild(digest, w.parents, cover, r) },
    eff,
    ports,
  );
}

describe('a child digest under digestPulls: signed', () => {
  const signedIndex = indexOf([dA, dB]);
  const dSigned = digestOf(signedIndex.bytes);

  it('is served when a DCT-signed index lists it, naming the index and what covered it', async () => {
    const d = await decideChild(worldOf({ signedIndex }, { dct: [dSigned] }), effOf('any-of', ['dct']));
    expect(d.outcome).toBe('serve');
    expect(d.audit).toMatchObject({ decision: 'allow', satisfiedBy: `index ${dSigned} (dct targets tag v1)`, digest: dA });
  });

  it('is refused DIGEST_NOT_SIGNED when only an unsigned index lists it', async () => {
    const unsigned = indexOf([dA, dStray]);
    const d = await decideChild(worldOf({ unsigned }, { dct: [dSigned] }), effOf('any-of', ['dct']));
    expect(d.outcome).toBe('refuse');
    expect(d.audit).toMatchObject({ decision: 'deny', code: 'DIGEST_NOT_SIGNED' });
    if (d.outcome === 'refuse') expect(d.error.code).toBe('DIGEST_NOT_SIGNED');
  });

  it('is refused when the signed index does not list it (a candidate is only a hint)', async () => {
    const d = await decideChild(worldOf({ signedIndex }, { dct: [dSigned] }), effOf('any-of', ['dct']), dStray);
    expect(d.outcome).toBe('refuse');
    expect(d.audit.code).toBe('DIGEST_NOT_SIGNED');
  });

  it.each<[string, M]>([
    ['not JSON', { bytes: Buffer.from(`{"schemaVersion":2,"manifests":[{"digest":"${dA}"}`), mediaType: OCI_INDEX }],
    ['an entry with a bad digest', indexOf([dA, 'sha256:zz'])],
    ['over the caps', indexOf([dA, dB, dA, dB, dA])],
    ['an image manifest, not an index', { bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, manifests: [{ digest: dA }] })), mediaType: OCI_MANIFEST }],
  ])('is refused when the signed parent is malformed: %s', async (_n, bad) => {
    const d = await decideChild(worldOf({ bad }, { dct: [digestOf(bad.bytes)] }), effOf('any-of', ['dct']));
    expect(d.outcome).toBe('refuse');
    expect(d.audit.code).toBe('DIGEST_NOT_SIGNED');
  });

  it('is refused when the parent cannot be had (MANIFEST_UNKNOWN is not a cover)', async () => {
    const w = worldOf({}, { dct: [dSigned] });
    w.parents = [dSigned];
    const d = await decideChild(w, effOf('any-of', ['dct']));
    expect(d.outcome).toBe('refuse');
    expect(d.audit.code).toBe('DIGEST_NOT_SIGNED');
  });

  it('is served over a cosign-proven index, the prover asked about the index descriptor', async () => {
    proved.length = 0;
    const d = await decideChild(worldOf({ signedIndex }, { cosign: [dSigned] }), effOf('any-of', ['cosign']));
    expect(d.audit).toMatchObject({ decision: 'allow', satisfiedBy: `index ${dSigned} (cosign key k1)` });
    expect(proved).toContainEqual({ digest: dSigned, size: signedIndex.bytes.length, mediaType: OCI_INDEX });
  });

  it('under all-of needs every kind over the parent', async () => {
    const eff = effOf('all-of', ['dct', 'cosign']);
    const onlyDct = await decideChild(worldOf({ signedIndex }, { dct: [dSigned] }), eff);
    expect(onlyDct.outcome).toBe('refuse');
    expect(onlyDct.audit.code).toBe('DIGEST_NOT_SIGNED');
    const onlyCosign = await decideChild(worldOf({ signedIndex }, { cosign: [dSigned] }), eff);
    expect(onlyCosign.outcome).toBe('refuse');
    // Every kind over the child's own digest does not count for the parent's other kinds either.
    const split = await decideChild(worldOf({ signedIndex }, { dct: [dSigned], cosign: [dA] }), eff);
    expect(split.outcome).toBe('refuse');
    const both = await decideChild(worldOf({ signedIndex }, { dct: [dSigned], cosign: [dSigned] }), eff);
    expect(both.audit).toMatchObject({ decision: 'allow', satisfiedBy: `index ${dSigned} (dct targets tag v1 + cosign key k1)` });
  });

  it('takes the covered one among several parents, an unsigned one listed first', async () => {
    const unsigned = indexOf([dA, dStray]);
    const d = await decideChild(worldOf({ unsigned, signedIndex }, { dct: [dSigned] }), effOf('any-of', ['dct']));
    expect(d.audit).toMatchObject({ decision: 'allow', satisfiedBy: `index ${dSigned} (dct targets tag v1)` });
  });

  it('checks at most MAX_PARENTS_TRIED candidates', async () => {
    const decoys = Object.fromEntries(Array.from({ length: MAX_PARENTS_TRIED }, (_, i) => [`u${i}`, indexOf([dA], OCI_INDEX, { i })]));
    const d = await decideChild(worldOf({ ...decoys, signedIndex }, { dct: [dSigned] }), effOf('any-of', ['dct']));
    expect(d.outcome).toBe('refuse');
  });

  it('under audit serves the child anyway but says it is not covered', async () => {
    const w = worldOf({ unsigned: indexOf([dA]) });
    const d = await decideChild(w, { ...effOf('any-of', ['dct']), policy: 'audit' });
    expect(d.audit).toMatchObject({ decision: 'audit-allow', code: 'DIGEST_NOT_SIGNED' });
  });
});
