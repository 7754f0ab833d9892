// Who may call the server API (docs/API.md#authentication): `Authorization: Bearer <credential>`,
// where the credential is one of WSGATE_ADMIN_KEYS, or a JWT that verifies as a server-API token
// (auth/claims.ts toApiClaims: the WSGATE_ADMIN_JWT_SCOPE in its scope, no tenant_id). A client
// token carries tenant_id, so it never passes. No uWS here.
//
// Keys are compared in constant time: the credential and every key are hashed (SHA-256) and the
// digests compared with timingSafeEqual, each key every time, so neither a key's length nor its
// position in the list shows in the answer's timing. A principal is named by its key's fingerprint
// (the first 8 hex digits of the key's SHA-256), which stays the same across a rotation and says
// nothing about the key; a JWT by its sub.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiClaims } from '../auth/claims.js';
import { MAX_TOKEN_LENGTH } from '../auth/extract.js';
import { VerifyError, type TokenVerifier } from '../auth/verifier.js';
import { AdminError, type AdminErrorKind } from '../errors/codes.js';

export type AdminAuthOutcome =
  | { readonly ok: true; /** `key:<fingerprint>` or `jwt:<sub>` */ readonly principal: string }
  | { readonly ok: false; readonly error: AdminErrorKind; /** counted and logged, never told */ readonly reason: string };

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The fingerprint that names a key in logs and rate limits. */
export function keyFingerprint(key: string): string {
  return sha256(key).toString('hex').slice(0, 8);
}

const BEARER = /^Bearer +(\S+) *$/i;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export class AdminAuth {
  private readonly keys: readonly { digest: Buffer; name: string }[];

  constructor(
    keys: readonly string[],
    /** the verifier of server-API JWTs; undefined: keys only */
    private readonly jwt: TokenVerifier<ApiClaims> | undefined,
  ) {
    this.keys = keys.map((k) => ({ digest: sha256(k), name: `key:${keyFingerprint(k)}` }));
  }

  /** The Authorization header's value ('' when absent). Synchronous unless a JWT needs JWKS. */
  authenticate(authorization: string): AdminAuthOutcome | Promise<AdminAuthOutcome> {
    if (authorization === '') return fail(AdminError.NO_TOKEN, 'no-token');
    if (authorization.length > MAX_TOKEN_LENGTH + 16) return fail(AdminError.AUTH_FAILED, 'too-long');
    const m = BEARER.exec(authorization);
    if (!m) return fail(AdminError.AUTH_FAILED, 'not-bearer');
    const credential = m[1]!;
    const digest = sha256(credential);
    let found: string | undefined;
    for (const k of this.keys) if (timingSafeEqual(k.digest, digest) && found === undefined) found = k.name;
    if (found !== undefined) return { ok: true, principal: found };
    if (this.jwt === undefined || !JWT_SHAPE.test(credential)) return fail(AdminError.AUTH_FAILED, 'unknown-key');
    let verified: ApiClaims | Promise<ApiClaims>;
    try {
      verified = this.jwt.verify(credential);
    } catch (e) {
      return failed(e);
    }
    if (verified instanceof Promise) return verified.then(ok, failed);
    return ok(verified);
  }
}

const fail = (error: AdminErrorKind, reason: string): AdminAuthOutcome => ({ ok: false, error, reason });
const ok = (c: ApiClaims): AdminAuthOutcome => ({ ok: true, principal: `jwt:${c.sub}` });
const failed = (e: unknown): AdminAuthOutcome => fail(AdminError.AUTH_FAILED, `jwt-${e instanceof VerifyError ? e.reason : 'malformed'}`);
