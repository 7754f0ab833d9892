// What the generator says to each target: wsgate (JSON or msgpack subprotocol), the bare uWS
// baseline (wsgate's JSON requests, no auth), the naive baseline (the same with the token), and
// the Socket.IO baseline (Engine.IO v4 over the websocket transport, Socket.IO packets with acks). Each turns requests into prebuilt frames and
// server frames into the few events the generator counts.
import { Packr, Unpackr } from 'msgpackr';
import { frame, OP_BINARY, OP_TEXT } from './wire.js';

export type Target = 'wsgate' | 'uws' | 'naive' | 'socketio';
export type Baseline = Exclude<Target, 'wsgate'>;
/** Every target, in report order: the subject first, bare uWS (the calibration) next. */
export const TARGETS: readonly Target[] = ['wsgate', 'uws', 'naive', 'socketio'];

export type Event =
  | { kind: 'ready' }
  | { kind: 'refused'; reason: string }
  | { kind: 'reply'; ref: number; ok: boolean; code: string | undefined }
  | { kind: 'message'; t: number }
  | { kind: 'send'; frame: Buffer }
  | { kind: 'other' };

export interface Dialect {
  readonly path: string;
  headers(token: string): Record<string, string>;
  join(id: number, room: string): Buffer;
  publish(id: number, room: string, t: number, pad: string): Buffer;
  ping(id: number): Buffer;
  refresh(id: number, token: string): Buffer;
  /** Decodes one server frame. */
  read(opcode: number, payload: Buffer, token: string): Event;
}

const OTHER: Event = { kind: 'other' };
/** How wsgate and the uWS baselines start a JSON delivery, and the field the generator puts first in its data. */
const MESSAGE_HEAD = Buffer.from('{"type":"message"');
const T_FIELD = Buffer.from('"data":{"t":');
const READY: Event = { kind: 'ready' };

function wsgateDialect(msgpack: boolean, withAuth: boolean): Dialect {
  const packr = new Packr({ useRecords: false });
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
  const enc = (m: Record<string, unknown>): Buffer => (msgpack ? frame(OP_BINARY, packr.pack(m)) : frame(OP_TEXT, JSON.stringify(m)));
  return {
    path: '/ws',
    headers: (token) => ({ ...(withAuth ? { Authorization: `Bearer ${token}` } : {}), 'Sec-WebSocket-Protocol': msgpack ? 'wsgate.v1.msgpack' : 'wsgate.v1.json' }),
    join: (id, room) => enc({ id, type: 'join', rooms: [room] }),
    publish: (id, room, t, pad) => enc({ id, type: 'publish', room, data: { t, pad } }),
    ping: (id) => enc({ id, type: 'ping' }),
    refresh: (id, token) => enc({ id, type: 'token:refresh', token }),
    read(_op, payload) {
      // Deliveries are most frames at fan-out saturation: read their send time without a full parse.
      if (!msgpack && payload.length > MESSAGE_HEAD.length && payload.compare(MESSAGE_HEAD, 0, MESSAGE_HEAD.length, 0, MESSAGE_HEAD.length) === 0) {
        const at = payload.indexOf(T_FIELD, MESSAGE_HEAD.length);
        if (at > 0) {
          const from = at + T_FIELD.length;
          let end = from;
          while (end < payload.length && payload[end] !== 0x2c /* , */ && payload[end] !== 0x7d /* } */) end++;
          return { kind: 'message', t: Number(payload.toString('latin1', from, end)) || 0 };
        }
      }
      let m: { type?: string; ref?: number; code?: string; data?: { t?: number } };
      try {
        m = (msgpack ? unpackr.unpack(payload) : JSON.parse(payload.toString())) as typeof m;
      } catch {
        return OTHER;
      }
      switch (m.type) {
        case 'connected':
          return READY;
        case 'ack':
        case 'token:refreshed':
          return { kind: 'reply', ref: m.ref!, ok: true, code: undefined };
        case 'error':
          return { kind: 'reply', ref: m.ref ?? -1, ok: false, code: m.code };
        case 'message':
          return { kind: 'message', t: m.data?.t ?? 0 };
        default:
          return OTHER;
      }
    },
  };
}

// Socket.IO 4 / Engine.IO 4: '0{...}' open, '40{auth}' connect, '40{sid}' ok / '44{...}' error,
// '42<ack>[event,...]' event with ack id, '43<ack>[...]' ack, '2'/'3' ping/pong.
const socketioDialect: Dialect = {
  path: '/socket.io/?EIO=4&transport=websocket',
  headers: () => ({}),
  join: (id, room) => frame(OP_TEXT, `42${id}["join",${JSON.stringify(room)}]`),
  publish: (id, room, t, pad) => frame(OP_TEXT, `42${id}["publish",${JSON.stringify({ room, data: { t, pad } })}]`),
  ping: (id) => frame(OP_TEXT, `42${id}["ping"]`),
  refresh: (id, token) => frame(OP_TEXT, `42${id}["token:refresh",${JSON.stringify(token)}]`),
  read(_op, payload, token) {
    const s = payload.toString();
    const c0 = s.charCodeAt(0);
    if (c0 === 48 /* 0 open */) return { kind: 'send', frame: frame(OP_TEXT, `40${JSON.stringify({ token })}`) };
    if (c0 === 50 /* 2 ping */) return { kind: 'send', frame: frame(OP_TEXT, '3') };
    if (c0 !== 52 /* 4 message */) return OTHER;
    const t = s.charCodeAt(1);
    if (t === 48 /* 40 connect */) return READY;
    if (t === 52 /* 44 connect_error */) {
      const m = /"message":"([^"]*)"/.exec(s);
      return { kind: 'refused', reason: m ? m[1]! : 'connect_error' };
    }
    if (t === 51 /* 43 ack */) {
      const open = s.indexOf('[');
      const ref = Number(s.slice(2, open));
      const body = s.slice(open);
      const err = /"error":"([^"]*)"/.exec(body);
      return { kind: 'reply', ref, ok: !err, code: err ? err[1] : undefined };
    }
    if (t === 50 /* 42 event */ && s.startsWith('42["message"')) {
      const m = /"t":(\d+(?:\.\d+)?)/.exec(s);
      return { kind: 'message', t: m ? Number(m[1]) : 0 };
    }
    return OTHER;
  },
};

export function dialectFor(target: Target, encoding: 'json' | 'msgpack'): Dialect {
  if (target === 'socketio') return socketioDialect;
  if (target === 'uws') return wsgateDialect(false, false);
  if (target === 'naive') return wsgateDialect(false, true);
  return wsgateDialect(encoding === 'msgpack', true);
}
