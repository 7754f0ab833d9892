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
  /** Closed through the server API (POST /v1/connections/disconnect or /v1/users/disconnect); do not come back by yourself. */
  DISCONNECTED: { code: 4009, reason: 'Disconnected by the server', reconnect: false },
  WRONG_FRAME_TYPE: { code: 4401, reason: 'Wrong frame type for subprotocol', reconnect: false },
  SHUTDOWN: { code: 4500, reason: 'Server shutting down', reconnect: true },
  SLOW_CONSUMER: { code: 4501, reason: 'Slow consumer', reconnect: true },
  RATE_LIMITED: { code: 4502, reason: 'Rate limit exceeded', reconnect: true },
  UNAVAILABLE: { code: 4503, reason: 'Service unavailable', reconnect: true },
  TOO_MANY_CONNECTIONS: { code: 4508, reason: 'Too many connections', reconnect: true },
  /** Closed through the server API with `reconnect: true` (moving clients to other nodes, say). */
  RECONNECT: { code: 4509, reason: 'Reconnect requested', reconnect: true },
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
  /** Revocation lookup failed or timed out (fail-closed), or the node is full. Retry-After is set. */
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

/**
 * Answers of the server API (docs/API.md): an HTTP status and the JSON body { error, code }, the
 * shape of the upgrade refusals. Auth errors reuse the refusal messages.
 */
export const AdminError = {
  NO_TOKEN: { status: 401, code: 'NO_TOKEN', error: 'No token provided' },
  /** Not one of WSGATE_ADMIN_KEYS, and not a JWT that verifies as a server-API token (client tokens never do). */
  AUTH_FAILED: { status: 401, code: 'AUTH_FAILED', error: 'Authentication failed' },
  NOT_FOUND: { status: 404, code: 'NOT_FOUND', error: 'Not found' },
  METHOD_NOT_ALLOWED: { status: 405, code: 'METHOD_NOT_ALLOWED', error: 'Method not allowed' },
  /** The body is larger than the route allows. */
  PAYLOAD_TOO_LARGE: { status: 413, code: 'PAYLOAD_TOO_LARGE', error: 'Payload too large' },
  /** Not JSON, not an object, too deep or too many values, an unknown field, a field of the wrong type, a missing field. */
  BAD_REQUEST: { status: 400, code: 'BAD_REQUEST', error: 'Malformed request' },
  BAD_TENANT: { status: 400, code: 'BAD_TENANT', error: 'Invalid tenant' },
  BAD_USER: { status: 400, code: 'BAD_USER', error: 'Invalid user' },
  BAD_ROOM: { status: 400, code: 'BAD_ROOM', error: 'Invalid room name' },
  BAD_JTI: { status: 400, code: 'BAD_JTI', error: 'Invalid token id' },
  BAD_CONNECTION: { status: 400, code: 'BAD_CONNECTION', error: 'Invalid connection id' },
  BAD_TTL: { status: 400, code: 'BAD_TTL', error: 'Invalid ttlSec' },
  BAD_FROM: { status: 400, code: 'BAD_FROM', error: 'Invalid from' },
  /** Over the per-principal rate limit (WSGATE_ADMIN_RATE_LIMIT), or too many failed attempts from one address. Retry-After is set. */
  RATE_LIMITED: { status: 429, code: 'RATE_LIMITED', error: 'Rate limit exceeded' },
  /** Redis could not answer in time. Retry-After is set. */
  UNAVAILABLE: { status: 503, code: 'UNAVAILABLE', error: 'Service unavailable' },
  /** A failure inside the gateway (counted in wsgate_internal_errors_total, logged). */
  INTERNAL: { status: 500, code: 'INTERNAL', error: 'Internal error' },
} as const;
export type AdminErrorKind = (typeof AdminError)[keyof typeof AdminError];

/** Seconds a client should wait before retrying a 503 upgrade. */
export const RETRY_AFTER_SEC = 2;
