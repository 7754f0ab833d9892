// Sending to one session: replies, pushes and closes, encoded in the session's encoding.
import { Close, type CloseKind, type ReplyErrorKind } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import { encode } from '../protocol/codec.js';
import type { AckResults, RequestId, ServerMessage } from '../protocol/messages.js';
import type { Faults, SocketPort } from './ports.js';
import type { Session } from './session.js';

export class Outbox<S> {
  /**
   * A session whose socket cannot even be closed (uWS says it is closed already: its close event
   * was lost, or its handling failed) is forgotten here: the Hub sets this to its own close, so a
   * dead session does not stay in the table, failing every sweep.
   */
  forget: (s: Session<S>) => void = () => undefined;

  constructor(
    private readonly port: SocketPort<S>,
    private readonly metrics: Metrics,
    private readonly faults: Faults,
  ) {}

  send(s: Session<S>, msg: ServerMessage): void {
    if (s.socket === undefined) return;
    this.sendFrame(s, encode(s.encoding, msg));
  }

  /** Sends bytes already encoded in the session's encoding. */
  sendFrame(s: Session<S>, frame: Buffer | string): void {
    if (s.socket === undefined) return;
    const r = this.port.send(s.socket, frame, s.encoding === 'msgpack');
    this.metrics.messagesOut++;
    if (r === 2) this.metrics.backpressureDrops++;
  }

  /** Runs `fn` corked on the session's socket: for sends outside a socket callback (after an await, from a timer). */
  corked(s: Session<S>, fn: () => void): void {
    if (s.socket !== undefined) this.port.cork(s.socket, fn);
  }

  /** Sends outside a socket callback: corked, one syscall. */
  sendLater(s: Session<S>, msg: ServerMessage): void {
    this.corked(s, () => this.send(s, msg));
  }

  replyError(s: Session<S>, ref: RequestId | null, e: ReplyErrorKind, later = false): void {
    this.metrics.replyErrors++;
    const msg: ServerMessage = { type: 'error', ref, code: e.code, message: e.message };
    if (later) this.sendLater(s, msg);
    else this.send(s, msg);
  }

  ack<T extends keyof AckResults>(s: Session<S>, ref: RequestId, result: AckResults[T], later = false): void {
    const msg: ServerMessage = { type: 'ack', ref, result };
    if (later) this.sendLater(s, msg);
    else this.send(s, msg);
  }

  end(s: Session<S>, kind: CloseKind): void {
    if (s.socket !== undefined) this.port.end(s.socket, kind.code, kind.reason);
  }

  /**
   * A request of this session failed where it should not have (a bug, or a library throwing):
   * reported (counted, logged with its stack), and this one socket is closed with 1011; every
   * other session keeps being served. Never throws.
   */
  fail(s: Session<S>, where: string, err: unknown): void {
    this.faults.report(where, err);
    try {
      this.end(s, Close.INTERNAL_ERROR);
    } catch (e) {
      this.faults.report(`${where}/close`, e);
      try {
        this.forget(s);
      } catch (e2) {
        this.faults.report(`${where}/forget`, e2);
      }
    }
  }
}
