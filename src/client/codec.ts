// Frames of the two subprotocols: wsgate.v1.json (text frames) and wsgate.v1.msgpack (binary
// frames, plain MessagePack). docs/PROTOCOL.md, "Subprotocols".
import { SUBPROTOCOL, type Encoding, type ServerMessage } from '../protocol/messages.js';

/** A MessagePack implementation: the SDK's own (./msgpack.ts) unless one is passed in. */
export interface MsgpackCodec {
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

export interface FrameCodec {
  readonly encoding: Encoding;
  readonly protocol: string;
  /** The frame for a request: a string (text frame) or bytes (binary frame). Throws when the value cannot be encoded. */
  encode(msg: unknown): string | Uint8Array;
  /** The message in a frame. Throws when the frame is of the wrong kind or malformed. */
  decode(frame: string | ArrayBuffer | Uint8Array): ServerMessage;
}

const checked = (v: unknown): ServerMessage => {
  if (v === null || typeof v !== 'object' || typeof (v as { type?: unknown }).type !== 'string') throw new TypeError('not a wsgate message');
  return v as ServerMessage;
};

function binaryAsBase64(this: Record<string, unknown>, key: string, v: unknown): unknown {
  const raw = this[key]; // before toJSON (a Node Buffer's turns it into { type, data })
  if (!(raw instanceof Uint8Array) && !(raw instanceof ArrayBuffer)) return v;
  const bytes = raw instanceof Uint8Array ? raw : new Uint8Array(raw);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function frameCodec(encoding: Encoding, msgpack: MsgpackCodec | undefined): FrameCodec {
  if (encoding === 'json') {
    return {
      encoding,
      protocol: SUBPROTOCOL.json,
      // Binary data travels as base64 strings, as the gateway passes msgpack bin on to JSON clients.
      encode: (msg) => JSON.stringify(msg, (msg as { type?: unknown }).type === 'publish' ? binaryAsBase64 : undefined),
      decode: (frame) => {
        if (typeof frame !== 'string') throw new TypeError('binary frame on wsgate.v1.json');
        return checked(JSON.parse(frame));
      },
    };
  }
  if (encoding !== 'msgpack') throw new TypeError(`unknown encoding ${String(encoding)}`);
  if (!msgpack) throw new TypeError('the msgpack encoding needs a MessagePack codec');
  return {
    encoding,
    protocol: SUBPROTOCOL.msgpack,
    encode: (msg) => msgpack.encode(msg),
    decode: (frame) => {
      if (typeof frame === 'string') throw new TypeError('text frame on wsgate.v1.msgpack');
      return checked(msgpack.decode(frame instanceof Uint8Array ? frame : new Uint8Array(frame)));
    },
  };
}

const utf8 = new TextEncoder();

/** True when a frame is larger than `max` bytes on the wire (strings are sent as UTF-8). */
export function frameTooLarge(frame: string | Uint8Array, max: number): boolean {
  if (typeof frame !== 'string') return frame.length > max;
  // A UTF-16 unit takes 1 to 3 UTF-8 bytes: only strings between max/3 and max units need counting.
  if (frame.length > max) return true;
  if (frame.length * 3 <= max) return false;
  return utf8.encode(frame).length > max;
}
