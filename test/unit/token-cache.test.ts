import { describe, expect, it } from 'vitest';
import { TokenCache } from '../../src/auth/token-cache.js';
import { createTokenVerifier } from '../../src/auth/verifier.js';
import { hs, SECRET } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

const claims = (exp: number) => ({ sub: 's', tenantId: 't', jti: 'j', exp, permissions: [] });

describe('TokenCache', () => {
  it('returns what was set until its TTL or the token\'s exp + tolerance, whichever comes first', () => {
    const c = new TokenCache(10, 60_000, 5_000);
    c.set('a', claims(100), 0); // exp 100 s: until min(60 s, 105 s)
    c.set('b', claims(10), 0); // exp 10 s + 5 s tolerance
    c.set('c', claims(-10), 0); // already past exp + tolerance: not cached
    expect(c.size).toBe(2);
    expect(c.get('a', 59_999)).toBeDefined();
    expect(c.get('a', 60_000)).toBeUndefined();
    expect(c.get('b', 14_999)).toBeDefined();
    expect(c.get('b', 15_000)).toBeUndefined();
    expect(c.size).toBe(0); // stale entries go when met
    expect(c.hits).toBe(2);
    expect(c.lookups).toBe(4);
  });

  it('evicts the oldest entry when full; a hit does not reorder', () => {
    const c = new TokenCache(2, 60_000, 0);
    c.set('a', claims(1000), 0);
    c.set('b', claims(1000), 0);
    expect(c.get('a', 1)).toBeDefined();
    c.set('c', claims(1000), 0);
    expect(c.get('a', 1)).toBeUndefined();
    expect(c.get('b', 1)).toBeDefined();
    expect(c.get('c', 1)).toBeDefined();
  });
});

describe('TokenCache: a memory bound', () => {
  it('holds at most maxBytes, each entry weighing twice its token; the oldest go first; a token heavier than the bound is not kept', () => {
    const c = new TokenCache(1000, 60_000, 0, 10_000);
    const tok = (i: number, len: number) => `${i}`.padStart(len, 'x');
    for (let i = 0; i < 10; i++) c.set(tok(i, 1000), claims(1000), 0); // 2000 each
    expect(c.size).toBe(5);
    expect(c.weight).toBe(10_000);
    expect(c.get(tok(4, 1000), 1)).toBeUndefined();
    expect(c.get(tok(5, 1000), 1)).toBeDefined();
    c.set(tok(99, 4000), claims(1000), 0); // 8000: four of the old go
    expect(c.size).toBe(2);
    expect(c.weight).toBe(10_000);
    c.set(tok(7, 6000), claims(1000), 0); // 12000 > the bound: not cached, nothing evicted
    expect(c.size).toBe(2);
    // setting a token again replaces its entry, counted once
    c.set(tok(9, 1000), claims(1000), 0);
    expect(c.weight).toBe(10_000);
    // entries that go stale are subtracted
    const d = new TokenCache(10, 100, 0, 10_000);
    d.set('abc', claims(1000), 0);
    expect(d.get('abc', 100)).toBeUndefined();
    expect(d.weight).toBe(0);
  });
});

describe('the verifier with its cache', () => {
  const t = Date.now();
  const verifier = createTokenVerifier({ secrets: [SECRET], publicKeys: [], jwks: undefined, algorithms: undefined, issuer: undefined, audience: undefined, clockToleranceSec: 0, cacheSize: 100, cacheTtlMs: 600_000, maxTokenLength: 16384, maxTtlSec: 86400 });

  it('a hit returns the same claims object; only successes are cached', () => {
    const token = hs({ sub: 'cached', exp: Math.floor(t / 1000) + 60 });
    const first = verifier.verify(token);
    expect(verifier.verify(token)).toBe(first);
    expect(verifier.cache.hits).toBe(1);
    const bad = hs({ sub: 'bad' }, 'another-secret-that-is-long-enough-0123456789');
    for (let i = 0; i < 3; i++) expect(() => verifier.verify(bad)).toThrow();
    expect(verifier.cache.hits).toBe(1);
  });

  it('a cached token is refused once it expired (exp + tolerance), as a fresh verification would', async () => {
    const token = hs({ sub: 'soon', exp: Math.floor(Date.now() / 1000) + 1 });
    const first = verifier.verify(token);
    expect(verifier.verify(token)).toBe(first); // cached
    const expired = (): boolean => {
      try {
        verifier.verify(token);
        return false;
      } catch {
        return true;
      }
    };
    await until(expired, 3000);
    expect(Date.now()).toBeGreaterThanOrEqual((first as { exp: number }).exp * 1000);
  });
});

describe('TokenCache keys', () => {
  it('a token that copies another\'s last characters is a miss, never the other\'s claims', () => {
    const c = new TokenCache(10, 60_000, 0);
    const victim = 'h'.repeat(200) + 'SIGNATURE-END-0123456789abcdefghij';
    const forged = 'x'.repeat(200) + 'SIGNATURE-END-0123456789abcdefghij';
    c.set(victim, { sub: 'victim', tenantId: 't', jti: 'j', exp: 1000, permissions: [] }, 0);
    expect(c.get(forged, 1)).toBeUndefined();
    expect(c.get(victim, 1)?.sub).toBe('victim');
  });
});
