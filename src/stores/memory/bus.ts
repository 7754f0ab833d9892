// Embedded bus: a single node has no peers. Tests can link several MemoryBus instances
// through one MemoryBusHub to play a multi-node deployment inside one process.
import type { Bus } from '../ports.js';

export class MemoryBusHub {
  readonly members = new Set<MemoryBus>();
}

export class MemoryBus implements Bus {
  private handler: ((payload: Buffer) => void) | undefined;
  readonly distributed: boolean;

  constructor(private readonly hub?: MemoryBusHub) {
    this.distributed = hub !== undefined;
    hub?.members.add(this);
  }

  publish(payload: Buffer): Promise<void> {
    if (this.hub) for (const m of this.hub.members) if (m !== this) m.handler?.(payload);
    return Promise.resolve();
  }

  onMessage(handler: (payload: Buffer) => void): void {
    this.handler = handler;
  }

  close(): Promise<void> {
    this.hub?.members.delete(this);
    return Promise.resolve();
  }
}
