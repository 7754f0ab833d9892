// TLS of the client listener (uWS SSLApp). The certificate and key files are checked here before
// uWS reads them: uWS only says "App construction failed", whatever is wrong (measured on both
// builds: a missing file, a key of another certificate, an encrypted key without or with a wrong
// passphrase). What the certificate says (subject, expiry, fingerprint) goes to the log and to
// /metrics (wsgate_tls_certificate_not_after_seconds).
//
// No client certificates: uWS's ca_file_name verifies a certificate the client presents but accepts
// a client that presents none, and tells JS nothing about it (both builds), so it would look like
// mutual TLS without being it.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.js';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly passphrase: string | undefined;
}

/** What the served certificate says (no secret in it). */
export interface CertificateInfo {
  readonly subject: string;
  readonly issuer: string;
  readonly altNames: string | undefined;
  readonly notBefore: string;
  readonly notAfter: string;
  /** seconds since the epoch */
  readonly notAfterSec: number;
  readonly fingerprint256: string;
}

/** uWS's SSL options (file names: uWS reads the files itself). */
export interface TlsOptions {
  readonly cert_file_name: string;
  readonly key_file_name: string;
  readonly passphrase?: string;
}

export class TlsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsError';
  }
}

/**
 * Linux's net.ipv4.tcp_migrate_req (kernel >= 5.14, per network namespace): 1 moves the connections
 * waiting in a closed listen socket's accept queue to another listener of its SO_REUSEPORT group.
 * At 0 a reload resets them (measured on both builds, ~600 new TLS connections/s, a reload every
 * 100 ms: ~2.5 resets per reload at 0, none at 1). undefined: not Linux, or not readable.
 */
export function acceptQueueMigrates(): boolean | undefined {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() !== '0';
  } catch {
    return undefined;
  }
}

export function tlsFiles(config: Pick<Config, 'tlsCertFile' | 'tlsKeyFile' | 'tlsPassphrase'>): TlsFiles | undefined {
  if (config.tlsCertFile === undefined || config.tlsKeyFile === undefined) return undefined;
  return { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, passphrase: config.tlsPassphrase };
}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new TlsError(`${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Reads and checks the files: a certificate, and a private key (decrypted with the passphrase) that belongs to it. */
export function loadTls(files: TlsFiles): { options: TlsOptions; certificate: CertificateInfo } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(read(files.certFile, 'WSGATE_TLS_CERT_FILE'));
  } catch (e) {
    if (e instanceof TlsError) throw e;
    throw new TlsError(`WSGATE_TLS_CERT_FILE ${files.certFile}: not a PEM certificate`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: read(files.keyFile, 'WSGATE_TLS_KEY_FILE'), ...(files.passphrase !== undefined ? { passphrase: files.passphrase } : {}) });
  } catch (e) {
    if (e instanceof TlsError) throw e;
    // the message of a wrong passphrase says nothing of the passphrase itself
    throw new TlsError(`WSGATE_TLS_KEY_FILE ${files.keyFile}: not a private key, or encrypted and WSGATE_TLS_PASSPHRASE is missing or wrong`);
  }
  if (!cert.checkPrivateKey(key)) throw new TlsError(`WSGATE_TLS_KEY_FILE ${files.keyFile} is not the key of WSGATE_TLS_CERT_FILE ${files.certFile}`);
  const notAfterMs = Date.parse(cert.validTo);
  return {
    options: { cert_file_name: files.certFile, key_file_name: files.keyFile, ...(files.passphrase !== undefined ? { passphrase: files.passphrase } : {}) },
    certificate: {
      subject: cert.subject.replace(/\n/g, ', '),
      issuer: cert.issuer.replace(/\n/g, ', '),
      altNames: cert.subjectAltName,
      notBefore: new Date(cert.validFrom).toISOString(),
      notAfter: new Date(notAfterMs).toISOString(),
      notAfterSec: Math.floor(notAfterMs / 1000),
      fingerprint256: cert.fingerprint256,
    },
  };
}
