// The socket the client drives, and how it is opened. The client core never names a WebSocket
// implementation: the browser entry (index.ts) opens the platform's WebSocket with the token in
// the subprotocol list, the Node entry (node.ts) opens the `ws` package's with an Authorization
// header and reads refusals. No DOM types: this compiles against plain ES and runs anywhere.
import { BEARER_PREFIX } from '../protocol/messages.js';
import type { Refusal } from './errors.js';

/** What the client needs of an open (or opening) socket. */
export interface Socket {
  send(data: string | Uint8Array): void;
  /** Starts a close (idempotent). A close event follows. */
  close(code?: number, reason?: string): void;
  /** Drops the connection without a closing handshake, where the platform can (Node). */
  terminate?(): void;
}

export interface SocketEvents {
  open(): void;
  /** A text frame arrives as a string, a binary frame as bytes. */
  message(data: string | ArrayBuffer | Uint8Array): void;
  /**
   * The socket ended, with its close code. An upgrade refused with an HTTP status, when the platform
   * can tell (Node), ends with the refusal and the close code the gateway's close mode would have sent.
   */
  close(code: number, reason: string, refusal?: Refusal): void;
}

/** Opens a socket to `url` offering `protocol`, authenticated with `token`. May throw (bad URL). */
export type OpenSocket = (url: string, protocol: string, token: string, events: SocketEvents) => Socket;

/** The standard WebSocket API, as much of it as the client uses (browsers, Deno, Bun, Node >= 22). */
export interface WebSocketLike {
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/**
 * A standard WebSocket: browsers cannot set headers, so the token rides in the subprotocol list
 * as `bearer.<token>` next to ours; the gateway never echoes it back.
 */
export function standardSocket(WebSocketImpl: WebSocketConstructor): OpenSocket {
  return (url, protocol, token, events) => {
    const ws = new WebSocketImpl(url, [protocol, BEARER_PREFIX + token]);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => events.open();
    ws.onmessage = (ev) => events.message(ev.data as string | ArrayBuffer);
    // A failed socket fires error then close (1006); the close carries all a page can know.
    ws.onerror = () => undefined;
    ws.onclose = (ev) => events.close(ev.code, ev.reason);
    return {
      send: (data) => ws.send(data),
      close: (code, reason) => {
        try {
          ws.close(code, reason);
        } catch {
          // already closing
        }
      },
    };
  };
}
