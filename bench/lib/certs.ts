// Throw-away certificates for TLS runs and tests: a CA and leaf certificates it signs (P-256 or
// RSA 2048 keys), valid for localhost and 127.0.0.1, made with the openssl command (Node can make
// keys but cannot sign a certificate). Files go into a directory the caller removes.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type KeyKind = 'ec' | 'rsa';

export interface Leaf {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  /** SHA-256 fingerprint, as tls's getPeerCertificate().fingerprint256 gives it */
  readonly fingerprint256: string;
}

export interface TestCa {
  readonly dir: string;
  readonly caFile: string;
  /** the CA certificate: what a client trusts */
  readonly ca: Buffer;
  /** A certificate for localhost and 127.0.0.1 signed by the CA; `passphrase` encrypts its key. */
  issue(name: string, opts?: { passphrase?: string; key?: KeyKind }): Leaf;
}

const keyArgs = (kind: KeyKind): string[] => (kind === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048']);

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeCa(dir = mkdtempSync(join(tmpdir(), 'wsgate-certs-')), key: KeyKind = 'ec'): TestCa {
  openssl(['req', '-x509', ...keyArgs(key), '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=wsgate test CA'], dir);
  writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    ca: readFileSync(join(dir, 'ca.pem')),
    issue(name, opts = {}) {
      const kind = opts.key ?? key;
      openssl(['req', ...keyArgs(kind), '-nodes', '-keyout', `${name}.plain.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', 'leaf.ext'], dir);
      if (opts.passphrase !== undefined) openssl(['pkey', '-in', `${name}.plain.key`, '-aes256', '-passout', `pass:${opts.passphrase}`, '-out', `${name}.key`], dir);
      else openssl(['pkey', '-in', `${name}.plain.key`, '-out', `${name}.key`], dir);
      const cert = readFileSync(join(dir, `${name}.pem`));
      return { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`), cert, fingerprint256: new X509Certificate(cert).fingerprint256 };
    },
  };
}
