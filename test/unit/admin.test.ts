// The server API's pure parts: API-token claims, key authentication, the named rate limiter.
import { createSigner } from 'fast-jwt';
import { describe, expect, it } from 'vitest';
import { AdminAuth, keyFingerprint } from '../../src/admin/auth.js';
import { NamedLimiter } from '../../src/admin/limiter.js';
import { toApiClaims } from '../../src/auth/claims.js';
import { createTokenVerifier } from '../../src/auth/verifier.js';
import { SECRET } from '../helpers/tokens.js';

const NOW = 1_700_000_000;
const rules = { maxTtlSec: 3600, clockToleranceSec: 5 };

describe('toApiClaims', () => {
  const base = { sub: 'ops', exp: NOW + 60, scope: 'wsgate:admin' };
  const check = (over: Record<string, unknown>) => toApiClaims({ ...base, ...over }, NOW, rules, 'wsgate:admin');
  it('needs the scope (in scope or scp, string or array), a sub, a bounded exp, and no tenant_id', () => {
    expect(check({})).toEqual({ sub: 'ops', exp: NOW + 60 });
    expect(check({ scope: 'read wsgate:admin write' })).toBeDefined();
    expect(check({ scope: undefined, scp: ['x', 'wsgate:admin'] })).toBeDefined();
    expect(check({ scope: undefined, scp: 'wsgate:admin' })).toBeDefined();
    for (const bad of [
      { scope: undefined },
      { scope: 'wsgate:admin2' },
      { scope: 'wsgate:adminx wsgate' },
      { scope: ['wsgate:admin '] },
      { scope: 7 },
      { tenant_id: 'acme' },
      { tenant_id: null },
      { sub: '' },
      { sub: 'a\u0000' },
      { exp: NOW + 3601 },
      { exp: 'soon' },
      { iat: NOW + 60 },
    ]) expect(check(bad), JSON.stringify(bad)).toBeUndefined();
  });
});

describe('AdminAuth', () => {
  const k1 = 'first-key-0123456789abcdefghijklmnopqrstuvwxyz';
  const k2 = 'second-key-0123456789abcdefghijklmnopqrstuvwxyz';

  it('names a key by its fingerprint; anything else is refused, whatever it shares with a key', () => {
    const auth = new AdminAuth([k1, k2], undefined);
    expect(auth.authenticate(`Bearer ${k2}`)).toEqual({ ok: true, principal: `key:${keyFingerprint(k2)}` });
    expect(auth.authenticate(`bearer   ${k1}`)).toEqual({ ok: true, principal: `key:${keyFingerprint(k1)}` });
    expect(keyFingerprint(k1)).toMatch(/^[0-9a-f]{8}$/);
    expect(auth.authenticate('')).toMatchObject({ ok: false, error: { code: 'NO_TOKEN' } });
    for (const h of [k1, `Bearer ${k1.slice(1)}`, `Bearer ${k1} ${k2}`, `Basic ${k1}`, `Bearer ${'x'.repeat(20_000)}`, 'Bearer a.b.c']) {
      expect(auth.authenticate(h), h.slice(0, 40)).toMatchObject({ ok: false, error: { code: 'AUTH_FAILED' } });
    }
  });

  it('with a JWT verifier: API tokens pass as jwt:<sub>, and nothing else', () => {
    const verifier = createTokenVerifier(
      { secrets: [SECRET], publicKeys: [], jwks: undefined, algorithms: undefined, issuer: undefined, audience: undefined, clockToleranceSec: 5, cacheSize: 0, cacheTtlMs: 0, maxTokenLength: 16384, maxTtlSec: 3600 },
      (p, now, r) => toApiClaims(p, now, r, 'wsgate:admin'),
      ['sub', 'exp'],
    );
    const auth = new AdminAuth([k1], verifier);
    const sign = (claims: Record<string, unknown>) => createSigner({ key: SECRET })({ exp: Math.floor(Date.now() / 1000) + 60, ...claims });
    expect(auth.authenticate(`Bearer ${sign({ sub: 'ci', scope: 'wsgate:admin' })}`)).toEqual({ ok: true, principal: 'jwt:ci' });
    expect(auth.authenticate(`Bearer ${sign({ sub: 'ci', scope: 'wsgate:admin', tenant_id: 't', jti: 'j' })}`)).toMatchObject({ ok: false, reason: 'jwt-claims' });
    expect(auth.authenticate(`Bearer ${sign({ scope: 'wsgate:admin' })}`)).toMatchObject({ ok: false, error: { code: 'AUTH_FAILED' } });
  });
});

describe('NamedLimiter', () => {
  it('a bucket per name: burst, then the rate; 0 is unlimited', () => {
    const l = new NamedLimiter(2, 3);
    const taken = (name: string, t: number, n: number) => Array.from({ length: n }, () => l.take(name, t));
    expect(taken('a', 0, 4)).toEqual([true, true, true, false]);
    expect(taken('b', 0, 1)).toEqual([true]);
    expect(l.allows('a', 0)).toBe(false);
    expect(l.allows('a', 500)).toBe(true); // one token back after 500 ms at 2/s
    expect(taken('a', 500, 2)).toEqual([true, false]);
    const free = new NamedLimiter(0, 1);
    expect(Array.from({ length: 100 }, () => free.take('x', 0)).every(Boolean)).toBe(true);
    expect(free.size).toBe(0);
  });

  it('holds at most maxNames buckets: idle (full) ones go first, then the oldest', () => {
    const l = new NamedLimiter(1, 2, 3);
    l.take('busy', 0);
    l.take('idle1', 0);
    l.take('idle2', 0);
    // at t=5000 the idle buckets are full again; busy is drained
    l.take('busy', 5000);
    l.take('busy', 5000);
    l.take('new', 5000);
    expect(l.size).toBe(2);
    expect(l.allows('busy', 5000)).toBe(false); // kept: not full
    for (let i = 0; i < 10; i++) l.take(`n${i}`, 5000);
    expect(l.size).toBeLessThanOrEqual(3);
  });
});
