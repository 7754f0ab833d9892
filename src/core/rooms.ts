// Room requests: join, leave, publish and the presence query. Rooms are tenant-scoped (room keys,
// rooms/rooms.ts); each join subscribes the socket to the room's uWS topic for its encoding and
// tells the presence tracker.
import { ReplyError } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import type { PresenceTracker } from '../presence/tracker.js';
import { encodeJson, encodeMsgpack } from '../protocol/codec.js';
import type { RequestId, ServerMessage } from '../protocol/messages.js';
import { roomKey, topicOf, validRoom } from '../rooms/rooms.js';
import type { FanOut } from './fanout.js';
import type { Outbox } from './outbox.js';
import type { SocketPort } from './ports.js';
import type { PresenceQueries } from './presence-queries.js';
import { withTimeout } from './timeout.js';
import { hasRoom, roomCount, roomList, withoutRoom, withRoom } from './room-set.js';
import type { Session } from './session.js';
import type { UserBudgets } from './user-budget.js';

/** A delivered message (either encoding) may be at most this many times WSGATE_MAX_PUBLISH_BYTES. */
export const EGRESS_FACTOR = 4;

/** Presence requests one session may have waiting for the store; more are answered RATE_LIMITED. */
export const PRESENCE_WAITING_PER_SESSION = 4;

export interface RoomLimits {
  readonly maxRooms: number;
  readonly maxRoomNameLength: number;
  /** bytes of a publish frame as received */
  readonly maxPublishBytes: number;
  /** how long a join's ack waits for its rooms' bus subscription */
  readonly lookupTimeoutMs: number;
}

export class RoomRequests<S> {
  constructor(
    private readonly limits: RoomLimits,
    private readonly port: SocketPort<S>,
    private readonly outbox: Outbox<S>,
    private readonly fanOut: FanOut<S>,
    private readonly tracker: PresenceTracker,
    private readonly queries: PresenceQueries,
    private readonly users: UserBudgets,
    private readonly metrics: Metrics,
    private readonly now: () => number,
  ) {}

  join(s: Session<S>, id: RequestId, rooms: readonly string[]): void {
    // All or nothing: every room is checked before any is joined.
    const adding = new Set<string>(); // a room named twice in one request is one room
    const keys = new Set<string>();
    for (const room of rooms) {
      if (!validRoom(room, this.limits.maxRoomNameLength)) return this.outbox.replyError(s, id, ReplyError.BAD_ROOM);
      if (!s.perms.can('join', room)) return this.outbox.replyError(s, id, ReplyError.FORBIDDEN);
      const key = roomKey(s.tenantId, room);
      keys.add(key);
      if (!hasRoom(s.rooms, key)) adding.add(key);
    }
    if (roomCount(s.rooms) + adding.size > this.limits.maxRooms) return this.outbox.replyError(s, id, ReplyError.TOO_MANY_ROOMS);
    for (const key of adding) {
      s.rooms = withRoom(s.rooms, key);
      this.port.subscribe(s.socket!, topicOf(key, s.encoding));
      this.tracker.join(key, s.userId);
    }
    // The ack waits for the bus to deliver these rooms here (a room new on this node is subscribed
    // first: one round trip, batched with the other joins of the turn), at most the lookup timeout.
    // the ack names each room once, as it was asked for (a room named twice is one room)
    const named = rooms.length > 1 ? [...new Set(rooms)] : rooms;
    const subscribed = this.fanOut.ready([...keys]);
    if (subscribed === undefined) return this.outbox.ack<'join'>(s, id, { rooms: named });
    withTimeout(subscribed, this.limits.lookupTimeoutMs, 'room subscription')
      .catch(() => undefined)
      .then(() => {
        if (!s.closed) this.outbox.ack<'join'>(s, id, { rooms: named }, true);
      })
      .catch((err: unknown) => this.outbox.fail(s, 'join', err));
  }

  /** Leaves one room (by key): unsubscribes and tells the tracker. */
  leaveRoom(s: Session<S>, key: string): void {
    s.rooms = withoutRoom(s.rooms, key);
    if (s.socket !== undefined) this.port.unsubscribe(s.socket, topicOf(key, s.encoding));
    this.tracker.leave(key, s.userId);
  }

  /** Every room of a closing session (its socket is gone: uWS unsubscribes it by itself). */
  leaveAll(s: Session<S>): void {
    for (const key of roomList(s.rooms)) this.tracker.leave(key, s.userId);
    s.rooms = undefined;
  }

  leave(s: Session<S>, id: RequestId, rooms: readonly string[]): void {
    for (const room of rooms) {
      if (!validRoom(room, this.limits.maxRoomNameLength)) return this.outbox.replyError(s, id, ReplyError.BAD_ROOM);
    }
    const left: string[] = [];
    for (const room of rooms) {
      const key = roomKey(s.tenantId, room);
      if (!hasRoom(s.rooms, key)) continue;
      this.leaveRoom(s, key);
      left.push(room);
    }
    this.outbox.ack<'leave'>(s, id, { rooms: left });
  }

  /** `frameBytes`: the request frame's size, checked before anything is encoded; `binary`: data holds byte arrays. */
  publish(s: Session<S>, id: RequestId, room: string, data: unknown, echo: boolean, frameBytes: number, binary: boolean): void {
    if (!validRoom(room, this.limits.maxRoomNameLength)) return this.outbox.replyError(s, id, ReplyError.BAD_ROOM);
    if (!s.perms.can('publish', room)) return this.outbox.replyError(s, id, ReplyError.FORBIDDEN);
    if (frameBytes > this.limits.maxPublishBytes) return this.outbox.replyError(s, id, ReplyError.PAYLOAD_TOO_LARGE);
    const ts = this.now();
    const msg: ServerMessage = { type: 'message', room, data, from: s.userId, ts };
    // Encoded once per encoding for every subscriber, here and on other nodes. The decoder bounded
    // `data`'s depth and size, so neither encoder can overflow the stack.
    const bin = encodeMsgpack(msg);
    const json = encodeJson(msg, binary);
    // What a subscriber receives is bounded too: re-encoding can grow a frame (bin becomes base64,
    // a control character a 6-character escape: up to 6x); beyond 4x the limit it is refused.
    const egressMax = this.limits.maxPublishBytes * EGRESS_FACTOR;
    if (bin.length > egressMax || json.length > egressMax) return this.outbox.replyError(s, id, ReplyError.PAYLOAD_TOO_LARGE);
    const key = roomKey(s.tenantId, room);
    this.fanOut.toRoom(key, bin, json, echo ? undefined : s.socket);
    this.metrics.publishes++;
    this.metrics.fanoutSize.local.observe(this.tracker.connections(key) - (!echo && hasRoom(s.rooms, key) ? 1 : 0));
    this.outbox.ack<'publish'>(s, id, { ts });
  }

  presence(s: Session<S>, id: RequestId, room: string): void {
    if (!validRoom(room, this.limits.maxRoomNameLength)) return this.outbox.replyError(s, id, ReplyError.BAD_ROOM);
    if (!s.perms.can('presence', room)) return this.outbox.replyError(s, id, ReplyError.FORBIDDEN);
    if (s.presenceWaiting >= PRESENCE_WAITING_PER_SESSION || !this.users.presenceEnter(s.tenantId, s.userId, this.now())) {
      this.metrics.rateLimited++;
      return this.outbox.replyError(s, id, ReplyError.RATE_LIMITED);
    }
    s.presenceWaiting++;
    const done = (): void => {
      s.presenceWaiting--;
      this.users.presenceLeave(s.tenantId, s.userId);
    };
    this.queries
      .members(roomKey(s.tenantId, room))
      .then(
        (users) => {
          done();
          if (!s.closed) this.outbox.ack<'presence'>(s, id, { room, users }, true);
        },
        () => {
          done();
          if (!s.closed) this.outbox.replyError(s, id, ReplyError.UNAVAILABLE, true);
        },
      )
      .catch((err: unknown) => this.outbox.fail(s, 'presence', err));
  }
}
