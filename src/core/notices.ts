// Presence notifications: after each presence flush, the join/leave transitions it wrote are
// pushed to the rooms' members (here and, through the fan-out, on other nodes).
import type { PresenceChange, PresenceTracker } from '../presence/tracker.js';
import { encodeEnvelope } from '../protocol/bus.js';
import { encodeJson, encodeMsgpack } from '../protocol/codec.js';
import type { ServerMessage } from '../protocol/messages.js';
import { roomOf } from '../rooms/rooms.js';
import type { FanOut } from './fanout.js';

/** A presence notification's frames, in both encodings. */
export function presenceFrames(c: PresenceChange): { bin: Buffer; json: string } {
  const msg: ServerMessage = { type: 'presence', room: roomOf(c.room), joined: c.joined, left: c.left };
  return { bin: encodeMsgpack(msg), json: encodeJson(msg) };
}

/**
 * A presence notification as a Bus payload from `node`: what a supervisor sends for a worker that
 * died (its users left every room at once; the worker cannot say so itself).
 */
export function presenceEnvelope(node: string, c: PresenceChange): Buffer {
  const { bin, json } = presenceFrames(c);
  return encodeEnvelope({ kind: 'room', node, room: c.room, bin, json });
}

export class PresenceNotices<S> {
  constructor(
    private readonly tracker: PresenceTracker,
    private readonly fanOut: FanOut<S>,
    private readonly enabled: boolean,
  ) {}

  /** One presence flush, then the notifications of what it wrote. */
  async flush(): Promise<void> {
    const changes = await this.tracker.flush();
    if (this.enabled) for (const c of changes) this.notify(c);
  }

  private notify(c: PresenceChange): void {
    const { bin, json } = presenceFrames(c);
    this.fanOut.toRoom(c.room, bin, json, undefined);
  }
}
