// Test tokens: HS secrets and generated RSA/EC keys, signed with fast-jwt's signer.
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { createSigner } from 'fast-jwt';

export const SECRET = 'test-secret-0123456789abcdefghijklmnopqrstuvwxyz';
export const OLD_SECRET = 'old-secret-0123456789abcdefghijklmnopqrstuvwxyz';

export interface Claims {
  sub?: string;
  tenant_id?: string;
  jti?: string;
  permissions?: unknown;
  exp?: number;
  nbf?: number;
  iss?: string;
  aud?: string;
  [k: string]: unknown;
}

export const now = (): number => Math.floor(Date.now() / 1000);

/** Claims with every required field; override or remove (undefined) as a test needs. */
export function claims(over: Claims = {}): Record<string, unknown> {
  const base: Record<string, unknown> = { sub: 'alice', tenant_id: 'acme', jti: randomUUID(), permissions: ['*:**'], exp: now() + 3600, iat: now() };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

/** A token without iat (the signer drops it): see hsIat. */
export function hs(over: Claims = {}, key = SECRET, algorithm: 'HS256' | 'HS384' | 'HS512' = 'HS256'): string {
  return createSigner({ key, algorithm, noTimestamp: true })(claims(over));
}

/** As hs, but the token keeps its iat (claims() sets now; `iat: n` another): hs's signer drops iat. */
export function hsIat(over: Claims = {}, key = SECRET): string {
  return createSigner({ key, algorithm: 'HS256' })(claims(over));
}

export function rsaKeys(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
}

export function ecKeys(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
}

export function signWith(privateKey: string, algorithm: 'RS256' | 'ES256' | 'PS256', over: Claims = {}, kid?: string): string {
  return createSigner({ key: privateKey, algorithm, noTimestamp: true, ...(kid ? { kid } : {}) })(claims(over));
}

/**
 * An HS256 token signed over exactly the given payload text (no signer-side checks or rewrites:
 * fast-jwt's signer refuses a non-integer exp and drops iat under noTimestamp).
 */
export function rawHs(payload: string | Record<string, unknown>, header: unknown = { alg: 'HS256', typ: 'JWT' }, key = SECRET): string {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(text).toString('base64url')}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}
