// The wire protocol's message shapes, shared by the server's codec (protocol/codec.ts) and the
// client SDK (src/client/). Types and constants only: no encoder, no I/O, nothing a browser
// bundle would not need. docs/PROTOCOL.md describes every message; a test keeps them in step.

export type Encoding = 'msgpack' | 'json';

export const SUBPROTOCOL = {
  msgpack: 'wsgate.v1.msgpack',
  json: 'wsgate.v1.json',
} as const;

/** The subprotocol entry prefix that carries a token from a browser: `bearer.<token>`. */
export const BEARER_PREFIX = 'bearer.';

/** A request id: a safe integer, or a string of 1 to 64 characters. Echoed back as `ref`. */
export type RequestId = number | string;

export type ClientRequest =
  | { readonly type: 'join'; readonly id: RequestId; readonly rooms: readonly string[] }
  | { readonly type: 'leave'; readonly id: RequestId; readonly rooms: readonly string[] }
  | { readonly type: 'publish'; readonly id: RequestId; readonly room: string; readonly data: unknown; readonly echo: boolean }
  | { readonly type: 'presence'; readonly id: RequestId; readonly room: string }
  | { readonly type: 'token:refresh'; readonly id: RequestId; readonly token: string }
  | { readonly type: 'ping'; readonly id: RequestId };

export type RequestType = ClientRequest['type'];

/** The `result` of the `ack` that answers each request type (token:refresh is answered by `token:refreshed`). */
export interface AckResults {
  join: { rooms: readonly string[] };
  leave: { rooms: readonly string[] };
  publish: { ts: number };
  presence: { room: string; users: readonly string[] };
  ping: { ts: number };
}

export interface ConnectedMessage {
  type: 'connected';
  connectionId: string;
  user: string;
  tenant: string;
  exp: number;
  permissions: readonly string[];
  node: string;
  protocol: string;
}

export interface AckMessage<R = AckResults[keyof AckResults]> {
  type: 'ack';
  ref: RequestId;
  result: R;
}

export interface TokenRefreshedMessage {
  type: 'token:refreshed';
  ref: RequestId;
  exp: number;
  permissions: readonly string[];
  /** rooms the new permissions no longer allow; they were left */
  left: readonly string[];
}

export interface ErrorMessage {
  type: 'error';
  /** the request's id; null when the frame had no usable id */
  ref: RequestId | null;
  code: string;
  message: string;
}

export interface RoomMessage {
  type: 'message';
  room: string;
  data: unknown;
  /** the publisher's `sub`; a publish through the server API: what its caller set, or '' (no sub is empty) */
  from: string;
  ts: number;
}

export interface PresenceMessage {
  type: 'presence';
  room: string;
  /** users who became present since the last notification (empty when `counts` is set) */
  joined: readonly string[];
  /** users who became absent since the last notification (empty when `counts` is set) */
  left: readonly string[];
  /** set instead of the lists when more than WSGATE_PRESENCE_NOTIFY_MAX_NAMES users joined and left in one flush: how many */
  counts?: { joined: number; left: number };
}

export interface TokenExpiringMessage {
  type: 'token:expiring';
  exp: number;
  /** seconds left until exp */
  in: number;
}

export type ServerMessage = ConnectedMessage | AckMessage | TokenRefreshedMessage | ErrorMessage | RoomMessage | PresenceMessage | TokenExpiringMessage;

export type ServerMessageType = ServerMessage['type'];
