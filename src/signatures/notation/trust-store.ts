// Trust stores laid out as notation lays them out, so a site reuses its directory unchanged:
//   <root>/x509/<type>/<named-store>/<certificate files: PEM or DER>      type: ca | signingAuthority | tsa
// (notaryproject/specifications specs/trust-store-trust-policy.md "Trust Store").
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { fail } from '../../errors.js';
import type { TrustStoreRef } from './trust-policy.js';

function certificatesIn(bytes: Buffer, file: string): X509Certificate[] {
  const text = bytes.toString('latin1');
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  try {
    return pems ? pems.map((p) => new X509Certificate(p)) : [new X509Certificate(bytes)];
  } catch {
    throw fail('CONFIG_INVALID', `trust store file ${file} does not hold X.509 certificates`);
  }
}

/**
 * A certificate issued and signed by its own key. (Not checkIssued: OpenSSL's issuer check also wants
 * keyCertSign, which a self-signed signing certificate with only digitalSignature lacks.)
 */
function isSelfSigned(c: X509Certificate): boolean {
  try {
    return c.subject === c.issuer && c.verify(c.publicKey);
  } catch {
    return false;
  }
}

/**
 * The certificates of one named store. As notation-go requires, each is a CA certificate or a
 * self-signed signing certificate: any other leaf would make whatever it signed a trust anchor by
 * accident, so the store is refused rather than used.
 */
export async function loadTrustStore(root: string, ref: TrustStoreRef): Promise<X509Certificate[]> {
  const dir = join(root, 'x509', ref.type, ref.name);
  let files: string[];
  try {
    // "Symlinks are not supported for the named store directories or certificate files. Implementation
    // MUST validate that [they] are not symlinks, and fail" (trust-store-trust-policy.md "Trust Store").
    if ((await lstat(dir)).isSymbolicLink()) throw new Error('the named store is a symbolic link, which the specification forbids');
    const entries = await readdir(dir, { withFileTypes: true });
    const link = entries.find((e) => e.isSymbolicLink());
    if (link) throw new Error(`${link.name} is a symbolic link, which the specification forbids`);
    // Sub-directories (and the certificates in them) are ignored, as the specification says.
    files = entries.filter((e) => e.isFile()).map((e) => e.name).sort();
  } catch (err) {
    throw fail('CONFIG_INVALID', `trust store ${ref.type}:${ref.name}: cannot read ${dir}: ${(err as Error).message}`, err);
  }
  const certs: X509Certificate[] = [];
  for (const f of files) certs.push(...certificatesIn(await readFile(join(dir, f)), join(dir, f)));
  if (certs.length === 0) throw fail('CONFIG_INVALID', `trust store ${ref.type}:${ref.name} (${dir}) holds no certificates`);
  for (const c of certs) {
    if (!c.ca && !isSelfSigned(c)) throw fail('CONFIG_INVALID', `trust store ${ref.type}:${ref.name}: ${c.subject.replace(/\n/g, ', ')} is neither a CA nor a self-signed certificate`);
  }
  return certs;
}
