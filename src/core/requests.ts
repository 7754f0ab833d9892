// Inbound frames: the rate limit first (every frame, valid or not, is charged before it is
// decoded), then the strict bounded decoder, then dispatch to the request's handler.
import { Close, ReplyError } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import type { Decoder } from '../protocol/codec.js';
import type { ClientRequest } from '../protocol/messages.js';
import type { Outbox } from './outbox.js';
import type { RateLimiter } from './ratelimit.js';
import type { TokenRefresh } from './refresh.js';
import type { RoomRequests } from './rooms.js';
import type { UserBudgets } from './user-budget.js';
import type { Session } from './session.js';

/**
 * A refused frame is answered RATE_LIMITED with its request id when the frame is small enough to
 * read it cheaply; larger refused frames are answered with ref null, unread. Until the 4502 close
 * (after WSGATE_RATE_BURST refusals in a row) this bounds the work a flood costs per frame.
 */
const PEEK_MAX_BYTES = 512;

export class Requests<S> {
  constructor(
    private readonly decoder: Decoder,
    private readonly limiter: RateLimiter,
    private readonly outbox: Outbox<S>,
    private readonly rooms: RoomRequests<S>,
    private readonly refresh: TokenRefresh<S>,
    private readonly users: UserBudgets,
    private readonly metrics: Metrics,
    private readonly now: () => number,
  ) {}

  message(s: Session<S>, frame: ArrayBuffer, isBinary: boolean): void {
    this.metrics.messagesIn++;
    if ((s.encoding === 'msgpack') !== isBinary) return this.outbox.end(s, Close.WRONG_FRAME_TYPE);
    const verdict = this.limiter.charge(s, frame.byteLength, this.now());
    if (verdict !== 'ok') return this.refused(s, frame, isBinary, verdict === 'close');
    const d = this.decoder.decode(s.encoding, frame, isBinary);
    if (d === 'wrong-frame-type') return this.outbox.end(s, Close.WRONG_FRAME_TYPE);
    if (!d.ok) {
      this.metrics.count(this.metrics.framesRejected, d.reason);
      return this.outbox.replyError(s, d.ref, d.error);
    }
    this.handle(s, d.req, frame.byteLength, d.binary);
  }

  /**
   * A ping or pong from the client: charged like any frame (uWS answers pings by itself, so a ping
   * flood would otherwise cost bandwidth and CPU for free). Refused ones get no reply; a flood
   * still ends with 4502.
   */
  control(s: Session<S>, bytes: number): void {
    const verdict = this.limiter.charge(s, bytes, this.now());
    if (verdict === 'ok') return;
    this.metrics.rateLimited++;
    if (verdict === 'close') {
      this.metrics.rateLimitCloses++;
      this.outbox.end(s, Close.RATE_LIMITED);
    }
  }

  private refused(s: Session<S>, frame: ArrayBuffer, isBinary: boolean, close: boolean): void {
    this.metrics.rateLimited++;
    if (close) {
      this.metrics.rateLimitCloses++;
      return this.outbox.end(s, Close.RATE_LIMITED);
    }
    let ref = null;
    if (frame.byteLength <= PEEK_MAX_BYTES) {
      const d = this.decoder.decode(s.encoding, frame, isBinary);
      if (d !== 'wrong-frame-type') ref = d.ok ? d.req.id : d.ref;
    }
    this.outbox.replyError(s, ref, ReplyError.RATE_LIMITED);
  }

  private handle(s: Session<S>, req: ClientRequest, frameBytes: number, binary: boolean): void {
    if (req.type === 'join' || req.type === 'leave') {
      // one token per room: a frame naming 100 rooms is 100 requests' worth of presence work
      const v = this.limiter.chargeMore(s, req.rooms.length - 1);
      if (v !== 'ok') {
        this.metrics.rateLimited++;
        if (v === 'close') {
          this.metrics.rateLimitCloses++;
          return this.outbox.end(s, Close.RATE_LIMITED);
        }
        return this.outbox.replyError(s, req.id, ReplyError.RATE_LIMITED);
      }
      // and from the user's budget on this node, shared by all its sockets (core/user-budget.ts)
      if (!this.users.takeRooms(s.tenantId, s.userId, req.rooms.length, this.now())) {
        this.metrics.rateLimited++;
        return this.outbox.replyError(s, req.id, ReplyError.RATE_LIMITED);
      }
    }
    switch (req.type) {
      case 'ping':
        return this.outbox.ack<'ping'>(s, req.id, { ts: this.now() });
      case 'join':
        return this.rooms.join(s, req.id, req.rooms);
      case 'leave':
        return this.rooms.leave(s, req.id, req.rooms);
      case 'publish':
        return this.rooms.publish(s, req.id, req.room, req.data, req.echo, frameBytes, binary);
      case 'presence':
        return this.rooms.presence(s, req.id, req.room);
      case 'token:refresh':
        return this.refresh.refresh(s, req.id, req.token);
    }
  }
}
