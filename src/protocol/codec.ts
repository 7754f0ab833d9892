// Wire protocol codecs: MessagePack binary frames and JSON text frames. Pure: no sockets, no I/O.
// Message shapes live in protocol/messages.ts; docs/PROTOCOL.md shows every message with examples.
//
// Decoding is strict and bounded (protocol/bounds.ts): plain MessagePack only (no extension type
// but the standard timestamp), maps with string keys, at most FrameLimits.maxDepth nested
// containers and maxItems values per frame, all checked without recursion before any value is
// built or re-encoded. Decoding stays O(frame bytes).
import { Packr, Unpackr } from 'msgpackr';
import { ReplyError, type ReplyErrorKind } from '../errors/codes.js';
import { JsonWalker, MsgpackScanner, type BoundsFailure, type FrameLimits } from './bounds.js';
import { SUBPROTOCOL, type ClientRequest, type Encoding, type RequestId, type ServerMessage } from './messages.js';

export { SUBPROTOCOL } from './messages.js';
export type { AckResults, ClientRequest, Encoding, RequestId, ServerMessage } from './messages.js';
export type { FrameLimits } from './bounds.js';

/** Why a frame was refused (counted by reason; the client gets BAD_REQUEST or UNKNOWN_TYPE). */
export type RejectReason = BoundsFailure | 'shape' | 'unknown-type';

export type Decoded =
  | { readonly ok: true; readonly req: ClientRequest; /** `data` holds MessagePack bin values */ readonly binary: boolean }
  | { readonly ok: false; readonly ref: RequestId | null; readonly error: ReplyErrorKind; readonly reason: RejectReason };

// Plain MessagePack out: no records, no bundled strings, no msgpackr-only extensions on the wire,
// so any MessagePack library can speak the protocol.
const packr = new Packr({ useRecords: false, bundleStrings: false, moreTypes: false, encodeUndefinedAsNil: true });
const unpackr = new Unpackr({ useRecords: false, bundleStrings: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

/** MessagePack of a message (server pushes and replies; client requests too, for docs and tests). */
export function encodeMsgpack(msg: ServerMessage | ClientRequest): Buffer {
  return packr.pack(msg);
}

// Binary values (MessagePack bin, whatever byte-array type the decoder returns) reach JSON clients
// as base64 strings. The replacer reads the holder's original value: JSON.stringify has already
// applied Buffer's toJSON ({type:'Buffer',data}) to `v`, and a plain Uint8Array has no toJSON.
function binaryReplacer(this: unknown, key: string, v: unknown): unknown {
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Uint8Array) return Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64');
  return v;
}

/** JSON text of a message; `binary`: the message may hold byte arrays (only then the slower replacer runs). */
export function encodeJson(msg: ServerMessage | ClientRequest, binary = false): string {
  return binary ? JSON.stringify(msg, binaryReplacer) : JSON.stringify(msg);
}

export function encode(encoding: Encoding, msg: ServerMessage): Buffer | string {
  return encoding === 'msgpack' ? encodeMsgpack(msg) : encodeJson(msg);
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Date);

function readId(v: unknown): RequestId | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && v.length > 0 && v.length <= 64) return v;
  return undefined;
}

export const MAX_ROOMS_PER_REQUEST = 100;

function readRooms(msg: Record<string, unknown>): string[] | undefined {
  const r = msg.rooms ?? (msg.room !== undefined ? [msg.room] : undefined);
  if (!Array.isArray(r) || r.length === 0 || r.length > MAX_ROOMS_PER_REQUEST) return undefined;
  for (const x of r) if (typeof x !== 'string') return undefined;
  return r as string[];
}

const bad = (ref: RequestId | null, reason: RejectReason): Decoded => ({ ok: false, ref, error: ReplyError.BAD_REQUEST, reason });

/** Validates a parsed frame into a typed request, or a reply error that keeps the socket open. */
export function toRequest(value: unknown, binary = false): Decoded {
  if (!isObject(value)) return bad(null, 'shape');
  const id = readId(value.id);
  if (id === undefined) return bad(null, 'shape');
  switch (value.type) {
    case 'join':
    case 'leave': {
      const rooms = readRooms(value);
      return rooms ? { ok: true, req: { type: value.type, id, rooms }, binary: false } : bad(id, 'shape');
    }
    case 'publish': {
      if (typeof value.room !== 'string' || !('data' in value)) return bad(id, 'shape');
      if (value.echo !== undefined && typeof value.echo !== 'boolean') return bad(id, 'shape');
      return { ok: true, req: { type: 'publish', id, room: value.room, data: value.data, echo: value.echo === true }, binary };
    }
    case 'presence':
      return typeof value.room === 'string' ? { ok: true, req: { type: 'presence', id, room: value.room }, binary: false } : bad(id, 'shape');
    case 'token:refresh':
      return typeof value.token === 'string' && value.token.length > 0 ? { ok: true, req: { type: 'token:refresh', id, token: value.token }, binary: false } : bad(id, 'shape');
    case 'ping':
      return { ok: true, req: { type: 'ping', id }, binary: false };
    default:
      return { ok: false, ref: id, error: ReplyError.UNKNOWN_TYPE, reason: 'unknown-type' };
  }
}

/** Frame bytes -> typed request, within the limits it was built with. One per gateway (it reuses its stacks). */
export class Decoder {
  private readonly scanner: MsgpackScanner;
  private readonly walker: JsonWalker;

  constructor(limits: FrameLimits) {
    this.scanner = new MsgpackScanner(limits);
    this.walker = new JsonWalker(limits);
  }

  /** 'wrong-frame-type' for text on msgpack or binary on JSON. Reads `frame` synchronously only. */
  decode(encoding: Encoding, frame: ArrayBuffer | Uint8Array, isBinary: boolean): Decoded | 'wrong-frame-type' {
    if ((encoding === 'msgpack') !== isBinary) return 'wrong-frame-type';
    const bytes = frame instanceof Uint8Array ? frame : new Uint8Array(frame);
    // uWS's ArrayBuffer is only valid during its callback: both paths read it here and now
    // (msgpackr's bin values are views of it, used only by the synchronous re-encoding of a publish).
    return encoding === 'msgpack' ? this.msgpack(bytes) : this.json(bytes);
  }

  private msgpack(bytes: Uint8Array): Decoded {
    const scan = this.scanner.scan(bytes);
    if (!scan.ok) return bad(scan.id === undefined ? null : (readId(scan.id) ?? null), scan.reason);
    let value: unknown;
    try {
      value = unpackr.unpack(bytes);
    } catch {
      return bad(null, 'malformed');
    }
    return toRequest(value, scan.binary);
  }

  private json(bytes: Uint8Array): Decoded {
    let value: unknown;
    try {
      value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    } catch {
      return bad(null, 'malformed');
    }
    const failure = this.walker.check(value);
    if (failure) return bad(isObject(value) ? (readId(value.id) ?? null) : null, failure);
    return toRequest(value);
  }
}

export interface Negotiated {
  readonly encoding: Encoding;
  /** our subprotocol as offered, or undefined when the client offered none (msgpack by default) */
  readonly protocol: string | undefined;
}
// three possible answers, built once (one per upgrade otherwise)
const MSGPACK_CHOSEN: Negotiated = Object.freeze({ encoding: 'msgpack', protocol: SUBPROTOCOL.msgpack });
const JSON_CHOSEN: Negotiated = Object.freeze({ encoding: 'json', protocol: SUBPROTOCOL.json });
const DEFAULT_CHOSEN: Negotiated = Object.freeze({ encoding: 'msgpack', protocol: undefined });

/** Chooses our subprotocol from the client's offer; bearer.* entries are never chosen. */
export function negotiate(offered: readonly string[]): Negotiated | undefined {
  let sawOther = false;
  for (const p of offered) {
    if (p === SUBPROTOCOL.msgpack) return MSGPACK_CHOSEN;
    if (p === SUBPROTOCOL.json) return JSON_CHOSEN;
    if (!p.startsWith('bearer.')) sawOther = true;
  }
  if (sawOther) return undefined; // offered subprotocols, none of them ours
  return DEFAULT_CHOSEN;
}
