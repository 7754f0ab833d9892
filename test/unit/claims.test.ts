import { describe, expect, it } from 'vitest';
import { isClaimString, toClaims } from '../../src/auth/claims.js';

const NOW = 1_800_000_000;
const rules = { maxTtlSec: 3600, clockToleranceSec: 5 };
const base = { sub: 'alice', tenant_id: 'acme', jti: 'j1', exp: NOW + 60, permissions: ['join:chat/*'] };
const check = (over: Record<string, unknown>) => toClaims({ ...base, ...over }, NOW, rules);

describe('the claim grammar', () => {
  it('accepts well-formed claims and maps them to the user context', () => {
    expect(check({})).toEqual({ sub: 'alice', tenantId: 'acme', jti: 'j1', exp: NOW + 60, permissions: ['join:chat/*'] });
    expect(check({ sub: 'Ærøskøbing 😀', tenant_id: 'טננט', iat: NOW + 5 })).toMatchObject({ sub: 'Ærøskøbing 😀', tenantId: 'טננט' });
    expect(check({ permissions: undefined })).toMatchObject({ permissions: [] });
  });

  it('refuses what would become an ambiguous key or hide a control character', () => {
    for (const bad of ['', 'a'.repeat(257), 'a\uD800', '\uDC00a', 'a\u0000', 'a\n', 'a\u007f', 'a\u0085', 'a\u009f', 5, null, {}, ['a']]) {
      expect(check({ sub: bad }), JSON.stringify(bad)).toBeUndefined();
      expect(check({ tenant_id: bad }), JSON.stringify(bad)).toBeUndefined();
      expect(check({ jti: bad }), JSON.stringify(bad)).toBeUndefined();
      expect(check({ permissions: [bad] }), JSON.stringify(bad)).toBeUndefined();
    }
    expect(isClaimString('a'.repeat(256))).toBe(true);
    expect(isClaimString('\u2028')).toBe(true); // a line separator is not a control character (Cc)
  });

  it('exp: an integer at most maxTtlSec from now; iat: not in the future beyond the tolerance', () => {
    for (const exp of [1e308, NOW + 60.5, NOW + 3601, '1', Infinity, NaN, 2 ** 53]) expect(check({ exp }), String(exp)).toBeUndefined();
    expect(check({ exp: NOW + 3600 })).toBeDefined();
    for (const iat of [NOW + 6, '0', Infinity, NaN]) expect(check({ iat }), String(iat)).toBeUndefined();
    expect(check({ iat: NOW - 100 })).toBeDefined();
  });

  it('permissions: at most 1000 strings', () => {
    expect(check({ permissions: Array(1000).fill('join:a') })).toBeDefined();
    expect(check({ permissions: Array(1001).fill('join:a') })).toBeUndefined();
    expect(check({ permissions: 'join:a' })).toBeUndefined();
  });

  it('payloads that are not objects are refused', () => {
    for (const p of [null, 1, 'x', [base]]) expect(toClaims(p, NOW, rules)).toBeUndefined();
  });
});
