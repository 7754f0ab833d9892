// Fan-out of frames to a room's members: on this node through uWS topics (one per encoding), on
// the others through the Bus. Both encodings are made once by the publisher's node, so every
// receiving node only copies bytes to its sockets. FanOut is the Bus's one inbound handler: the
// other kinds of envelope (commands and answers of the server API, sent with Bus.broadcast) go to
// core/control.ts. The bus learns which rooms this node has
// members in (the presence tracker's room transitions, wired by the Hub), and a per-room bus
// delivers only those: what arrives for a room without local members is counted
// (wsgate_bus_foreign_bytes_total; 0 with WSGATE_BUS_CHANNELS=room).
import type { Metrics } from '../observability/metrics.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../protocol/bus.js';
import { topicOf } from '../rooms/rooms.js';
import type { Bus } from '../stores/ports.js';
import type { Faults, SocketPort } from './ports.js';

export type ControlEnvelope = Exclude<Envelope, { kind: 'room' }>;
/** How every room message's JSON encoding starts (core/rooms.ts); presence notices start otherwise. */
const MESSAGE_JSON = '{"type":"message"';

export class FanOut<S> {
  /** Where commands and answers from other nodes go (core/control.ts). */
  control: (e: ControlEnvelope) => void = () => undefined;
  /** A presence notification for a room came from another node (core/presence-queries.ts). */
  presenceChanged: (room: string) => void = () => undefined;

  constructor(
    private readonly port: SocketPort<S>,
    private readonly bus: Bus,
    private readonly nodeId: string,
    faults: Faults,
    private readonly metrics: Metrics,
    /** local connections in a room (fan-out size of a publish from another node) */
    private readonly members: (room: string) => number,
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
    if (e.kind !== 'room') return this.control(e);
    if (!this.hasLocalMembers(e.room)) {
      this.metrics.busForeignBytes += payload.length;
      return;
    }
    if (e.json.startsWith(MESSAGE_JSON)) this.metrics.fanoutSize.bus.observe(this.members(e.room));
    else this.presenceChanged(e.room);
    this.local(e.room, Buffer.from(e.bin.buffer, e.bin.byteOffset, e.bin.byteLength), e.json, undefined);
  }
}
