// Token verification: fast-jwt verifiers built once from the configured keys, then claim
// checks. No sockets, no Redis. The hot path does no option parsing.
import { createPublicKey } from 'node:crypto';
import { createVerifier, TokenError } from 'fast-jwt';
import type { Algorithm } from '../config/config.js';
import { toClaims as checkClaims, type ClaimRules, type Claims } from './claims.js';
import { TokenCache } from './token-cache.js';

export type { Claims } from './claims.js';

/** Why a token failed; logged and counted, never sent to the client (it gets AUTH_FAILED). */
export type VerifyFailure =
  | 'malformed' | 'signature' | 'algorithm' | 'expired' | 'not-yet-valid' | 'claims' | 'issuer-audience' | 'key-unavailable' | 'too-long';

export class VerifyError extends Error {
  constructor(readonly reason: VerifyFailure) {
    super(`token verification failed: ${reason}`);
    this.name = 'VerifyError';
  }
}

export type KeyFetcher = (kid: string | undefined, alg: string) => Promise<string>;

export interface VerifierOptions {
  readonly secrets: readonly string[];
  readonly publicKeys: readonly string[];
  /** JWKS lookup by kid; a rejected promise means the key is not known. */
  readonly jwks: KeyFetcher | undefined;
  readonly algorithms: readonly Algorithm[] | undefined;
  readonly issuer: readonly string[] | undefined;
  readonly audience: readonly string[] | undefined;
  readonly clockToleranceSec: number;
  readonly cacheSize: number;
  readonly cacheTtlMs: number;
  /** the cache's memory bound (auth/token-cache.ts); default 64 MiB */
  readonly cacheMaxBytes?: number;
  readonly maxTokenLength: number;
  /** Longest accepted lifetime (exp - now), seconds. */
  readonly maxTtlSec: number;
}

export interface CacheStats { hits: number; lookups: number }

export interface TokenVerifier<C = Claims> {
  /** Synchronous when every configured key is local (secrets, PEM); a Promise with JWKS. */
  verify(token: string): C | Promise<C>;
  readonly cache: CacheStats;
}

/** A verified payload -> the claims a verifier returns, or undefined when they break its grammar. */
export type ClaimParser<C> = (payload: unknown, nowSec: number, rules: ClaimRules) => C | undefined;

/** What a client token must carry (auth/claims.ts toClaims). */
const CLIENT_CLAIMS: readonly string[] = ['sub', 'tenant_id', 'jti', 'exp'];

const HS: Algorithm[] = ['HS256', 'HS384', 'HS512'];
const RSA: Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC: Algorithm[] = ['ES256', 'ES384', 'ES512'];
const ED: Algorithm[] = ['EdDSA'];

function publicKeyAlgorithms(pem: string): Algorithm[] {
  if (/BEGIN (RSA )?PUBLIC KEY|BEGIN CERTIFICATE/.test(pem)) {
    // Both RSA and EC keys use "BEGIN PUBLIC KEY"; ask node:crypto which one it is.
    const type = createPublicKey(pem).asymmetricKeyType;
    if (type === 'rsa' || type === 'rsa-pss') return RSA;
    if (type === 'ec') return EC;
    if (type === 'ed25519' || type === 'ed448') return ED;
  }
  throw new Error('unsupported public key (expected an RSA, EC or Ed25519 PEM public key)');
}

function allowed(candidates: readonly Algorithm[], allowlist: readonly Algorithm[] | undefined): Algorithm[] {
  return allowlist === undefined ? [...candidates] : candidates.filter((a) => allowlist.includes(a));
}

function mapError(e: unknown): VerifyError {
  if (e instanceof VerifyError) return e;
  const code = e instanceof TokenError ? e.code : undefined;
  switch (code) {
    case TokenError.codes.invalidSignature: return new VerifyError('signature');
    case TokenError.codes.invalidAlgorithm: return new VerifyError('algorithm');
    case TokenError.codes.expired: return new VerifyError('expired');
    case TokenError.codes.inactive: return new VerifyError('not-yet-valid');
    case TokenError.codes.missingRequiredClaim:
    case TokenError.codes.invalidPayload:
    case TokenError.codes.invalidClaimType: return new VerifyError('claims');
    case TokenError.codes.invalidClaimValue: return new VerifyError('issuer-audience');
    case TokenError.codes.keyFetchingError: return new VerifyError('key-unavailable');
    default: return new VerifyError('malformed');
  }
}

/** A failure that another configured key might not have: try the next verifier. */
const tryNext = (e: VerifyError): boolean => e.reason === 'signature' || e.reason === 'algorithm';

type SyncVerify = (token: string) => unknown;
type AsyncVerify = (token: string) => Promise<unknown>;

/**
 * The verifier of client tokens; with `parse` and `required`, a verifier of other tokens signed by
 * the same keys (the server API's, auth/claims.ts toApiClaims).
 */
export function createTokenVerifier(opts: VerifierOptions): TokenVerifier;
export function createTokenVerifier<C extends { readonly exp: number }>(opts: VerifierOptions, parse: ClaimParser<C>, required: readonly string[], now?: () => number): TokenVerifier<C>;
export function createTokenVerifier<C extends { readonly exp: number }>(
  opts: VerifierOptions,
  parse?: ClaimParser<C>,
  required: readonly string[] = CLIENT_CLAIMS,
  now: () => number = Date.now,
): TokenVerifier<C> {
  const rules = { maxTtlSec: opts.maxTtlSec, clockToleranceSec: opts.clockToleranceSec };
  const parseClaims = (parse ?? checkClaims) as ClaimParser<C>;
  // Claim rules beyond fast-jwt's (auth/claims.ts), run on every signature check. A cache hit skips
  // them safely: as "now" moves they only get easier to meet (exp's distance shrinks, iat falls
  // further behind), and exp itself ends the cache entry (auth/token-cache.ts).
  const toClaims = (payload: unknown): C => {
    const c = parseClaims(payload, now() / 1000, rules);
    if (c === undefined) throw new VerifyError('claims');
    return c;
  };
  const toleranceMs = opts.clockToleranceSec * 1000;
  const common = {
    // fast-jwt checks iss/aud only when present: a configured issuer or audience must also be required,
    // or a token without the claim would pass (found by test/integration/attacks.test.ts).
    requiredClaims: [...required, ...(opts.issuer ? ['iss'] : []), ...(opts.audience ? ['aud'] : [])],
    clockTolerance: toleranceMs,
    // our own cache stands in front (auth/token-cache.ts): fast-jwt's hashes every token with SHA-256
    cache: false,
    ...(opts.issuer ? { allowedIss: [...opts.issuer] } : {}),
    ...(opts.audience ? { allowedAud: [...opts.audience] } : {}),
  };

  const cache = opts.cacheSize > 0 ? new TokenCache<C>(opts.cacheSize, opts.cacheTtlMs, toleranceMs, opts.cacheMaxBytes) : undefined;

  const sync: SyncVerify[] = [];
  const hsAlgs = allowed(HS, opts.algorithms);
  if (hsAlgs.length > 0) {
    for (const secret of opts.secrets) {
      const v = createVerifier({ ...common, key: secret, algorithms: hsAlgs as never });
      sync.push(v as SyncVerify);
    }
  }
  for (const pem of opts.publicKeys) {
    const algs = allowed(publicKeyAlgorithms(pem), opts.algorithms);
    if (algs.length === 0) continue;
    const v = createVerifier({ ...common, key: pem, algorithms: algs as never });
    sync.push(v as SyncVerify);
  }
  let jwksVerify: AsyncVerify | undefined;
  if (opts.jwks) {
    const fetchKey = opts.jwks;
    const algs = allowed([...RSA, ...EC, ...ED], opts.algorithms);
    if (algs.length > 0) {
      const v = createVerifier({
        ...common,
        algorithms: algs as never,
        key: async (decoded: { header: { kid?: unknown; alg?: unknown } }) =>
          fetchKey(typeof decoded.header.kid === 'string' ? decoded.header.kid : undefined, String(decoded.header.alg)),
      });
      jwksVerify = v as AsyncVerify;
    }
  }
  if (sync.length === 0 && !jwksVerify) throw new Error('no usable token key for the allowed algorithms');

  // No error object is built unless a verifier fails: an Error captures a stack trace, which
  // cost ~4% of the upgrade path's CPU when it was allocated up front (profiled connect storm).
  const verifySync = (token: string): C | VerifyError => {
    let last: VerifyError | undefined;
    for (const v of sync) {
      try {
        return toClaims(v(token));
      } catch (e) {
        last = mapError(e);
        if (!tryNext(last)) return last;
      }
    }
    return last ?? new VerifyError('signature');
  };

  const verifyJwks = async (token: string): Promise<C> => {
    let claims: C;
    try {
      claims = toClaims(await jwksVerify!(token));
    } catch (e) {
      throw mapError(e);
    }
    cache?.set(token, claims, now());
    return claims;
  };

  const stats: CacheStats = cache ?? { hits: 0, lookups: 0 };
  return {
    cache: stats,
    verify(token: string): C | Promise<C> {
      if (token.length > opts.maxTokenLength) throw new VerifyError('too-long');
      if (cache) {
        const t = now();
        const hit = cache.get(token, t);
        if (hit !== undefined) return hit;
      }
      if (sync.length > 0) {
        const r = verifySync(token);
        if (!(r instanceof VerifyError)) {
          cache?.set(token, r, now());
          return r;
        }
        if (!jwksVerify || !tryNext(r)) throw r;
      }
      return verifyJwks(token);
    },
  };
}
