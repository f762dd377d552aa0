// `trustgate resign`: carry Docker Content Trust verdicts forward as cosign or Notation signatures.
// For each image: the upstream by gun prefix, its DCT trust service (the same engine `start` serves
// from: live notary, bundle, or frozen state), its tags (named, or every signed tag); for each tag, at
// the moment of signing: resolve through the engine, fetch the manifest by the signed digest and check
// its sha256 and length, then skip (present), stop (dry run) or sign and push. Nothing that the engine
// and the bytes do not verify right then is ever signed: every failure before the push is `refused`.
import type { Config, UpstreamConfig } from '../config/schema.js';
import { upstreamByGun, parseImage } from '../app/select-upstream.js';
import { dctTrustFor, type DctTrust } from '../app/dct-trust.js';
import { registryClientFor, registryWriterFor } from '../app/upstream-clients.js';
import { fail, isTrustgateError } from '../errors.js';
import { MANIFEST_MEDIA_TYPES, type RegistryClient } from '../registry/registry-client.js';
import type { RegistryWriter } from '../registry/registry-writer.js';
import type { KvStore } from '../store/kv.js';
import type { Clock } from '../signatures/dct/client.js';
import { sha256Digest } from './oci.js';
import { dctProvenance, type DctProvenance } from './provenance.js';
import type { Publisher, SignedSubject } from './publisher.js';
import { countsOf, dctField, type ReportLine } from './report.js';

export interface ResignRun {
  config: Config;
  env: NodeJS.ProcessEnv;
  kv: KvStore;
  clock: Clock;
  dryRun: boolean;
  /** `--into` as host/path, or undefined for each image's own repository. */
  into?: string | undefined;
  /** A publisher writing to `repo` (path under the registry) of upstream `u`, named `repository`. */
  publisherFor(reader: RegistryClient, writer: RegistryWriter, repo: string, repository: string): Publisher;
  /** Each report line, as soon as it is known. */
  emit(line: ReportLine): void;
  /** One progress line per repository. */
  progress(line: string): void;
}

/** The manifest's own mediaType when it names one (what the signature covers), else the upstream's header. */
export function mediaTypeOf(bytes: Buffer, header: string | undefined): string {
  try {
    const mt = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof mt === 'string' && /^[\w.+-]+\/[\w.+-]+$/.test(mt)) return mt;
  } catch {
    /* not JSON: fall through */
  }
  return header && header !== 'application/octet-stream' && header !== 'text/plain' ? header : 'application/vnd.docker.distribution.manifest.v2+json';
}

/** Clients built once per upstream and closed at the end. */
class Clients {
  private readonly readers = new Map<string, RegistryClient>();
  private readonly writers = new Map<string, RegistryWriter>();
  private readonly dcts = new Map<string, DctTrust | undefined>();
  constructor(private readonly run: ResignRun) {}
  reader(u: UpstreamConfig): RegistryClient {
    let r = this.readers.get(u.name);
    if (!r) this.readers.set(u.name, (r = registryClientFor(this.run.config, u, this.run.env)));
    return r;
  }
  writer(u: UpstreamConfig): RegistryWriter {
    let w = this.writers.get(u.name);
    if (!w) this.writers.set(u.name, (w = registryWriterFor(this.run.config, u, this.run.env)));
    return w;
  }
  dct(u: UpstreamConfig): DctTrust | undefined {
    if (!this.dcts.has(u.name)) this.dcts.set(u.name, dctTrustFor(this.run.config, u, this.run.env, this.run.kv, this.run.clock));
    return this.dcts.get(u.name);
  }
  async close(): Promise<void> {
    await Promise.allSettled([...[...this.readers.values()].map((r) => r.close()), ...[...this.writers.values()].map((w) => w.close()), ...[...this.dcts.values()].map((d) => d?.close())]);
  }
}

/** host/path of `--into` → its upstream and the path under that registry. */
function intoTarget(config: Config, into: string): { u: UpstreamConfig; repo: string; name: string } {
  const { name, tag } = parseImage(into);
  if (tag !== undefined) throw fail('USAGE', '--into names a repository (REGISTRY_HOST/REPOSITORY), not a tag');
  const u = upstreamByGun(config, name);
  return { u, repo: name.slice(u.gun.length + 1), name };
}

/** Naming an image (or --into) that no upstream serves is a mistake on the command line: exit 2. */
function asUsage<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (isTrustgateError(err) && err.code === 'NOT_FOUND') throw fail('USAGE', err.message);
    throw err;
  }
}

const codeOf = (err: unknown) => (isTrustgateError(err) ? err.code : 'INTERNAL');

/**
 * Every image and tag named; returns the report lines (also emitted one by one). Usage errors (an
 * image no upstream serves, a bad --into) are thrown before anything is signed.
 */
export async function resignImages(images: readonly string[], run: ResignRun): Promise<ReportLine[]> {
  const parsed = images.map((image) => {
    const { name, tag } = parseImage(image);
    const u = asUsage(() => upstreamByGun(run.config, name));
    return { image, name, tag, u, repo: name.slice(u.gun.length + 1) };
  });
  const into = run.into !== undefined ? asUsage(() => intoTarget(run.config, run.into!)) : undefined;
  const clients = new Clients(run);
  const lines: ReportLine[] = [];
  const emit = (l: ReportLine) => {
    lines.push(l);
    run.emit(l);
  };
  const publisherOf = (t: { u: UpstreamConfig; repo: string; name: string }) => run.publisherFor(clients.reader(t.u), clients.writer(t.u), t.repo, t.name);
  try {
    // Built first: a missing credential of the --into upstream is a usage error before any tag is tried.
    const intoPublisher = into ? publisherOf(into) : undefined;
    for (const p of parsed) {
      const publisher = intoPublisher ?? publisherOf(p);
      const mine: ReportLine[] = [];
      const out = (l: ReportLine) => {
        mine.push(l);
        emit(l);
      };
      const base = { image: p.name, signature: { kind: publisher.kind, digest: null, repository: publisher.repository } };
      const dct = clients.dct(p.u);
      let tags: string[];
      try {
        if (!dct) throw fail('TRUST_DATA_MISSING', `upstream ${p.u.name} has no notary server or trust bundle: no DCT verdict to carry forward`);
        tags = p.tag !== undefined ? [p.tag] : (await dct.service.signedTags(p.name)).map((t) => t.tag).sort();
        // A run that signs nothing for a repository says so, rather than exiting 0 on an empty report.
        if (tags.length === 0) throw fail('TAG_NOT_SIGNED', `${p.name} has no tag signed in targets/releases or targets`);
      } catch (err) {
        out({ ...base, tag: p.tag ?? null, digest: null, dct: null, result: 'refused', code: codeOf(err), message: (err as Error).message });
        run.progress(`${p.name}: ${countsOf(mine)}`);
        continue;
      }
      for (const tag of tags) out(await resignTag(p.name, p.repo, tag, dct!, clients.reader(p.u), publisher, run.dryRun, base));
      run.progress(`${p.name}: ${tags.length} tag${tags.length === 1 ? '' : 's'} to ${publisher.kind} ${publisher.repository}: ${countsOf(mine)}`);
    }
  } finally {
    await clients.close();
  }
  return lines;
}

export async function resignTag(
  name: string,
  repo: string,
  tag: string,
  dct: DctTrust,
  reader: RegistryClient,
  publisher: Publisher,
  dryRun: boolean,
  base: Pick<ReportLine, 'image' | 'signature'>,
): Promise<ReportLine> {
  let provenance: DctProvenance | undefined;
  let signed: string | null = null;
  let subject: SignedSubject;
  try {
    // The engine decides, now: a tag it does not verify at this moment is never signed.
    const target = await dct.service.resolve(name, tag);
    signed = target.digest;
    provenance = dctProvenance(await dct.service.verifiedSet(name), target);
    const fetched = await reader.fetchManifest(repo, target.digest, MANIFEST_MEDIA_TYPES);
    if (!fetched) throw fail('MANIFEST_UNKNOWN', `${name}@${target.digest} (signed for ${tag}) is not in the upstream registry`);
    // The bytes signed are the bytes DCT signed: sha256 and length, as the proxy checks what it serves.
    if (sha256Digest(fetched.bytes) !== target.digest || fetched.bytes.length !== target.length) {
      throw fail('DIGEST_MISMATCH', `the upstream served ${fetched.bytes.length} bytes with digest ${sha256Digest(fetched.bytes)} for ${name}@${target.digest}; DCT signed ${target.length} bytes`);
    }
    subject = { name, mediaType: mediaTypeOf(fetched.bytes, fetched.mediaType), digest: target.digest, size: target.length };
  } catch (err) {
    return { ...base, tag, digest: signed, dct: dctField(provenance), result: 'refused', code: codeOf(err), message: (err as Error).message };
  }
  const line = { ...base, tag, digest: subject.digest, dct: dctField(provenance) };
  try {
    const present = await publisher.findPresent(subject);
    if (present) return { ...line, signature: { ...base.signature!, digest: present }, result: 'present', code: null };
    if (dryRun) return { ...line, result: 'would-sign', code: null };
    const digest = await publisher.publish(subject, provenance!);
    return { ...line, signature: { ...base.signature!, digest }, result: 'signed', code: null };
  } catch (err) {
    return { ...line, result: 'failed', code: codeOf(err), message: (err as Error).message };
  }
}
