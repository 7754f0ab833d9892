// Cross-node fan-out over Redis pub/sub: one channel for the deployment. Payloads carry the
// sender's node id (set by the Hub), and the Hub drops its own echoes.
import type { Redis } from 'ioredis';
import type { Bus } from '../ports.js';

export class RedisBus implements Bus {
  readonly distributed = true;
  private handler: ((payload: Buffer) => void) | undefined;

  constructor(
    private readonly pub: Redis,
    /** A client with its offline queue on: ioredis re-subscribes after a reconnect. */
    private readonly sub: Redis,
    private readonly channel: string,
  ) {
    this.sub.subscribe(this.channel).catch(() => undefined);
    this.sub.on('messageBuffer', (_ch: Buffer, payload: Buffer) => this.handler?.(payload));
  }

  async publish(payload: Buffer): Promise<void> {
    await this.pub.publish(this.channel, payload);
  }

  onMessage(handler: (payload: Buffer) => void): void {
    this.handler = handler;
  }

  async close(): Promise<void> {
    this.sub.disconnect();
  }
}
