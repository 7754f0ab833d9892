// Presence notifications: after each presence flush, the join/leave transitions it wrote are
// pushed to the rooms' members (here and, through the fan-out, on other nodes).
import type { PresenceChange, PresenceTracker } from '../presence/tracker.js';
import { encodeJson, encodeMsgpack } from '../protocol/codec.js';
import type { ServerMessage } from '../protocol/messages.js';
import { roomOf } from '../rooms/rooms.js';
import type { FanOut } from './fanout.js';

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
    const msg: ServerMessage = { type: 'presence', room: roomOf(c.room), joined: c.joined, left: c.left };
    this.fanOut.toRoom(c.room, encodeMsgpack(msg), encodeJson(msg), undefined);
  }
}
