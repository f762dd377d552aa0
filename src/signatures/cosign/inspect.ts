// `trustgate inspect` for cosign: the signatures of each tag's current digest, each verified on its
// own against the upstream's cosign keys and identities, so an operator sees every signer (trusted or
// not) and why one does not count. Read-only; nothing is cached.
import { createHash } from 'node:crypto';
import { readBodyCapped } from '../../http/read-capped.js';
import { MANIFEST_MEDIA_TYPES, type RegistryClient } from '../../registry/registry-client.js';
import { findCosignSignatures } from './discovery.js';
import { verifyBundleSignature, verifyClassicSignature, type CosignTrust } from './verify-signature.js';

export interface CosignSignatureView {
  /** `tag` (sha256-<hex>.sig) or `referrer` (Sigstore bundle). */
  Form: 'tag' | 'referrer';
  /** Digest of the signature manifest (and the layer, for the tag form). */
  Manifest: string;
  Layer?: number;
  Verified: boolean;
  Signer?: string;
  Reason?: string;
}

export interface CosignTagView {
  Tag: string;
  Digest: string;
  Signatures: CosignSignatureView[];
  /** Signature artifacts that are there but unusable (bytes not matching, wrong subject), with why. */
  Unusable?: string[];
}

/** Tags inspected when none is named: a repository could have endless ones. */
export const MAX_INSPECTED_TAGS = 100;

async function listTags(registry: RegistryClient, repo: string): Promise<string[]> {
  const res = await registry.send(`/v2/${repo}/tags/list?n=${MAX_INSPECTED_TAGS * 4}`, { method: 'GET', repo, signal: AbortSignal.timeout(30_000) });
  if (res.statusCode !== 200) {
    await res.body.dump();
    return [];
  }
  const doc = JSON.parse(Buffer.from(await readBodyCapped(res.body, 4 * 1024 * 1024, 'tags list', res.headers['content-length'])).toString('utf8')) as { tags?: unknown };
  // Signature and referrer tags (sha256-<hex>[.sig|.att|.sbom]) are artifacts, not images.
  return (Array.isArray(doc.tags) ? doc.tags : []).filter((t): t is string => typeof t === 'string' && !/^sha256-[0-9a-f]{64}/.test(t)).slice(0, MAX_INSPECTED_TAGS);
}

/**
 * `signatures`: where the signatures are read when the trust names a signature repository
 * (cosign.repository); the tags and their digests always come from the image's own repository.
 */
export async function inspectCosign(registry: RegistryClient, repo: string, trust: CosignTrust, tag?: string, signatures: { registry: RegistryClient; repo: string } = { registry, repo }): Promise<CosignTagView[]> {
  const out: CosignTagView[] = [];
  for (const t of tag !== undefined ? [tag] : await listTags(registry, repo)) {
    const m = await registry.fetchManifest(repo, t, MANIFEST_MEDIA_TYPES);
    if (!m) continue;
    const digest = `sha256:${createHash('sha256').update(m.bytes).digest('hex')}`;
    const found = await findCosignSignatures(signatures.registry, signatures.repo, digest);
    const check = (f: () => { by: string }): Pick<CosignSignatureView, 'Verified' | 'Signer' | 'Reason'> => {
      try {
        return { Verified: true, Signer: f().by };
      } catch (err) {
        return { Verified: false, Reason: (err as Error).message };
      }
    };
    out.push({
      Tag: t,
      Digest: digest,
      Signatures: [
        ...found.classic.map((s) => ({ Form: 'tag' as const, Manifest: s.manifestDigest, Layer: s.layer, ...check(() => verifyClassicSignature(s, digest, trust)) })),
        ...found.bundles.map((b) => ({ Form: 'referrer' as const, Manifest: b.manifestDigest, ...check(() => verifyBundleSignature(b.bundle, digest, trust)) })),
      ],
      ...(found.rejected.length ? { Unusable: found.rejected } : {}),
    });
  }
  return out;
}

export function formatCosignInspection(name: string, tags: readonly CosignTagView[]): string {
  const out = [`Cosign signatures for ${name}`, ''];
  const rows = tags.flatMap((t) =>
    t.Signatures.length === 0 && !t.Unusable
      ? [[t.Tag, t.Digest, '-', 'unsigned']]
      : [...t.Signatures.map((s) => [t.Tag, t.Digest, s.Form, s.Verified ? `verified: ${s.Signer}` : `NOT VERIFIED: ${s.Reason}`]), ...(t.Unusable ?? []).map((u) => [t.Tag, t.Digest, '-', `UNUSABLE: ${u}`])],
  );
  if (rows.length === 0) return [...out, `No tags for ${name}`].join('\n');
  const all = [['TAG', 'DIGEST', 'FORM', 'SIGNER'], ...rows];
  const w = all[0]!.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  out.push(...all.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(w[c]! + 3))).join('')));
  return out.join('\n');
}
