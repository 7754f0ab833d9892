// The close-code policy and the backoff (src/client/policy.ts), and docs/CLIENT.md's tables of them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { backoffDelay, decideClose, decideRefusal } from '../../src/client/policy.js';
import { refusalCloseCode } from '../../src/client/node.js';
import { Close, Refusal } from '../../src/errors/codes.js';

const doc = readFileSync(new URL('../../docs/CLIENT.md', import.meta.url), 'utf8');
const ACTION = { reconnect: 'reconnect', 'new token': 'new-token', stop: 'stop' } as const;

describe('close-code policy', () => {
  const rows = [...doc.matchAll(/^\| (\d{4}) \| [^|]+ \| (reconnect|new token|stop)\b([^|]*)\|$/gm)].map((m) => ({ code: Number(m[1]), action: ACTION[m[2] as keyof typeof ACTION], note: m[3]! }));

  it('docs/CLIENT.md lists every close code of the gateway, each with what decideClose does', () => {
    expect(rows.length).toBeGreaterThanOrEqual(20);
    for (const c of Object.values(Close)) expect(rows.map((r) => r.code), String(c.code)).toContain(c.code);
    for (const r of rows) expect(decideClose(r.code).action, String(r.code)).toBe(r.action);
    for (const r of rows.filter((x) => /no sooner than 2 s/.test(x.note))) expect(decideClose(r.code).minDelayMs).toBe(2000);
  });

  it('agrees with the gateway catalogue: what it marks terminal never reconnects with the same token', () => {
    for (const c of Object.values(Close)) expect(decideClose(c.code).action === 'reconnect', String(c.code)).toBe(c.reconnect);
  });

  it('ranges: other 40xx and 44xx stop, other 45xx and unknown codes reconnect', () => {
    expect(decideClose(4099).action).toBe('stop');
    expect(decideClose(4450).action).toBe('stop');
    expect(decideClose(4599).action).toBe('reconnect');
    expect(decideClose(4200).action).toBe('reconnect');
    expect(decideClose(1014).action).toBe('reconnect');
  });

  it('refused upgrades (Node): 401 new token, 429/5xx after Retry-After, other 4xx stop; each maps to its close-mode code', () => {
    const r = (status: number, code = '', retryAfterSec?: number) => ({ status, code, error: '', retryAfterSec });
    expect(decideRefusal(r(401))).toEqual({ action: 'new-token', minDelayMs: 0 });
    expect(decideRefusal(r(429, 'TOO_MANY_CONNECTIONS', 2))).toEqual({ action: 'reconnect', minDelayMs: 2000 });
    expect(decideRefusal(r(503, 'UNAVAILABLE', 2))).toEqual({ action: 'reconnect', minDelayMs: 2000 });
    expect(decideRefusal(r(502))).toEqual({ action: 'reconnect', minDelayMs: 0 });
    for (const s of [400, 403, 404, 418]) expect(decideRefusal(r(s)).action).toBe('stop');
    for (const k of Object.values(Refusal)) {
      expect(refusalCloseCode(r(k.status, k.code)), k.code).toBe(k.close.code);
      // The close-mode code and the HTTP status lead to the same decision.
      expect(decideRefusal(r(k.status, k.code)).action, k.code).toBe(decideClose(k.close.code).action);
    }
    expect(refusalCloseCode(r(502, ''))).toBe(1006);
  });
});

describe('backoff with full jitter', () => {
  const b = { baseDelayMs: 500, maxDelayMs: 30_000 };

  it('is uniform over [0, min(max, base * 2^attempt)]', () => {
    expect(backoffDelay(b, 0, () => 0)).toBe(0);
    expect(backoffDelay(b, 0, () => 0.999)).toBe(499);
    expect(backoffDelay(b, 3, () => 0.5)).toBe(2000);
    expect(backoffDelay(b, 10, () => 0.999)).toBe(29_970);
    expect(backoffDelay(b, 1e6, () => 0.5)).toBe(15_000);
    const samples = Array.from({ length: 2000 }, () => backoffDelay(b, 2));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...samples)).toBeLessThan(2000);
    const mean = samples.reduce((a, x) => a + x, 0) / samples.length;
    expect(mean).toBeGreaterThan(800); // uniform on [0, 2000): mean 1000
    expect(mean).toBeLessThan(1200);
  });
});
