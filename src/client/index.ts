// wsgate/client for browsers and every runtime with a standard WebSocket (Deno, Bun, workers):
// the token rides in the subprotocol list as `bearer.<token>`. Node resolves wsgate/client to
// ./node.ts instead (the `ws` package, Authorization header); this file never imports `ws`, so
// the browser bundle (scripts/build-client.ts) does not carry it.
import { WsgateClient, type ClientOptions } from './client.js';
import { decode, encode } from './msgpack.js';
import { standardSocket, type WebSocketConstructor } from './transport.js';

export interface ConnectOptions extends ClientOptions {
  /** the WebSocket implementation (default: globalThis.WebSocket) */
  readonly WebSocket?: WebSocketConstructor;
}

/** Opens a client: it connects at once and keeps a session up until close(). */
export function connect(options: ConnectOptions): WsgateClient {
  const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WebSocketImpl) throw new TypeError('no WebSocket in this runtime: pass options.WebSocket');
  return new WsgateClient(options, standardSocket(WebSocketImpl), { encode, decode });
}

export * from './exports.js';
