// Root validation as notary's trustpinning/certs.go ValidateRoot does it. Pure: `now` is passed in.
import { fail, type ErrorCode } from '../../../errors.js';
import type { Envelope, Root } from '../model/metadata.js';
import { parseRoot } from '../model/metadata.js';
import { keyFromCertChain, type PublicKey } from './keys.js';
import { verifyThreshold } from './signatures.js';
import { certChainToPem, parsePemCertificates, WEAK_SIGNATURE_OIDS, type CertInfo } from './x509.js';

/** notary client config `trust_pinning` (docs/reference/client-config.md), per GUN or GUN prefix. */
export interface TrustPinning {
  /** GUN, or a prefix ending in `*`, → allowed root certificate key IDs. */
  certs?: Readonly<Record<string, readonly string[]>>;
  /** GUN prefix → PEM text of CA certificates the root leaf must chain to. */
  ca?: Readonly<Record<string, string>>;
  /** Refuse trust on first use where no pin matches. */
  disableTofu?: boolean;
}

export interface TrustedRoot {
  root: Root;
  env: Envelope;
}

export interface ValidateRootInput {
  gun: string;
  env: Envelope;
  /** The root trusted before this one: the new root must also satisfy its threshold (rotation). */
  prev?: TrustedRoot | undefined;
  /** Applied only on first contact (notary bootstraps a cached root with an empty pin config). */
  pinning?: TrustPinning | undefined;
  now: Date;
  /** Role expiry: false for intermediate roots of a rotation walk and for a root we already trust (anchor). */
  checkExpiry: boolean;
  /**
   * Leaf and intermediate certificate validity of the new root; defaults to `checkExpiry`. notary's
   * ValidateRoot always checks it for the root being loaded, intermediate roots of a rotation walk
   * included (only their role expiry is waived), so the walk passes `checkExpiry: false, checkCertExpiry: true`.
   */
  checkCertExpiry?: boolean;
}

const DAY = 24 * 3600 * 1000;

interface RootKeyCerts {
  keyid: string;
  leaf: CertInfo;
  intermediates: CertInfo[];
}

/** Step 1 of ValidateRoot (parseAllCerts): leaf + intermediates behind each root-role key. */
function rootKeyCerts(root: Root): RootKeyCerts[] {
  const out: RootKeyCerts[] = [];
  for (const keyid of root.roles.root.keyids) {
    const key = root.keys.get(keyid);
    if (!key || (key.keytype !== 'ecdsa-x509' && key.keytype !== 'rsa-x509')) continue; // plain keys can never count
    const certs = parsePemCertificates(Buffer.from(key.publicB64, 'base64').toString('utf8'));
    if (!certs) continue;
    const [leaf, ...rest] = certs;
    // Exactly one non-CA certificate, and it comes first.
    if (!leaf || leaf.isCA || rest.some((c) => !c.isCA)) continue;
    out.push({ keyid, leaf, intermediates: rest });
  }
  return out;
}

/**
 * The earliest NotAfter among the root-role certificates: a verified root must be re-validated by
 * then, so nothing cached outlives its certificates. Conservative when the threshold allows others.
 */
export function earliestRootCertExpiry(root: Root): Date | undefined {
  let t: number | undefined;
  for (const kc of rootKeyCerts(root)) t = Math.min(t ?? Infinity, kc.leaf.notAfter.getTime());
  return t === undefined ? undefined : new Date(t);
}

/** tuf/utils/x509.go MatchCNToGun: exact, or a CN ending in `*` as a prefix. */
export function cnMatchesGun(cn: string | undefined, gun: string): boolean {
  if (cn === undefined) return false;
  if (cn.endsWith('*')) return gun.startsWith(cn.replace(/\*+$/, ''));
  return cn === gun;
}

/** tuf/utils/x509.go ValidateCertificate. Returns the refusal code, or undefined when usable. */
function certProblem(c: CertInfo, now: Date, checkExpiry: boolean): { code: ErrorCode; why: string } | undefined {
  if (c.notBefore > c.notAfter) return { code: 'ROOT_CERT_INVALID', why: 'NotBefore is after NotAfter' };
  if (WEAK_SIGNATURE_OIDS.has(c.signatureAlgorithmOid)) return { code: 'ROOT_CERT_INVALID', why: 'signed with SHA-1' };
  if (c.keyAlgorithm === 'rsa' && (c.rsaBits ?? 0) < 2048) return { code: 'ROOT_CERT_INVALID', why: 'RSA key under 2048 bits' };
  if (checkExpiry) {
    if (now > c.notAfter) return { code: 'EXPIRED', why: `certificate expired at ${c.notAfter.toISOString()}` };
    // notary tolerates a day of clock skew on NotBefore.
    if (c.notBefore.getTime() > now.getTime() + DAY) {
      return { code: 'ROOT_CERT_INVALID', why: `certificate not valid before ${c.notBefore.toISOString()}` };
    }
  }
  return undefined;
}

interface UsableCert extends RootKeyCerts {
  key: PublicKey;
}

/** validRootLeafCerts + validRootIntCerts, then CertsToKeys: keys rebuilt from DER. */
function usableRootCerts(gun: string, root: Root, now: Date, checkExpiry: boolean, keepAllIntermediates = false): UsableCert[] {
  const usable: UsableCert[] = [];
  const problems: Array<{ code: ErrorCode; why: string }> = [];
  for (const kc of rootKeyCerts(root)) {
    if (!cnMatchesGun(kc.leaf.cn, gun)) {
      problems.push({ code: 'ROOT_CN_MISMATCH', why: `certificate CN ${JSON.stringify(kc.leaf.cn)} does not match ${gun}` });
      continue;
    }
    const p = certProblem(kc.leaf, now, checkExpiry);
    if (p) {
      problems.push(p);
      continue;
    }
    // Intermediates that fail (incl. expiry) are dropped; the rebuilt key ID then changes and that
    // key's signatures no longer count — notary's behaviour, kept on purpose. The previously trusted
    // root's intermediates are all kept (ValidateRoot step 2 passes parseAllCerts' intermediates as they are).
    const intermediates = keepAllIntermediates ? kc.intermediates : kc.intermediates.filter((c) => !certProblem(c, now, true));
    const chain = [kc.leaf, ...intermediates];
    const key = keyFromCertChain(chain, certChainToPem(chain));
    if (key) usable.push({ ...kc, intermediates, key });
  }
  if (usable.length === 0) {
    const first = problems.find((p) => p.code === 'ROOT_CN_MISMATCH') ?? problems.find((p) => p.code === 'EXPIRED') ?? problems[0];
    throw fail(
      first?.code ?? 'ROOT_CERT_INVALID',
      `could not validate the path to a trusted root for ${gun}: unable to retrieve valid leaf certificates` +
        (first ? ` (${first.why})` : ' (no root key carries an X.509 certificate)'),
    );
  }
  return usable;
}

function keyMap(certs: readonly UsableCert[]): Map<string, PublicKey> {
  return new Map(certs.map((c) => [c.key.id, c.key]));
}

/** trustpinning/trustpin.go NewTrustPinChecker: certs[GUN] → longest certs["prefix*"] → longest ca prefix → TOFU. */
function applyPinning(gun: string, certs: UsableCert[], pinning: TrustPinning, hadPrev: boolean, now: Date): UsableCert[] {
  const exact = pinning.certs?.[gun];
  const wildcard = Object.entries(pinning.certs ?? {})
    .filter(([k]) => k.endsWith('*') && gun.startsWith(k.slice(0, -1)))
    .sort((a, b) => b[0].length - a[0].length)[0];
  const ids = exact ?? wildcard?.[1];
  let pinned: UsableCert[];
  if (ids) {
    pinned = certs.filter((c) => ids.includes(c.key.id));
  } else {
    const ca = Object.entries(pinning.ca ?? {})
      .filter(([prefix]) => gun.startsWith(prefix))
      .sort((a, b) => b[0].length - a[0].length)[0];
    if (ca) {
      const anchors = (parsePemCertificates(ca[1]) ?? []).filter((c) => c.isCA && now >= c.notBefore && now <= c.notAfter);
      pinned = certs.filter((c) => chainsToAnchor(c.leaf, c.intermediates, anchors, now));
    } else {
      if (pinning.disableTofu && !hadPrev) throw fail('PINNING_FAILED', `invalid trust pinning specified for ${gun}: no pin matches and TOFU is disabled`);
      return certs;
    }
  }
  if (pinned.length === 0) throw fail('PINNING_FAILED', `unable to match any certificates of ${gun}'s root to the trust_pinning config`);
  return pinned;
}

/** X.509 path: leaf → (intermediates)* → anchor, each link signature-checked and within validity. */
function chainsToAnchor(leaf: CertInfo, intermediates: readonly CertInfo[], anchors: readonly CertInfo[], now: Date): boolean {
  let cur = leaf;
  const used = new Set<CertInfo>();
  for (let depth = 0; depth < 8; depth++) {
    // x.checkIssued(y): "x was issued by y" — names chain, then the signature proves it.
    for (const a of anchors) if (cur.cert.checkIssued(a.cert) && cur.cert.verify(a.cert.publicKey)) return true;
    const next = intermediates.find(
      (i) => !used.has(i) && i.isCA && now >= i.notBefore && now <= i.notAfter && cur.cert.checkIssued(i.cert) && cur.cert.verify(i.cert.publicKey),
    );
    if (!next) return false;
    used.add(next);
    cur = next;
  }
  return false;
}

/**
 * ValidateRoot: (2) a previously trusted root must sign the new one with its own threshold, using its
 * certificates without expiry checks; (3) trust pinning on first contact; (4) the new root must meet its
 * own threshold with its valid, pinned certificates. Then role expiry unless disabled.
 */
export function validateRoot(input: ValidateRootInput): TrustedRoot {
  const { gun, env, prev, now, checkExpiry } = input;
  const root = parseRoot(env);
  if (prev) {
    const prevCerts = usableRootCerts(gun, prev.root, now, false, true);
    try {
      verifyThreshold('root', env.canonical, env.signatures, keyMap(prevCerts), prev.root.roles.root.threshold);
    } catch (err) {
      throw fail(
        'ROOT_ROTATION_FAILED',
        `could not rotate trust to a new root (version ${root.version}) for ${gun}: not signed by a threshold of the currently trusted root keys`,
        err,
      );
    }
  }
  let certs = usableRootCerts(gun, root, now, input.checkCertExpiry ?? checkExpiry);
  if (input.pinning) certs = applyPinning(gun, certs, input.pinning, prev !== undefined, now);
  verifyThreshold('root', env.canonical, env.signatures, keyMap(certs), root.roles.root.threshold);
  if (checkExpiry && root.expires < now) throw fail('EXPIRED', `root for ${gun} expired at ${root.expires.toISOString()}`);
  return { root, env };
}
