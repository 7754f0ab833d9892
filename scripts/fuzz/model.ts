// What the documentation says the gateway must decide, written independently of src/: the
// permission grammar and room names of docs/PROTOCOL.md, the reply errors and close codes a
// request may end in. The oracles compare the gateway's answers with these. Pure.

export type Action = 'join' | 'publish' | 'presence';

const SEGMENT = /^[A-Za-z0-9_\-.:@]+$/;

/** docs/PROTOCOL.md#rooms: 1..max bytes of segments of [A-Za-z0-9_-.:@] separated by single "/". */
export function roomIsValid(room: string, maxBytes = 128): boolean {
  if (room.length === 0 || Buffer.byteLength(room) > maxBytes) return false;
  return room.split('/').every((s) => SEGMENT.test(s));
}

function patternMatches(pattern: string, room: string): boolean {
  const pat = pattern.split('/');
  const segs = room.split('/');
  for (let i = 0; i < pat.length; i++) {
    const p = pat[i]!;
    if (p === '**') return i === pat.length - 1 && segs.length > i; // one or more segments
    if (i >= segs.length) return false;
    if (p === '*') continue;
    if (!SEGMENT.test(p) || p !== segs[i]) return false;
  }
  return segs.length === pat.length;
}

function patternIsValid(pattern: string): boolean {
  const pat = pattern.split('/');
  return pat.every((p, i) => p === '*' || (p === '**' && i === pat.length - 1) || SEGMENT.test(p));
}

/**
 * docs/PROTOCOL.md#permissions: permission := action ":" pattern; an entry that does not parse
 * grants nothing. Each entry stands alone: nothing in one entry (a newline, say) can grant what
 * the entry itself does not.
 */
export function permits(permissions: readonly string[], action: Action, room: string): boolean {
  for (const entry of permissions) {
    const colon = entry.indexOf(':');
    if (colon <= 0) continue;
    const a = entry.slice(0, colon);
    const pattern = entry.slice(colon + 1);
    if (a !== action && a !== '*') continue;
    if (!patternIsValid(pattern)) continue;
    if (patternMatches(pattern, room)) return true;
  }
  return false;
}

/** Reply error codes of docs/PROTOCOL.md#reply-errors. */
export const REPLY_CODES = new Set(['BAD_REQUEST', 'UNKNOWN_TYPE', 'FORBIDDEN', 'BAD_ROOM', 'TOO_MANY_ROOMS', 'PAYLOAD_TOO_LARGE', 'USER_MISMATCH', 'INVALID_TOKEN', 'RATE_LIMITED', 'UNAVAILABLE']);

/**
 * Close codes a request may end in instead of its reply (docs/PROTOCOL.md#close-codes). 1011 is
 * let through here so that the oracle reports it as a failure of its own (no frame may cause an
 * internal error). Only for some frames: 4401 (the wrong frame kind), 1006 (over the payload limit,
 * or text that is not UTF-8: uWS drops the connection without a close frame, on both builds);
 * 4006 only after an INVALID_TOKEN reply.
 */
export const FRAME_CLOSES = new Set([1011]);
export const OVERSIZE_CLOSES = new Set([1006]);
export const INVALID_UTF8_CLOSES = new Set([1006]);
