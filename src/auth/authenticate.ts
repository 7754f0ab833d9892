// The seed's authentication middleware, at the upgrade: extract -> verify -> revocation ->
// user context, or a typed refusal. No uWS, no Redis: the verifier and the RevocationStore
// port are passed in. Answers synchronously when it can: a refusal without I/O, or a token verified
// with a local key whose revocation the store knows now (server/gateway.ts then upgrades inside the
// upgrade handler).
import { Refusal, type RefusalKind } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import { revokedByUser, StoreUnavailable, type RevocationStore } from '../stores/ports.js';
import { extractToken, type ExtractOptions, type TokenSource, type UpgradeRequest } from './extract.js';
import { originAllowed } from './origin.js';
import { VerifyError, type Claims, type TokenVerifier } from './verifier.js';

export type AuthOutcome =
  | { readonly ok: true; readonly claims: Claims; readonly source: TokenSource }
  /** `reason`: why, in one word (logged, never sent); `source`: where the token came from, when one was found. */
  | { readonly ok: false; readonly refusal: RefusalKind; readonly reason: string; readonly source: TokenSource | 'none' | undefined };

export interface AuthenticatorOptions extends ExtractOptions {
  readonly allowedOrigins: readonly string[] | undefined;
  readonly failOpen: boolean;
}

export class Authenticator {
  constructor(
    private readonly verifier: TokenVerifier,
    private readonly revocations: RevocationStore,
    private readonly opts: AuthenticatorOptions,
    private readonly metrics: Metrics,
  ) {}

  private refuse(refusal: RefusalKind, reason: string, source: TokenSource | 'none' | undefined): AuthOutcome {
    this.metrics.count(this.metrics.refusals, refusal.code);
    return { ok: false, refusal, reason, source };
  }

  private countFailure(e: unknown): string {
    const reason = e instanceof VerifyError ? e.reason : 'malformed';
    this.metrics.count(this.metrics.authFailures, reason);
    return reason;
  }

  private failed(e: unknown, source: TokenSource): AuthOutcome {
    return this.refuse(Refusal.AUTH_FAILED, this.countFailure(e), source);
  }

  /**
   * The token's revocation, answered now when the store can (a local mirror, the embedded store):
   * the seed's `revoked:<jti>`, and a user revocation that covers its iat. undefined: ask Redis.
   */
  private revokedNow(c: Claims): boolean | undefined {
    const jti = this.revocations.isRevokedNow(c.jti);
    if (jti === true) return true;
    const before = this.revocations.userRevokedBeforeNow(c.tenantId, c.sub);
    if (before !== undefined && revokedByUser(c.iat, before)) return true;
    return jti === false && before !== undefined ? false : undefined;
  }

  /** As revokedNow, asking Redis when needed (both keys in one round trip); when Redis cannot answer: fail-closed unless configured to fail open. */
  private async revocation(c: Claims): Promise<'ok' | 'revoked' | 'unavailable'> {
    const now = this.revokedNow(c);
    if (now !== undefined) return now ? 'revoked' : 'ok';
    try {
      const [jti, before] = await Promise.all([this.revocations.isRevoked(c.jti), this.revocations.userRevokedBefore(c.tenantId, c.sub)]);
      return jti || revokedByUser(c.iat, before) ? 'revoked' : 'ok';
    } catch (e) {
      if (!(e instanceof StoreUnavailable)) throw e;
      if (!this.opts.failOpen) return 'unavailable';
      this.metrics.revocationFailOpen++;
      return 'ok';
    }
  }

  authenticate(req: UpgradeRequest, protocols: readonly string[]): AuthOutcome | Promise<AuthOutcome> {
    const found = extractToken(req, protocols, this.opts);
    if (found.kind === 'conflict') {
      this.metrics.count(this.metrics.authFailures, 'conflicting-tokens');
      return this.refuse(Refusal.AUTH_FAILED, 'conflicting-tokens', undefined);
    }
    if (!originAllowed(req.origin, req.host, this.opts.allowedOrigins, found.kind === 'token' ? found.source : undefined)) {
      return this.refuse(Refusal.ORIGIN_FORBIDDEN, 'origin', found.kind === 'token' ? found.source : 'none');
    }
    if (found.kind === 'none') return this.refuse(Refusal.NO_TOKEN, 'no-token', 'none');
    const source = found.source;
    let verified: Claims | Promise<Claims>;
    try {
      verified = this.verifier.verify(found.token);
    } catch (e) {
      return this.failed(e, source);
    }
    if (verified instanceof Promise) {
      return verified.then((claims) => this.checkRevocation(claims, source), (e: unknown) => this.failed(e, source));
    }
    return this.checkRevocation(verified, source);
  }

  /** Synchronous when the store knows the answer now (a local mirror, the embedded store). */
  checkRevocation(claims: Claims, source: TokenSource): AuthOutcome | Promise<AuthOutcome> {
    const now = this.revokedNow(claims);
    if (now === true) return this.refuse(Refusal.TOKEN_REVOKED, 'revoked', source);
    if (now === false) return { ok: true, claims, source };
    return this.revocation(claims).then((r) => {
      if (r === 'revoked') return this.refuse(Refusal.TOKEN_REVOKED, 'revoked', source);
      if (r === 'unavailable') return this.refuse(Refusal.UNAVAILABLE, 'revocation-unavailable', source);
      return { ok: true, claims, source };
    });
  }

  /**
   * Verifies a token offered over the socket (token:refresh): signature, claims, revocation.
   * Resolves to the claims, or to 'invalid' / 'unavailable'.
   */
  async verifyForRefresh(token: string): Promise<Claims | 'invalid' | 'unavailable'> {
    let claims: Claims;
    try {
      claims = await this.verifier.verify(token);
    } catch (e) {
      this.countFailure(e);
      return 'invalid';
    }
    const r = await this.revocation(claims);
    return r === 'ok' ? claims : r === 'revoked' ? 'invalid' : 'unavailable';
  }
}
