// Embedded bus: a single node has no peers. Tests can link several MemoryBus instances
// through one MemoryBusHub to play a multi-node deployment inside one process; like the Redis
// bus in its default mode, a linked bus delivers a room's payloads only to the buses that watch
// the room (`perRoom: false`: to every bus, as the single-channel mode does).
import type { Bus } from '../ports.js';

export class MemoryBusHub {
  readonly members = new Set<MemoryBus>();
}

export class MemoryBus implements Bus {
  private handler: ((payload: Buffer) => void) | undefined;
  readonly distributed: boolean;
  private readonly watched = new Set<string>();

  constructor(
    private readonly hub?: MemoryBusHub,
    private readonly perRoom = true,
  ) {
    this.distributed = hub !== undefined;
    hub?.members.add(this);
  }

  publish(room: string, payload: Buffer): Promise<void> {
    if (this.hub) for (const m of this.hub.members) if (m !== this && (!m.perRoom || m.watched.has(room))) m.handler?.(payload);
    return Promise.resolve();
  }

  broadcast(payload: Buffer): Promise<void> {
    if (this.hub) for (const m of this.hub.members) if (m !== this) m.handler?.(payload);
    return Promise.resolve();
  }

  watch(room: string): void {
    if (this.hub) this.watched.add(room);
  }

  unwatch(room: string): void {
    this.watched.delete(room);
  }

  ready(): undefined {
    return undefined;
  }

  onMessage(handler: (payload: Buffer) => void): void {
    this.handler = handler;
  }

  close(): Promise<void> {
    this.hub?.members.delete(this);
    return Promise.resolve();
  }
}
