// Wire protocol: message shapes and the two codecs (MessagePack binary frames, JSON text
// frames). Pure: no sockets, no I/O. See docs/PROTOCOL.md for every message with examples.
import { Packr, Unpackr } from 'msgpackr';
import { ReplyError, type ReplyErrorKind } from '../errors/codes.js';

import type { ClientRequest, Encoding, RequestId, ServerMessage } from './messages.js';

export { SUBPROTOCOL } from './messages.js';
export type { AckResults, ClientRequest, Encoding, RequestId, ServerMessage } from './messages.js';
import { SUBPROTOCOL } from './messages.js';

export type Decoded =
  | { readonly ok: true; readonly req: ClientRequest }
  | { readonly ok: false; readonly ref: RequestId | null; readonly error: ReplyErrorKind };

// Plain MessagePack: no records, no bundled strings, no msgpackr-only extensions on the wire,
// so any MessagePack library can speak the protocol.
const packr = new Packr({ useRecords: false, bundleStrings: false, moreTypes: false, encodeUndefinedAsNil: true });
const unpackr = new Unpackr({ useRecords: false, bundleStrings: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

export function encodeMsgpack(msg: ServerMessage | Record<string, unknown>): Buffer {
  return packr.pack(msg);
}

// Binary values (msgpack bin) reach JSON clients as base64 strings.
const jsonReplacer = (_k: string, v: unknown): unknown => {
  if (v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
    return Buffer.from((v as { data: number[] }).data).toString('base64');
  }
  return v;
};

export function encodeJson(msg: ServerMessage | Record<string, unknown>): string {
  // Only published data can carry binary; a replacer slows every other message's stringify.
  return msg.type === 'message' ? JSON.stringify(msg, jsonReplacer) : JSON.stringify(msg);
}

export function encode(encoding: Encoding, msg: ServerMessage): Buffer | string {
  return encoding === 'msgpack' ? encodeMsgpack(msg) : encodeJson(msg);
}

/** Parses a frame's bytes into a plain value, or undefined when they are not valid for the encoding. */
function parseFrame(encoding: Encoding, frame: ArrayBuffer | Uint8Array): unknown {
  const bytes = frame instanceof Uint8Array ? frame : new Uint8Array(frame);
  try {
    // Both parsers read the bytes synchronously: uWS's ArrayBuffer is only valid during the callback.
    if (encoding === 'msgpack') return unpackr.unpack(bytes);
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);

function readId(v: unknown): RequestId | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && v.length > 0 && v.length <= 64) return v;
  return undefined;
}

const MAX_ROOMS_PER_REQUEST = 100;

function readRooms(msg: Record<string, unknown>): string[] | undefined {
  const r = msg.rooms ?? (msg.room !== undefined ? [msg.room] : undefined);
  if (!Array.isArray(r) || r.length === 0 || r.length > MAX_ROOMS_PER_REQUEST) return undefined;
  for (const x of r) if (typeof x !== 'string') return undefined;
  return r as string[];
}

/** Validates a parsed frame into a typed request, or a reply error that keeps the socket open. */
export function toRequest(value: unknown): Decoded {
  if (!isObject(value)) return { ok: false, ref: null, error: ReplyError.BAD_REQUEST };
  const id = readId(value.id);
  if (id === undefined) return { ok: false, ref: null, error: ReplyError.BAD_REQUEST };
  const bad = { ok: false, ref: id, error: ReplyError.BAD_REQUEST } as const;
  switch (value.type) {
    case 'join':
    case 'leave': {
      const rooms = readRooms(value);
      return rooms ? { ok: true, req: { type: value.type, id, rooms } } : bad;
    }
    case 'publish': {
      if (typeof value.room !== 'string' || !('data' in value)) return bad;
      if (value.echo !== undefined && typeof value.echo !== 'boolean') return bad;
      return { ok: true, req: { type: 'publish', id, room: value.room, data: value.data, echo: value.echo === true } };
    }
    case 'presence':
      return typeof value.room === 'string' ? { ok: true, req: { type: 'presence', id, room: value.room } } : bad;
    case 'token:refresh':
      return typeof value.token === 'string' && value.token.length > 0 ? { ok: true, req: { type: 'token:refresh', id, token: value.token } } : bad;
    case 'ping':
      return { ok: true, req: { type: 'ping', id } };
    default:
      return { ok: false, ref: id, error: ReplyError.UNKNOWN_TYPE };
  }
}

/** Frame -> typed request or reply error; 'wrong-frame-type' for text on msgpack or binary on JSON. */
export function decode(encoding: Encoding, frame: ArrayBuffer | Uint8Array, isBinary: boolean): Decoded | 'wrong-frame-type' {
  if ((encoding === 'msgpack') !== isBinary) return 'wrong-frame-type';
  return toRequest(parseFrame(encoding, frame));
}

/** Chooses our subprotocol from the client's offer; bearer.* entries are never chosen. */
export function negotiate(offered: readonly string[]): { encoding: Encoding; protocol: string | undefined } | undefined {
  let sawOther = false;
  for (const p of offered) {
    if (p === SUBPROTOCOL.msgpack) return { encoding: 'msgpack', protocol: p };
    if (p === SUBPROTOCOL.json) return { encoding: 'json', protocol: p };
    if (!p.startsWith('bearer.')) sawOther = true;
  }
  if (sawOther) return undefined; // offered subprotocols, none of them ours
  return { encoding: 'msgpack', protocol: undefined };
}
