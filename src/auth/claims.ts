// The claim grammar: what a verified token's payload must hold to become a user context. Pure.
// docs/CONFIGURATION.md#claims lists the same rules; a failure is one VerifyError('claims'), which
// the upgrade answers with 401 Authentication failed and counts as reason "claims".
//
//   sub, tenant_id, jti   strings of 1..256 characters, well-formed Unicode (no unpaired
//                         surrogate), no control character (Unicode category Cc: U+0000-U+001F,
//                         U+007F-U+009F). They become Redis keys and map keys: an unpaired
//                         surrogate becomes U+FFFD in UTF-8, so two different tenants could share keys.
//   exp                   an integer (seconds), at most maxTtlSec after now
//   iat                   optional; a number not later than now + clock tolerance. A user revocation
//                         (stores/ports.ts) revokes the user's tokens with iat before its time, and
//                         every token of the user without iat.
//   permissions           optional; an array of at most 1000 strings, each 1..256 characters
//                         of the same alphabet as above (an entry that is not a valid pattern
//                         grants nothing, see rooms/permissions.ts)

import { keyOf } from '../keys/keys.js';

/** The user context attached to a socket, from verified claims. */
export interface Claims {
  readonly sub: string;
  readonly tenantId: string;
  readonly jti: string;
  readonly exp: number;
  /** issued at (seconds), when the token says; compared with user revocations (stores/ports.ts) */
  readonly iat?: number;
  readonly permissions: readonly string[];
}

export const MAX_CLAIM_LENGTH = 256;
export const MAX_PERMISSIONS = 1000;

export interface ClaimRules {
  /** Longest accepted token lifetime from now, seconds (exp - now). */
  readonly maxTtlSec: number;
  readonly clockToleranceSec: number;
}

// Cc: C0 controls, DEL and C1 controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A claim string that may become part of a key: 1..256 chars, well-formed, no control character. */
export function isClaimString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_CLAIM_LENGTH && v.isWellFormed() && !CONTROL.test(v);
}

const EMPTY: readonly string[] = Object.freeze([]);

// Permission lists are interned: tokens of one role carry the same list, and each session (and each
// cached token) would otherwise hold its own copy of the array and its strings. Keyed injectively
// (keys/keys.ts); bounded, cleared wholesale when full.
const INTERN_MAX = 1024;
const interned = new Map<string, readonly string[]>();
function intern(list: readonly string[]): readonly string[] {
  if (list.length === 0) return EMPTY;
  const key = keyOf(...list);
  let canonical = interned.get(key);
  if (canonical === undefined) {
    if (interned.size >= INTERN_MAX) interned.clear();
    interned.set(key, (canonical = Object.freeze([...list])));
  }
  return canonical;
}

/** Payload -> Claims, or undefined when a rule above is broken. `nowSec`: seconds since epoch. */
export function toClaims(payload: unknown, nowSec: number, rules: ClaimRules): Claims | undefined {
  if (payload === null || typeof payload !== 'object') return undefined;
  const p = payload as Record<string, unknown>;
  const { sub, tenant_id: tenantId, jti, exp, iat, permissions } = p;
  if (!isClaimString(sub) || !isClaimString(tenantId) || !isClaimString(jti)) return undefined;
  if (typeof exp !== 'number' || !Number.isSafeInteger(exp) || exp - nowSec > rules.maxTtlSec) return undefined;
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat) || iat > nowSec + rules.clockToleranceSec)) return undefined;
  let perms: readonly string[] = EMPTY;
  if (permissions !== undefined) {
    if (!Array.isArray(permissions) || permissions.length > MAX_PERMISSIONS) return undefined;
    for (const x of permissions) if (!isClaimString(x)) return undefined;
    perms = intern(permissions as string[]);
  }
  return { sub, tenantId, jti, exp, iat: iat as number | undefined, permissions: perms };
}

/** A token of the server API (docs/API.md#jwt): who called. */
export interface ApiClaims {
  readonly sub: string;
  readonly exp: number;
}

/**
 * Payload -> ApiClaims, or undefined when the token is not a server-API token: `sub` a claim string,
 * `exp` as above, `scope` (or `scp`) a space-separated string or an array of strings that contains
 * `scope`, and no `tenant_id`. Client tokens always carry tenant_id (toClaims above), API tokens
 * never do: no token can be both.
 */
export function toApiClaims(payload: unknown, nowSec: number, rules: ClaimRules, scope: string): ApiClaims | undefined {
  if (payload === null || typeof payload !== 'object') return undefined;
  const p = payload as Record<string, unknown>;
  const { sub, exp, iat } = p;
  if (p.tenant_id !== undefined) return undefined;
  if (!isClaimString(sub)) return undefined;
  if (typeof exp !== 'number' || !Number.isSafeInteger(exp) || exp - nowSec > rules.maxTtlSec) return undefined;
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat) || iat > nowSec + rules.clockToleranceSec)) return undefined;
  if (!hasScope(p.scope, scope) && !hasScope(p.scp, scope)) return undefined;
  return { sub, exp };
}

function hasScope(v: unknown, scope: string): boolean {
  if (typeof v === 'string') return v.length <= 4096 && v.split(' ').includes(scope);
  if (Array.isArray(v)) return v.length <= MAX_PERMISSIONS && v.some((x) => x === scope);
  return false;
}
