// The fuzzer's WebSocket client: opens a socket with any mix of token transports, and reads
// every frame the gateway sends, so that the oracles can ask for "the reply", "a close", or
// "nothing of this kind arrived".
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

export type Msg = Record<string, unknown> & { type?: unknown; ref?: unknown; code?: unknown };

export type Event =
  | { readonly kind: 'msg'; readonly msg: Msg }
  | { readonly kind: 'close'; readonly code: number; readonly reason: string }
  | { readonly kind: 'undecodable'; readonly bytes: Buffer }
  | { readonly kind: 'silence' };

export const isReply = (m: Msg): boolean => m.type === 'ack' || m.type === 'error' || m.type === 'token:refreshed';

// The gateway writes `type` first: {"type":"message" / msgpack map, "type", "message"
const PUSH_PREFIXES = ['{"type":"message"', '{"type":"presence"', '{"type":"token:expiring"'].map((p) => Buffer.from(p));
const MP_PUSH = ['message', 'presence', 'token:expiring'].map((t) => Buffer.concat([Buffer.from([0xa4]), Buffer.from('type'), Buffer.from([0xa0 | t.length]), Buffer.from(t)]));
function isPush(d: Buffer): boolean {
  if (d[0] === 0x7b) return PUSH_PREFIXES.some((p) => d.subarray(0, p.length).equals(p));
  const body = d.subarray(d[0]! >= 0x80 && d[0]! <= 0x8f ? 1 : d[0] === 0xde ? 3 : 5);
  return MP_PUSH.some((p) => body.subarray(0, p.length).equals(p));
}

export interface OpenSpec {
  readonly url: string;
  readonly protocols?: readonly string[];
  readonly headers?: Record<string, string>;
  readonly query?: string;
  readonly timeoutMs?: number;
}

export type Opened =
  | { readonly ok: true; readonly sock: Sock; readonly connected: Msg }
  | { readonly ok: false; readonly status: number; readonly code?: string; readonly closeCode?: number; readonly error?: string };

export class Sock {
  private readonly events: Event[] = [];
  private waiter: { pred: (e: Event) => boolean; resolve: (e: Event) => void } | undefined;
  closed: { code: number; reason: string } | undefined;
  /** pushes (message, presence, token:expiring) are kept only when asked: pooled sockets drop them */
  keepPushes = true;

  constructor(
    readonly ws: WebSocket,
    readonly json: boolean,
    /** the gateway generation this socket belongs to */
    readonly gen: number,
  ) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      // pooled sockets drop pushes unread: a room's deep messages would cost more to parse than to send
      if (!this.keepPushes && isPush(data)) return;
      let msg: Msg;
      try {
        msg = (isBinary ? unpackr.unpack(data) : JSON.parse(data.toString('utf8'))) as Msg;
        if (msg === null || typeof msg !== 'object') throw new Error('not a map');
      } catch {
        return this.push({ kind: 'undecodable', bytes: Buffer.from(data) });
      }
      if (!this.keepPushes && !isReply(msg)) return;
      this.push({ kind: 'msg', msg });
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
      this.push({ kind: 'close', code, reason: this.closed.reason });
    });
    ws.on('error', () => undefined);
  }

  private push(e: Event): void {
    const w = this.waiter;
    if (w && (w.pred(e) || e.kind === 'close')) {
      this.waiter = undefined;
      w.resolve(e);
      return;
    }
    this.events.push(e);
    if (this.events.length > 10_000) this.events.splice(0, 5000);
  }

  get open(): boolean {
    return this.closed === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  send(data: Buffer | string, binary: boolean): void {
    this.ws.send(data, { binary });
  }

  /** The next event matching `pred` (or the close, or silence after `timeoutMs`); earlier events that do not match stay queued. */
  next(pred: (e: Event) => boolean, timeoutMs: number): Promise<Event> {
    const i = this.events.findIndex((e) => pred(e) || e.kind === 'close');
    if (i >= 0) {
      const e = this.events[i]!;
      if (e.kind !== 'close') this.events.splice(i, 1); // a close stays: every later wait sees it too
      return Promise.resolve(e);
    }
    if (this.closed) return Promise.resolve({ kind: 'close', code: this.closed.code, reason: this.closed.reason });
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        resolve({ kind: 'silence' });
      }, timeoutMs);
      this.waiter = {
        pred,
        resolve: (e) => {
          clearTimeout(t);
          if (e.kind === 'close') this.events.push(e);
          resolve(e);
        },
      };
    });
  }

  /** The next reply (ack, token:refreshed or error), or a close, or silence; undecodable frames count as replies. */
  reply(timeoutMs: number): Promise<Event> {
    return this.next((e) => e.kind === 'undecodable' || (e.kind === 'msg' && isReply(e.msg)), timeoutMs);
  }

  /** Pushes received so far that match `pred` (they stay queued). */
  pushes(pred: (m: Msg) => boolean): Msg[] {
    const out: Msg[] = [];
    for (const e of this.events) if (e.kind === 'msg' && pred(e.msg)) out.push(e.msg);
    return out;
  }

  /** Replies that arrived while nobody waited for one (taken off the queue). */
  strayReplies(): Msg[] {
    const out: Msg[] = [];
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i]!;
      if (e.kind === 'msg' && isReply(e.msg)) {
        out.unshift(e.msg);
        this.events.splice(i, 1);
      }
    }
    return out;
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}

/** Opens a socket; resolves once the `connected` frame arrives, or with the refusal (HTTP status or close code). */
export function openSock(spec: OpenSpec, gen: number): Promise<Opened> {
  return new Promise((resolve) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(spec.query ? `${spec.url}?${spec.query}` : spec.url, [...(spec.protocols ?? [])], { headers: spec.headers ?? {}, maxPayload: 1 << 24, handshakeTimeout: spec.timeoutMs ?? 10_000 });
    } catch (e) {
      return resolve({ ok: false, status: -1, error: `client refused to send: ${(e as Error).message}` });
    }
    let done = false;
    const finish = (o: Opened): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!o.ok) ws.terminate();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ ok: false, status: 0, error: 'no connected frame in time' }), spec.timeoutMs ?? 10_000);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(body) as { code?: string }).code;
        } catch {
          /* not JSON (uWS's own 431) */
        }
        finish({ ok: false, status: res.statusCode ?? 0, ...(code ? { code } : {}) });
      });
      res.on('error', () => finish({ ok: false, status: res.statusCode ?? 0 }));
    });
    ws.on('error', (e) => finish({ ok: false, status: 0, error: e.message }));
    ws.once('open', () => {
      const sock = new Sock(ws, ws.protocol === 'wsgate.v1.json', gen);
      void sock.next((e) => e.kind === 'msg' && e.msg.type === 'connected', spec.timeoutMs ?? 10_000).then((e) => {
        if (e.kind === 'msg') finish({ ok: true, sock, connected: e.msg });
        else if (e.kind === 'close') finish({ ok: false, status: 101, closeCode: e.code });
        else finish({ ok: false, status: 101, error: 'no connected frame' });
      });
    });
  });
}

/** Encodes a request for a socket's encoding with the client library (well-formed values only). */
export function encodeFor(sock: Sock, msg: Record<string, unknown>): Buffer | string {
  return sock.json ? JSON.stringify(msg) : packr.pack(msg);
}

