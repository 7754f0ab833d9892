// The three failure catalogues of the wire contract. Codes are stable strings/numbers and are
// never reused. The messages of the seed (No token provided, Token revoked, Authentication
// failed, User mismatch, Invalid token) are part of the contract and appear verbatim.

/**
 * Close codes (RFC 6455 private range 4000-4999, and the standard 1011). 40xx: terminal, do not
 * reconnect with the same token. 44xx: protocol violation, fix the client. 45xx and 1011:
 * transient, reconnect with backoff. Reasons are ASCII and at most 123 bytes.
 */
export const Close = {
  NO_TOKEN: { code: 4001, reason: 'No token provided', reconnect: false },
  AUTH_FAILED: { code: 4002, reason: 'Authentication failed', reconnect: false },
  TOKEN_REVOKED: { code: 4003, reason: 'Token revoked', reconnect: false },
  ORIGIN_FORBIDDEN: { code: 4004, reason: 'Origin not allowed', reconnect: false },
  BAD_SUBPROTOCOL: { code: 4005, reason: 'Unsupported subprotocol', reconnect: false },
  INVALID_TOKEN: { code: 4006, reason: 'Invalid token', reconnect: false },
  TOKEN_EXPIRED: { code: 4007, reason: 'Token expired', reconnect: true },
  WRONG_FRAME_TYPE: { code: 4401, reason: 'Wrong frame type for subprotocol', reconnect: false },
  SHUTDOWN: { code: 4500, reason: 'Server shutting down', reconnect: true },
  SLOW_CONSUMER: { code: 4501, reason: 'Slow consumer', reconnect: true },
  RATE_LIMITED: { code: 4502, reason: 'Rate limit exceeded', reconnect: true },
  UNAVAILABLE: { code: 4503, reason: 'Service unavailable', reconnect: true },
  TOO_MANY_CONNECTIONS: { code: 4508, reason: 'Too many connections', reconnect: true },
  /** A failure inside the gateway while handling this socket (counted in wsgate_internal_errors_total); only this socket is closed. */
  INTERNAL_ERROR: { code: 1011, reason: 'Internal error', reconnect: true },
} as const;
export type CloseKind = (typeof Close)[keyof typeof Close];

/** Refusals at the HTTP upgrade: status + JSON body { error, code }. */
export const Refusal = {
  /** No token in any enabled transport. */
  NO_TOKEN: { status: 401, code: 'NO_TOKEN', error: 'No token provided', close: Close.NO_TOKEN },
  /** Signature, algorithm, claims, expiry, issuer/audience: one answer, no detail for an attacker. */
  AUTH_FAILED: { status: 401, code: 'AUTH_FAILED', error: 'Authentication failed', close: Close.AUTH_FAILED },
  /** `<revokedPrefix><jti>` exists. */
  TOKEN_REVOKED: { status: 401, code: 'TOKEN_REVOKED', error: 'Token revoked', close: Close.TOKEN_REVOKED },
  /** Origin not in the allowlist (or a cookie token from an unlisted origin). */
  ORIGIN_FORBIDDEN: { status: 403, code: 'ORIGIN_FORBIDDEN', error: 'Origin not allowed', close: Close.ORIGIN_FORBIDDEN },
  /** Subprotocols offered, none of them ours. */
  BAD_SUBPROTOCOL: { status: 400, code: 'BAD_SUBPROTOCOL', error: 'Unsupported subprotocol', close: Close.BAD_SUBPROTOCOL },
  /** Connection caps per user or per tenant reached on this node, or across the deployment. */
  TOO_MANY_CONNECTIONS: { status: 429, code: 'TOO_MANY_CONNECTIONS', error: 'Too many connections', close: Close.TOO_MANY_CONNECTIONS },
  /** Revocation lookup failed or timed out (fail-closed), the node is draining, or it is full. Retry-After is set. */
  UNAVAILABLE: { status: 503, code: 'UNAVAILABLE', error: 'Service unavailable', close: Close.UNAVAILABLE },
  /** A failure inside the gateway while deciding this upgrade (counted in wsgate_internal_errors_total). */
  INTERNAL: { status: 500, code: 'INTERNAL', error: 'Internal error', close: Close.INTERNAL_ERROR },
} as const;
export type RefusalKind = (typeof Refusal)[keyof typeof Refusal];

/** Reply errors: the request failed, the connection stays open. Sent as { type: 'error', ref, code, message }. */
export const ReplyError = {
  BAD_REQUEST: { code: 'BAD_REQUEST', message: 'Malformed request' },
  UNKNOWN_TYPE: { code: 'UNKNOWN_TYPE', message: 'Unknown message type' },
  FORBIDDEN: { code: 'FORBIDDEN', message: 'Forbidden' },
  BAD_ROOM: { code: 'BAD_ROOM', message: 'Invalid room name' },
  TOO_MANY_ROOMS: { code: 'TOO_MANY_ROOMS', message: 'Room limit reached' },
  PAYLOAD_TOO_LARGE: { code: 'PAYLOAD_TOO_LARGE', message: 'Payload too large' },
  USER_MISMATCH: { code: 'USER_MISMATCH', message: 'User mismatch' },
  INVALID_TOKEN: { code: 'INVALID_TOKEN', message: 'Invalid token' },
  RATE_LIMITED: { code: 'RATE_LIMITED', message: 'Rate limit exceeded' },
  UNAVAILABLE: { code: 'UNAVAILABLE', message: 'Temporarily unavailable' },
} as const;
export type ReplyErrorKind = (typeof ReplyError)[keyof typeof ReplyError];


/** Seconds a client should wait before retrying a 503 upgrade. */
export const RETRY_AFTER_SEC = 2;
