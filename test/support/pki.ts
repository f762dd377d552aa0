// A throwaway CA and a server/client certificate for 127.0.0.1 (and any extra IPs asked for, e.g. a
// container network's gateway), made with the openssl CLI.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Pki {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export async function makePki(dir: string, name = 'lab', opts: { extraIps?: string[] } = {}): Promise<Pki> {
  const o = (args: string[]) => run('openssl', args, { cwd: dir });
  const ext = join(dir, `${name}-ext.cnf`);
  // One certificate with serverAuth and clientAuth serves notary-server and notary-signer both ends.
  writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${['IP:127.0.0.1', ...(opts.extraIps ?? []).map((ip) => `IP:${ip}`), 'DNS:localhost'].join(',')}\n`);
  await o(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}-ca.key`]);
  await o(['req', '-x509', '-new', '-key', `${name}-ca.key`, '-subj', `/CN=${name}-ca`, '-days', '3', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-out', `${name}-ca.pem`]);
  await o(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  await o(['req', '-new', '-key', `${name}.key`, '-subj', '/CN=localhost', '-out', `${name}.csr`]);
  await o(['x509', '-req', '-in', `${name}.csr`, '-CA', `${name}-ca.pem`, '-CAkey', `${name}-ca.key`, '-CAcreateserial', '-days', '3', '-extfile', ext, '-out', `${name}.pem`]);
  // notary-signer's TLS wants a PKCS#8 key.
  await o(['pkcs8', '-topk8', '-nocrypt', '-in', `${name}.key`, '-out', `${name}.p8.key`]);
  return { caFile: join(dir, `${name}-ca.pem`), certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.p8.key`) };
}
