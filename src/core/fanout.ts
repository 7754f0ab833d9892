// Fan-out of frames to a room's members: on this node through uWS topics (one per encoding), on
// the others through the Bus. Both encodings are made once by the publisher's node, so every
// receiving node only copies bytes to its sockets. The bus learns which rooms this node has
// members in (the presence tracker's room transitions, wired by the Hub), and a per-room bus
// delivers only those: what arrives for a room without local members is counted
// (wsgate_bus_foreign_bytes_total; 0 with WSGATE_BUS_CHANNELS=room).
import type { Metrics } from '../observability/metrics.js';
import { decodeEnvelope, encodeEnvelope } from '../protocol/bus.js';
import { topicOf } from '../rooms/rooms.js';
import type { Bus } from '../stores/ports.js';
import type { Faults, SocketPort } from './ports.js';

export class FanOut<S> {
  constructor(
    private readonly port: SocketPort<S>,
    private readonly bus: Bus,
    private readonly nodeId: string,
    faults: Faults,
    private readonly metrics: Metrics,
    /** whether this node has a local member in a room (the presence tracker) */
    private readonly hasLocalMembers: (room: string) => boolean = () => true,
  ) {
    bus.onMessage((payload) => {
      try {
        this.fromBus(payload);
      } catch (err) {
        faults.report('bus', err);
      }
    });
  }

  /** Sends a room's frames to its members here and on every other node; `exclude`: the publishing socket. */
  toRoom(room: string, bin: Buffer, json: string, exclude: S | undefined): void {
    this.local(room, bin, json, exclude);
    if (!this.bus.distributed) return;
    // A failed publish (Redis away) is counted; the Redis client logs the outage itself.
    this.bus.publish(room, encodeEnvelope({ kind: 'room', node: this.nodeId, room, bin, json })).catch(() => {
      this.metrics.busPublishFailures++;
    });
  }

  /** Resolves once the bus delivers these rooms to this node; undefined when it already does. */
  ready(rooms: readonly string[]): Promise<void> | undefined {
    return this.bus.distributed ? this.bus.ready(rooms) : undefined;
  }

  private local(room: string, bin: Buffer, json: string, exclude: S | undefined): void {
    this.port.publish(topicOf(room, 'msgpack'), bin, true, exclude);
    this.port.publish(topicOf(room, 'json'), json, false, exclude);
  }

  private fromBus(payload: Buffer): void {
    this.metrics.busReceivedBytes += payload.length;
    const e = decodeEnvelope(payload);
    if (e === undefined) {
      this.metrics.busMalformed++;
      return;
    }
    if (e.node === this.nodeId) return; // our own echo
    if (!this.hasLocalMembers(e.room)) {
      this.metrics.busForeignBytes += payload.length;
      return;
    }
    this.local(e.room, Buffer.from(e.bin.buffer, e.bin.byteOffset, e.bin.byteLength), e.json, undefined);
  }
}
