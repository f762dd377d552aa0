// The words every policy is written in: config/ parses them, policy/ decides with them, server/ and
// the audit line print them. They live here, below both, so config/schema.ts and policy/effective.ts
// no longer import each other (DESIGN.md "Architecture": config imports policy's vocabulary). Pure.

export type PolicyMode = 'enforce' | 'audit' | 'off';
export const POLICY_MODES: readonly PolicyMode[] = ['enforce', 'audit', 'off'];
/** The signatures trustgate can check: Docker Content Trust (Notary v1), Notation, Sigstore cosign. */
export type SignatureKind = 'dct' | 'notation' | 'cosign';
export const SIGNATURE_KINDS: readonly SignatureKind[] = ['dct', 'notation', 'cosign'];
/** The kinds that sign a digest (a descriptor), not a tag: their adapters are DigestProvers (signatures/port.ts). */
export type DigestKind = Exclude<SignatureKind, 'dct'>;
/**
 * Which signatures a tag needs, normalized: `any-of` is satisfied by one kind, `all-of` needs every
 * kind on the same digest. Written as `dct`, `notation`, `cosign`, `any-of` (= dct or notation),
 * `all-of` (= dct and notation), or `{ any-of: [dct, cosign] }` / `{ all-of: [...] }`.
 */
export interface RequireSpec {
  mode: 'any-of' | 'all-of';
  of: readonly SignatureKind[];
  /** As the operator wrote it, for messages and audit lines. */
  label: string;
}
/** The one-word forms of `require`. */
export const REQUIRE_WORDS: Readonly<Record<string, Omit<RequireSpec, 'label'>>> = {
  dct: { mode: 'any-of', of: ['dct'] },
  notation: { mode: 'any-of', of: ['notation'] },
  cosign: { mode: 'any-of', of: ['cosign'] },
  'any-of': { mode: 'any-of', of: ['dct', 'notation'] },
  'all-of': { mode: 'all-of', of: ['dct', 'notation'] },
};
export const DEFAULT_REQUIRE: RequireSpec = { mode: 'any-of', of: ['dct'], label: 'dct' };
/** Pull by digest: `allow` (Docker Content Trust's rule: content-addressed) or `signed` (only digests a signature covers). */
export type DigestPulls = 'allow' | 'signed';
export const DIGEST_PULLS: readonly DigestPulls[] = ['allow', 'signed'];
