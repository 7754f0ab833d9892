// Presence notifications: after each presence flush, the join/leave transitions it wrote are
// pushed to the rooms' members (here and, through the fan-out, on other nodes): one message per
// changed room per flush. A message names at most `maxNames` users; a flush with more transitions
// in a room sends counts instead, so that what every member receives per flush is bounded by a
// constant, not by the room's size (a 5,000-member room filling up within one flush used to send
// every member a 5,000-name list: bytes growing with the square of the room size).
import type { PresenceChange, PresenceTracker } from '../presence/tracker.js';
import { encodeEnvelope } from '../protocol/bus.js';
import { encodeJson, encodeMsgpack } from '../protocol/codec.js';
import type { ServerMessage } from '../protocol/messages.js';
import { roomOf } from '../rooms/rooms.js';
import type { FanOut } from './fanout.js';

/** A presence notification's frames, in both encodings: the names, or counts past `maxNames`. */
export function presenceFrames(c: PresenceChange, maxNames: number): { bin: Buffer; json: string } {
  const room = roomOf(c.room);
  const msg: ServerMessage =
    c.joined.length + c.left.length > maxNames
      ? { type: 'presence', room, joined: [], left: [], counts: { joined: c.joined.length, left: c.left.length } }
      : { type: 'presence', room, joined: c.joined, left: c.left };
  return { bin: encodeMsgpack(msg), json: encodeJson(msg) };
}

/**
 * A presence notification as a Bus payload from `node`: what a supervisor sends for a worker that
 * died (its users left every room at once; the worker cannot say so itself).
 */
export function presenceEnvelope(node: string, c: PresenceChange, maxNames: number): Buffer {
  const { bin, json } = presenceFrames(c, maxNames);
  return encodeEnvelope({ kind: 'room', node, room: c.room, bin, json });
}

export class PresenceNotices<S> {
  constructor(
    private readonly tracker: PresenceTracker,
    private readonly fanOut: FanOut<S>,
    private readonly enabled: boolean,
    private readonly maxNames: number,
  ) {}

  /** One presence flush, then the notifications of what it wrote. */
  async flush(): Promise<void> {
    const changes = await this.tracker.flush();
    if (this.enabled) for (const c of changes) this.notify(c);
  }

  private notify(c: PresenceChange): void {
    const { bin, json } = presenceFrames(c, this.maxNames);
    this.fanOut.toRoom(c.room, bin, json, undefined);
  }
}
