// What the client does after a socket ends: the close-code policy and the backoff. Pure; the
// codes come from the gateway's own catalogue (src/errors/codes.ts), so the two cannot drift.
// docs/CLIENT.md carries this table; test/client/policy.test.ts keeps them in step.
import { Close, RETRY_AFTER_SEC } from '../errors/codes.js';
import type { Refusal } from './errors.js';

/**
 * - `reconnect`: transient; reconnect with backoff (getToken is called again).
 * - `new-token`: terminal for the token that was refused; reconnect only if getToken yields a
 *   different token, and only once in a row (a second such end without a session in between stops).
 * - `stop`: do not reconnect.
 */
export type CloseAction = 'reconnect' | 'new-token' | 'stop';

export interface Decision {
  readonly action: CloseAction;
  /** least delay before the next attempt (Retry-After), in ms */
  readonly minDelayMs: number;
}

const NEW_TOKEN = new Set<number>([Close.NO_TOKEN.code, Close.AUTH_FAILED.code, Close.TOKEN_REVOKED.code, Close.INVALID_TOKEN.code]);
/** The gateway asks these to wait RETRY_AFTER_SEC before coming back (503 / 429 with Retry-After in HTTP mode). */
const RETRY_AFTER = new Set<number>([Close.UNAVAILABLE.code, Close.TOO_MANY_CONNECTIONS.code]);
/** Standard codes that mean the client spoke wrongly: reconnecting would repeat it. */
const STANDARD_STOP = new Set([1002, 1003, 1007, 1008, 1010]);

/** The decision for a socket that closed with `code` (after it was accepted, or a close-mode refusal). */
export function decideClose(code: number): Decision {
  const d = (action: CloseAction, minDelayMs = 0): Decision => ({ action, minDelayMs });
  if (NEW_TOKEN.has(code)) return d('new-token');
  if (code === Close.TOKEN_EXPIRED.code) return d('reconnect');
  if (RETRY_AFTER.has(code)) return d('reconnect', RETRY_AFTER_SEC * 1000);
  if (code >= 4000 && code < 4100) return d('stop'); // 4004 origin, 4005 subprotocol, and unknown 40xx
  if (code >= 4400 && code < 4500) return d('stop'); // protocol violation: fix the client
  if (code >= 4500 && code < 4600) return d('reconnect'); // 4500 drain/shutdown, 4501, 4502, ...
  if (STANDARD_STOP.has(code)) return d('stop');
  return d('reconnect'); // 1000, 1001, 1005, 1006 (network loss), 1009, 1011-1015, other codes
}

/** The decision for an upgrade refused with an HTTP status (Node; browsers only see 1006). */
export function decideRefusal(r: Refusal): Decision {
  const minDelayMs = (r.retryAfterSec ?? 0) * 1000;
  if (r.status === 401) return { action: 'new-token', minDelayMs };
  if (r.status === 429 || r.status >= 500) return { action: 'reconnect', minDelayMs };
  return { action: 'stop', minDelayMs }; // 400 subprotocol, 403 origin, 404 wrong path, other 4xx
}

export interface Backoff {
  /** delay of the first retry's window, in ms */
  readonly baseDelayMs: number;
  /** largest window, in ms */
  readonly maxDelayMs: number;
}

/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 * a uniform delay in [0, min(max, base * 2^attempt)], so a node's clients, dropped together by a
 * drain, come back spread over the window instead of in one wave.
 */
export function backoffDelay(b: Backoff, attempt: number, random: () => number = Math.random): number {
  const window = Math.min(b.maxDelayMs, b.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * window);
}
