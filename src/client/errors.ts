// The one error class of the client SDK: every rejected request and every `error` event carries
// a stable string `code`. Reply errors keep the gateway's codes (src/errors/codes.ts); the codes
// below are the client's own, each with a line saying when it happens. Codes are never reused.
import type { ReplyErrorKind } from '../errors/codes.js';
import type { RequestId } from '../protocol/messages.js';

/** Codes the client itself raises. */
export const ClientErrorCode = {
  /** No reply within `requestTimeoutMs` of the call (time spent queued included). */
  TIMEOUT: 'TIMEOUT',
  /** The socket closed while the request was in flight; the gateway may or may not have handled it. */
  DISCONNECTED: 'DISCONNECTED',
  /** The client is closed (by close(), a terminal close code, or after its last retry). */
  CLOSED: 'CLOSED',
  /** Not connected and `offline: 'fail'`. */
  NOT_CONNECTED: 'NOT_CONNECTED',
  /** Not connected and `maxQueued` requests already wait. */
  QUEUE_FULL: 'QUEUE_FULL',
  /** The request's frame is larger than `maxFrameBytes`; it was not sent (the gateway would drop the socket). */
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE',
  /** The request could not be encoded (e.g. a bigint in JSON, a cycle). */
  ENCODE_FAILED: 'ENCODE_FAILED',
  /** A frame from the gateway could not be decoded; it was ignored. */
  DECODE_FAILED: 'DECODE_FAILED',
  /** getToken threw or rejected. */
  TOKEN_SOURCE_FAILED: 'TOKEN_SOURCE_FAILED',
  /** token:expiring arrived but getToken returned the token in use; retried until exp. */
  TOKEN_NOT_RENEWED: 'TOKEN_NOT_RENEWED',
  /** A room joined before a reconnect could not be joined again (`room` says which); it is forgotten. */
  REJOIN_FAILED: 'REJOIN_FAILED',
  /** The upgrade was refused with an HTTP status (Node only: browsers cannot read it); see `refusal`. */
  REFUSED: 'REFUSED',
  /** The WebSocket could not be created (bad URL, invalid token characters for a subprotocol). */
  SOCKET_FAILED: 'SOCKET_FAILED',
} as const;

export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** Every code a WsgateError can carry: the gateway's reply errors and the client's own. */
export type WsgateErrorCode = ReplyErrorKind['code'] | ClientErrorCode;

/** An upgrade refused with an HTTP status: `{ error, code }` from the body (docs/PROTOCOL.md). */
export interface Refusal {
  readonly status: number;
  /** the body's `code`, e.g. AUTH_FAILED; empty when the body was not the gateway's */
  readonly code: string;
  /** the body's `error`, e.g. Authentication failed */
  readonly error: string;
  /** Retry-After in seconds, when the gateway sent one (429, 503) */
  readonly retryAfterSec: number | undefined;
}

export interface WsgateErrorDetails {
  /** the request this error answers, if any */
  readonly ref?: RequestId | null;
  /** the request type this error answers, if any */
  readonly request?: string;
  /** the room concerned (REJOIN_FAILED) */
  readonly room?: string;
  /** the HTTP refusal (REFUSED) */
  readonly refusal?: Refusal;
  /** the close code that ended the socket or the client (DISCONNECTED, CLOSED) */
  readonly closeCode?: number;
  readonly cause?: unknown;
}

export class WsgateError extends Error implements WsgateErrorDetails {
  readonly ref?: RequestId | null;
  readonly request?: string;
  readonly room?: string;
  readonly refusal?: Refusal;
  readonly closeCode?: number;

  constructor(
    /** a reply error code from the gateway (FORBIDDEN, ...) or a ClientErrorCode */
    readonly code: WsgateErrorCode | (string & {}),
    message: string,
    details: WsgateErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'WsgateError';
    if (details.ref !== undefined) this.ref = details.ref;
    if (details.request !== undefined) this.request = details.request;
    if (details.room !== undefined) this.room = details.room;
    if (details.refusal !== undefined) this.refusal = details.refusal;
    if (details.closeCode !== undefined) this.closeCode = details.closeCode;
  }
}
