// replayTag against decideTag: wherever the replay answers, it gives the full path's allow — the same
// digest, bytes, header and audit record — for every require form and every combination of a DCT
// mapping and cached verdicts; and it answers whenever everything the allow rests on is cached.
import { describe, expect, it } from 'vitest';
import { fail } from '../../../src/errors.js';
import { decideTag, replayTag, type CachedVerdict, type DecidePorts, type ReplayPorts } from '../../../src/policy/decide.js';
import type { EffectivePolicy } from '../../../src/policy/effective.js';
import type { DigestKind, SignatureKind } from '../../../src/policy/vocabulary.js';

type M = { bytes: Buffer; mediaType: string };
const signedM: M = { bytes: Buffer.from('{"signed":true}'), mediaType: 'application/vnd.oci.image.manifest.v1+json' };
const tagM: M = { bytes: Buffer.from('{"tag":true}'), mediaType: 'application/vnd.oci.image.manifest.v1+json' };
const SIGNED = 'sha256:' + '1'.repeat(64);
const TAGGED = 'sha256:' + '2'.repeat(64);
type Verdict = 'proof' | 'refusal';

interface World {
  dct: boolean;
  verdicts: Partial<Record<DigestKind, Verdict>>;
}

const target = { digest: SIGNED, length: signedM.bytes.length, role: 'targets' };
const verdict = (kind: DigestKind, v: Verdict): CachedVerdict => (v === 'proof' ? { proof: { kind, by: `${kind} by key` } } : { refusal: fail(kind === 'cosign' ? 'COSIGN_UNSIGNED' : 'NOTATION_UNSIGNED', `${kind}: none`) });

function fullPorts(w: World): DecidePorts<M> {
  return {
    dct: {
      resolve: async () => (w.dct ? target : Promise.reject(fail('TAG_NOT_SIGNED', 'not signed'))),
      signedTagForDigest: async () => undefined,
      label: (t) => `dct ${t.role}`,
    },
    prove: async (kind) => {
      const v = verdict(kind, w.verdicts[kind] ?? 'refusal');
      if ('refusal' in v) throw v.refusal;
      return v.proof;
    },
    bySignedDigest: async () => signedM,
    byTag: async () => ({ m: tagM, digest: TAGGED }),
    keep: () => undefined,
    missingSource: () => undefined,
  };
}

function replayPorts(w: World): ReplayPorts<M, typeof target> {
  const cached = new Map<string, { value: CachedVerdict }>();
  return {
    dct: { now: () => (w.dct ? target : undefined), label: (t) => `dct ${t.role}` },
    signedManifest: (digest, length) => (digest === SIGNED && length === signedM.bytes.length ? signedM : undefined),
    tagNow: () => ({ value: { m: tagM, digest: TAGGED } }),
    verdictNow: (kind) => {
      const v = w.verdicts[kind];
      if (!v) return undefined;
      const key = kind;
      if (!cached.has(key)) cached.set(key, { value: verdict(kind, v) });
      return cached.get(key);
    },
    missingSource: () => undefined,
  };
}

const FORMS: Array<{ mode: 'any-of' | 'all-of'; of: SignatureKind[] }> = [];
for (const mode of ['any-of', 'all-of'] as const)
  for (const of of [['dct'], ['cosign'], ['notation'], ['dct', 'cosign'], ['dct', 'notation'], ['cosign', 'notation'], ['notation', 'cosign'], ['dct', 'cosign', 'notation']] as SignatureKind[][]) FORMS.push({ mode, of });
const VERDICTS: Array<Verdict | undefined> = [undefined, 'proof', 'refusal'];

describe('replayTag', () => {
  it('equals decideTag wherever it answers, and answers whenever the allow rests only on cached entries', async () => {
    let replayed = 0;
    const missed: string[] = [];
    for (const f of FORMS) {
      const eff: EffectivePolicy = { policy: 'enforce', require: { ...f, label: `${f.mode}: [${f.of.join(', ')}]` }, digestPulls: 'allow' };
      for (const dct of [true, false])
        for (const cosign of VERDICTS)
          for (const notation of VERDICTS) {
            const w: World = { dct, verdicts: { ...(cosign ? { cosign } : {}), ...(notation ? { notation } : {}) } };
            const q = { upstream: 'lab', gun: 'host/app', repo: 'app', tag: 'v1' };
            const full = await decideTag(q, eff, fullPorts(w));
            const r = replayTag(q, eff, replayPorts(w));
            const what = `${eff.require.label} dct=${dct} cosign=${cosign} notation=${notation}`;
            if (r) {
              replayed++;
              expect(full.outcome, what).toBe('serve');
              if (full.outcome !== 'serve') continue;
              expect(r.decision.digest, what).toBe(full.digest);
              expect(r.decision.manifest, what).toBe(full.manifest);
              expect(r.decision.verifiedBy, what).toBe(full.verifiedBy);
              expect(JSON.stringify(r.decision.audit), what).toBe(JSON.stringify(full.audit));
            } else if (full.outcome === 'serve') {
              // The full path allowed: the replay may decline only when something it needs is not cached,
              // or when DCT (tried first under any-of) did not answer (its refusal is not kept).
              const digestKinds = f.of.filter((k): k is DigestKind => k !== 'dct');
              const uncached = digestKinds.some((k) => w.verdicts[k] === undefined);
              const dctFirstRefused = f.mode === 'any-of' && f.of.includes('dct') && !dct;
              if (!uncached && !dctFirstRefused) missed.push(what);
            }
          }
    }
    expect(missed).toEqual([]);
    expect(replayed).toBeGreaterThan(40);
  });

  it('never replays under policy off or a missing trust source', () => {
    const w: World = { dct: true, verdicts: { cosign: 'proof' } };
    const q = { upstream: 'lab', gun: 'host/app', repo: 'app', tag: 'v1' };
    const req = { mode: 'any-of' as const, of: ['cosign'] as SignatureKind[], label: 'cosign' };
    expect(replayTag(q, { policy: 'off', require: req, digestPulls: 'allow' }, replayPorts(w))).toBeUndefined();
    expect(replayTag(q, { policy: 'enforce', require: req, digestPulls: 'allow' }, { ...replayPorts(w), missingSource: () => fail('TRUST_SOURCE_MISSING', 'x') })).toBeUndefined();
  });
});
