// Cross-node fan-out over Redis pub/sub (docs/REDIS.md#bus). Payloads carry the sender's node id
// (set by the Hub), and the Hub drops its own echoes. Two modes (WSGATE_BUS_CHANNELS):
//
//   room    one channel per room, `<p>room:<roomKey>`. A node subscribes to a room's channel while it
//           has local members in the room (watch/unwatch, from the presence tracker's room
//           transitions) and so receives only the rooms it serves. On a Redis Cluster the channels
//           are shard channels (SSUBSCRIBE/SPUBLISH, Redis >= 7): a publish travels to the one
//           master that owns the channel's slot and to the subscribers connected there, instead of
//           being broadcast over the cluster bus to every node.
//   single  one channel for the deployment, `<p>bus`: every node receives every publish. No
//           subscription churn; the Redis CPU per publish is the same; every node pays for every
//           room.
//
// Either way every node also subscribes, from its start, to the deployment's channel `<p>bus`
// (SSUBSCRIBE on a cluster: one shard holds it): broadcast() sends the server API's commands and
// answers there (core/control.ts), which must reach every node whatever rooms it serves.
//
// Subscription changes are batched: the watches and unwatches of one event-loop turn become one
// SUBSCRIBE and one UNSUBSCRIBE (at most 1000 channels each; on a cluster one SSUBSCRIBE per slot,
// as Redis requires), and a room watched and unwatched within the turn costs nothing. After a
// reconnect ioredis subscribes again to every channel it holds. A join is acknowledged once its
// room's SUBSCRIBE is answered (ready()); once a SUBSCRIBE has gone unanswered for `stallMs`
// (Redis away: it waits in the offline queue; or stalled), joins do not wait.
import calculateSlot from 'cluster-key-slot';
import { StoreUnavailable, type Bus } from '../ports.js';
import { isCluster, type RedisClient } from './client.js';
import { groupOf } from './util.js';

export type BusChannels = 'room' | 'single';

const MAX_CHANNELS_PER_COMMAND = 1000;

/** The channel of a room's payloads (room mode), or the deployment's one channel (single mode, or no room). */
export function busChannel(prefix: string, mode: BusChannels, room: string | undefined): string {
  return mode === 'single' || room === undefined ? `${prefix}bus` : `${prefix}room:${room}`;
}

export class RedisBus implements Bus {
  readonly distributed = true;
  private handler: ((payload: Buffer) => void) | undefined;
  /** room mode: rooms this node wants (watched), and channels it has asked Redis for */
  private readonly wanted = new Set<string>();
  private readonly subscribed = new Set<string>();
  private readonly changed = new Set<string>();
  /** rooms in a SUBSCRIBE that Redis has not answered yet, and when each unanswered SUBSCRIBE was sent */
  private readonly inflight = new Set<string>();
  private readonly sentAt = new Set<{ at: number }>();
  /** rooms whose subscription is not confirmed yet -> who waits for it (ready()) */
  private readonly waiting = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  private scheduled = false;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly sharded: boolean;
  /** single mode: the one SUBSCRIBE, until Redis answers it */
  private initial: Promise<void> | undefined;
  /** SUBSCRIBE/UNSUBSCRIBE (or S*) commands sent, and channels in them */
  subscribeCommands = 0;
  subscriptionChanges = 0;

  constructor(
    private readonly pub: RedisClient,
    /** A client with its offline queue on (ioredis re-subscribes after a reconnect); on a cluster with shardedSubscribers. */
    private readonly sub: RedisClient,
    private readonly prefix: string,
    private readonly mode: BusChannels = 'room',
    /** a SUBSCRIBE unanswered for this long means Redis is not answering: ready() stops waiting for it */
    private readonly stallMs = 500,
    /**
     * publishes Redis has not answered yet, at most, by count and by payload bytes: past either a
     * publish fails at once (counted by the caller) instead of queueing while Redis stalls. Delivery
     * is at most once anyway; this bounds the memory a stall can make a busy node hold. A waiting
     * publish holds several copies of its payload (the envelope, ioredis' command and its write
     * buffer): a red-team run measured ~88 KB per waiting 15 KB publish, 3 GB at 34k waiting, so
     * bytes are bounded too (16 MiB of payloads: ~100 MB of memory).
     */
    private readonly maxUnanswered = 65_536,
    private readonly maxUnansweredBytes = 16 * 1024 * 1024,
  ) {
    this.sharded = isCluster(sub) && mode === 'room'; // classic pub/sub in the single mode, on a cluster too
    const deliver = (_ch: Buffer, payload: Buffer): void => this.handler?.(payload);
    // the deployment's channel: every publish in the single mode, the broadcasts in both
    const all = this.channelOf(undefined);
    const initial = (this.sharded ? this.sub.ssubscribe(all) : this.sub.subscribe(all)).then(
      () => undefined,
      () => undefined,
    );
    this.initial = initial.then(() => (this.initial = undefined));
    this.sub.on(this.sharded ? 'smessageBuffer' : 'messageBuffer', deliver);
    // Pub/sub is at most once: what was published while the subscriber was away (a network cut, or
    // Redis closing it for its client-output-buffer-limit pubsub when this node read too slowly) is
    // lost. Each reconnect is counted, so that it can be alerted on (wsgate_bus_reconnects).
    let connected = false;
    this.sub.on('ready', () => {
      if (connected) {
        this.reconnects++;
        this.onReconnect();
      }
      connected = true;
    });
  }

  /** Times the subscriber connection came back after losing Redis (payloads meanwhile were lost). */
  reconnects = 0;
  /** Told of each reconnect (the composition root logs it). */
  onReconnect: () => void = () => undefined;

  /** The channel of a room (room mode), or the deployment's one channel. */
  channelOf(room: string | undefined): string {
    return busChannel(this.prefix, this.mode, room);
  }

  /** publishes sent or queued that Redis has not answered, and their payloads' bytes */
  unanswered = 0;
  unansweredBytes = 0;

  publish(room: string, payload: Buffer): Promise<void> {
    const bytes = payload.length;
    if (this.unanswered >= this.maxUnanswered || (this.unansweredBytes + bytes > this.maxUnansweredBytes && this.unanswered > 0)) {
      return Promise.reject(new StoreUnavailable('bus: too many publishes unanswered (Redis stalled?)'));
    }
    this.unanswered++;
    this.unansweredBytes += bytes;
    const channel = this.channelOf(room);
    // classic PUBLISH on a cluster (the single mode) has no key to route by: one command each
    if (isCluster(this.pub) && !this.sharded) {
      return this.pub.publish(channel, payload).then(
        () => this.answered(bytes),
        (err: unknown) => {
          this.answered(bytes);
          throw err;
        },
      );
    }
    // Batched per event-loop turn into one pipeline (on a cluster, one per shard): one write for all
    // the publishes of the turn, not one per publish. Measured (fanout --saturate, 10k subscribers in
    // 100 rooms, single Redis): one write system call per PUBLISH was 27% of the node's CPU (Node's
    // writeBuffer), and deliveries/s were 0.70x bare uWS against 1.16x on the embedded store. uWS
    // enters JavaScript once per frame and Node drains nextTick after each entry, so ioredis'
    // auto-pipelining would not batch them; setImmediate runs once the turn's frames are read.
    return new Promise<void>((resolve, reject) => {
      this.outgoing.push({ channel, payload, resolve, reject });
      if (this.outgoing.length === 1) setImmediate(this.flushOutgoing);
    });
  }

  private answered(bytes: number): void {
    this.unanswered--;
    this.unansweredBytes -= bytes;
  }

  /** publishes of this turn, sent together (publish()) */
  private outgoing: Array<{ channel: string; payload: Buffer; resolve: () => void; reject: (e: unknown) => void }> = [];

  private readonly flushOutgoing = (): void => {
    const all = this.outgoing;
    this.outgoing = [];
    if (all.length === 0) return;
    if (!isCluster(this.pub)) return this.sendPublishes(all);
    // SPUBLISH routes by the channel's slot: a cluster pipeline must stay within one shard
    const shards = new Map<string, typeof all>();
    for (const o of all) {
      let shard: string;
      try {
        shard = groupOf(this.pub, o.channel);
      } catch {
        shard = `slot ${calculateSlot(o.channel)}`; // slot owners not known yet: one slot each
      }
      const list = shards.get(shard);
      if (list) list.push(o);
      else shards.set(shard, [o]);
    }
    for (const batch of shards.values()) this.sendPublishes(batch);
  };

  private sendPublishes(batch: Array<{ channel: string; payload: Buffer; resolve: () => void; reject: (e: unknown) => void }>): void {
    const pipeline = this.pub.pipeline();
    for (const o of batch) {
      if (this.sharded) pipeline.spublish(o.channel, o.payload);
      else pipeline.publish(o.channel, o.payload);
    }
    pipeline.exec().then(
      (res) => {
        batch.forEach((o, i) => {
          this.answered(o.payload.length);
          const err = res?.[i]?.[0];
          if (err) o.reject(err);
          else o.resolve();
        });
      },
      (err: unknown) => {
        for (const o of batch) {
          this.answered(o.payload.length);
          o.reject(err);
        }
      },
    );
  }

  /** To every node (the deployment's channel, which every bus subscribes to from its start). */
  async broadcast(payload: Buffer): Promise<void> {
    const channel = this.channelOf(undefined);
    if (this.sharded) await this.pub.spublish(channel, payload);
    else await this.pub.publish(channel, payload);
  }

  watch(room: string): void {
    if (this.mode === 'single') return;
    this.wanted.add(room);
    this.mark(room);
  }

  unwatch(room: string): void {
    if (this.mode === 'single') return;
    this.wanted.delete(room);
    this.mark(room);
  }

  ready(rooms: readonly string[]): Promise<void> | undefined {
    if (this.mode === 'single') return this.initial;
    // Redis away or not answering (a SUBSCRIBE, queued or sent, unanswered for stallMs): a join does
    // not wait for a subscription that cannot come (it is still sent, and replayed after a reconnect)
    if (this.stalled()) return undefined;
    let waits: Array<Promise<void>> | undefined;
    for (const room of rooms) {
      if (!this.wanted.has(room)) continue;
      let w = this.waiting.get(room);
      if (w === undefined) {
        if (this.subscribed.has(room) && !this.changed.has(room) && !this.inflight.has(room)) continue;
        let resolve!: () => void;
        const promise = new Promise<void>((r) => (resolve = r));
        this.waiting.set(room, (w = { promise, resolve }));
      }
      (waits ??= []).push(w.promise);
    }
    return waits === undefined ? undefined : Promise.all(waits).then(() => undefined);
  }

  private stalled(): boolean {
    const limit = performance.now() - this.stallMs;
    for (const s of this.sentAt) if (s.at < limit) return true;
    return false;
  }

  private settle(room: string): void {
    const w = this.waiting.get(room);
    if (w === undefined) return;
    this.waiting.delete(room);
    w.resolve();
  }

  /** Rooms whose channel this node is subscribed to (room mode). */
  get channels(): number {
    return this.subscribed.size;
  }

  onMessage(handler: (payload: Buffer) => void): void {
    this.handler = handler;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    for (const room of [...this.waiting.keys()]) this.settle(room);
    this.sub.disconnect();
  }

  private mark(room: string): void {
    this.changed.add(room);
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const on: string[] = [];
    const off: string[] = [];
    for (const room of this.changed) {
      const want = this.wanted.has(room);
      if (want === this.subscribed.has(room)) {
        if (!this.inflight.has(room)) this.settle(room);
        continue;
      }
      (want ? on : off).push(room);
      if (want) this.subscribed.add(room);
      else this.subscribed.delete(room);
    }
    this.changed.clear();
    // unsubscribes first: once a later subscribe is confirmed, the earlier unsubscribes on the same connection are done too
    this.send(off, false);
    this.send(on, true);
  }

  private send(rooms: string[], subscribe: boolean): void {
    if (rooms.length === 0) return;
    this.subscriptionChanges += rooms.length;
    for (const batch of this.batches(rooms)) {
      this.subscribeCommands++;
      const channels = batch.map((r) => this.channelOf(r));
      const sent = this.sharded
        ? subscribe ? this.sub.ssubscribe(...channels) : this.sub.sunsubscribe(...channels)
        : subscribe ? this.sub.subscribe(...channels) : this.sub.unsubscribe(...channels);
      const sentBatch = { at: performance.now() };
      if (subscribe) {
        for (const r of batch) this.inflight.add(r);
        this.sentAt.add(sentBatch);
      }
      const settled = (): void => {
        if (!subscribe) return;
        this.sentAt.delete(sentBatch);
        for (const r of batch) {
          this.inflight.delete(r);
          this.settle(r);
        }
      };
      sent.then(settled, () => {
        settled();
        // Redis refused or could not take it now: reconsider these rooms in a second
        for (const r of batch) {
          if (subscribe) this.subscribed.delete(r);
          else this.subscribed.add(r);
          this.changed.add(r);
        }
        if (this.retry === undefined && !this.closed) {
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.flush();
          }, 1000);
          this.retry.unref();
        }
      });
    }
  }

  /** Chunks of at most MAX_CHANNELS_PER_COMMAND; on a cluster each in one slot (SSUBSCRIBE's rule). */
  private batches(rooms: string[]): string[][] {
    const out: string[][] = [];
    if (!this.sharded) {
      for (let i = 0; i < rooms.length; i += MAX_CHANNELS_PER_COMMAND) out.push(rooms.slice(i, i + MAX_CHANNELS_PER_COMMAND));
      return out;
    }
    const bySlot = new Map<number, string[]>();
    for (const r of rooms) {
      const slot = calculateSlot(this.channelOf(r));
      const list = bySlot.get(slot);
      if (list && list.length < MAX_CHANNELS_PER_COMMAND) list.push(r);
      else {
        if (list) out.push(list);
        bySlot.set(slot, [r]);
      }
    }
    out.push(...bySlot.values());
    return out;
  }
}
