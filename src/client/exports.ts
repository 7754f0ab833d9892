// What both entries (index.ts for browsers, node.ts for Node) export besides connect().
export { WsgateClient } from './client.js';
export type { ClientEvents, ClientOptions, ClientState, ReconnectOptions, ReplyOf, RequestBody, Session, StateChange } from './client.js';
export { ClientErrorCode, WsgateError } from './errors.js';
export type { Refusal, WsgateErrorCode, WsgateErrorDetails } from './errors.js';
export type { MsgpackCodec } from './codec.js';
export type { MsgpackExt } from './msgpack.js';
export { backoffDelay, decideClose, decideRefusal } from './policy.js';
export type { CloseAction, Decision } from './policy.js';
export type { OpenSocket, Socket, SocketEvents, WebSocketConstructor, WebSocketLike } from './transport.js';
export { BEARER_PREFIX, SUBPROTOCOL } from '../protocol/messages.js';
export type {
  AckMessage,
  AckResults,
  ClientRequest,
  ConnectedMessage,
  Encoding,
  ErrorMessage,
  PresenceMessage,
  RequestId,
  RequestType,
  RoomMessage,
  ServerMessage,
  ServerMessageType,
  TokenExpiringMessage,
  TokenRefreshedMessage,
} from '../protocol/messages.js';
