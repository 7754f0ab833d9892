// The revocation mirror on a Redis Cluster (docs/REDIS.md#revocation-mirror-on-a-cluster). Client
// tracking and SCAN are per node: a `revoked:<jti>` key lives on the master of its slot, and only
// that master tells of its writes. So the mirror runs one RedisRevocationMirror per master, each
// with two connections of its own to that master (commands, and the invalidation subscriber).
//
//   - The masters are read from the cluster client's slot map, at start, on every slot refresh
//     (ioredis refreshes on MOVED, on connection errors and every 2 s), and each second: a shard is
//     started for a new master and closed for a node that no longer masters any slot.
//   - A shard's heartbeat asks ROLE: a master demoted by a failover (CLUSTER FAILOVER, or a
//     restarted node that came back as a replica) is not ready at once and the slot map is
//     refreshed, so the shard of the promoted replica takes over.
//   - A lookup is answered by the shard of the key's slot (CRC16, as Redis computes it), when that
//     shard is ready; otherwise it goes to Redis like the lookup mode (one GET pipeline per master
//     per tick) and fails closed when the cluster cannot answer. A failover of one master thus moves
//     only its slots to round trips for a moment; the other masters' slots stay synchronous.
//   - A new shard's first sync reports every revoked key it finds to onRevoked: a revocation
//     written during the failover still closes the open sockets that carry it.
//   - User revocations (`<userPrefix><keyOf(tenant, sub)>`, untagged like the tokens' keys) are
//     mirrored by the shard of their key's slot, the same way.
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import { keyOf2 } from '../../keys/keys.js';
import type { RevocationStore } from '../ports.js';
import { createRedis, nodeUrl } from './client.js';
import { DEFAULT_USER_PREFIX, RedisRevocationStore, type BatchObserver } from './revocation.js';
import { RedisRevocationMirror } from './revocation-mirror.js';

interface Shard {
  readonly node: string;
  readonly mirror: RedisRevocationMirror;
  readonly redis: Redis;
  readonly sub: Redis;
}

export class ClusterRevocationMirror implements RevocationStore {
  private readonly shards = new Map<string, Shard>();
  private readonly lookup: RedisRevocationStore;
  private handler: ((jti: string) => void) | undefined;
  private userHandler: ((tenantId: string, sub: string, before: number) => void) | undefined;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private answered = 0;
  /** counters of shards already closed, so the totals never go down */
  private retired = { syncs: 0, syncFailures: 0, invalidations: 0 };
  /** shards started since the process started (one per master, plus one per failover) */
  shardsStarted = 0;

  constructor(
    private readonly cluster: Cluster,
    /** the cluster URL (seeds): its credentials and TLS are used for the per-master connections */
    private readonly url: string,
    private readonly name: string,
    private readonly prefix: string,
    private readonly timeoutMs: number,
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly userPrefix: string = DEFAULT_USER_PREFIX,
    observe?: BatchObserver,
  ) {
    this.lookup = new RedisRevocationStore(cluster, prefix, timeoutMs, userPrefix, observe);
    const topology = (): void => this.topology();
    cluster.on('ready', topology);
    cluster.on('refresh', topology);
    this.timer = setInterval(topology, 1000);
    this.timer.unref();
    topology();
  }

  get lookups(): number {
    return this.answered + this.lookup.lookups;
  }

  get roundTrips(): number {
    return this.lookup.roundTrips;
  }

  /** Every slot has a master whose shard is ready. */
  get isReady(): boolean {
    if (this.cluster.status !== 'ready') return false;
    const masters = this.masters();
    if (masters === undefined) return false;
    for (const m of masters) if (!this.shards.get(m)?.mirror.isReady) return false;
    return true;
  }

  /** Entries over every shard (revoked tokens known now). */
  get size(): number {
    let n = 0;
    for (const s of this.shards.values()) n += s.mirror.size;
    return n;
  }

  get syncs(): number {
    return this.retired.syncs + this.sum((m) => m.syncs);
  }

  get syncFailures(): number {
    return this.retired.syncFailures + this.sum((m) => m.syncFailures);
  }

  get invalidations(): number {
    return this.retired.invalidations + this.sum((m) => m.invalidations);
  }

  /** The masters of the shards running now (host:port). */
  get shardNodes(): string[] {
    return [...this.shards.keys()];
  }

  isRevokedNow(jti: string): boolean | undefined {
    const shard = this.shardOf(jti);
    if (shard === undefined || !shard.mirror.isReady) return undefined;
    this.answered++;
    return shard.mirror.isRevokedNow(jti);
  }

  isRevoked(jti: string): Promise<boolean> {
    const known = this.isRevokedNow(jti);
    if (known !== undefined) return Promise.resolve(known);
    return this.lookup.isRevoked(jti);
  }

  async revoke(jti: string, ttlSec: number): Promise<void> {
    await this.lookup.revoke(jti, ttlSec);
    this.shardOf(jti)?.mirror.remember(jti, ttlSec);
  }

  onRevoked(handler: (jti: string) => void): void {
    this.handler = handler;
  }

  userRevokedBeforeNow(tenantId: string, sub: string): number | undefined {
    // no key to hash on the upgrade path while no shard holds a user revocation
    let any = false;
    for (const s of this.shards.values()) {
      if (!s.mirror.isReady) return undefined;
      if (s.mirror.userCount > 0) any = true;
    }
    if (!any && this.shards.size > 0 && this.isReady) return 0;
    const shard = this.shardOfKey(this.userPrefix + keyOf2(tenantId, sub));
    if (shard === undefined || !shard.mirror.isReady) return undefined;
    return shard.mirror.userRevokedBeforeNow(tenantId, sub);
  }

  userRevokedBefore(tenantId: string, sub: string): Promise<number> {
    const known = this.userRevokedBeforeNow(tenantId, sub);
    if (known !== undefined) return Promise.resolve(known);
    return this.lookup.userRevokedBefore(tenantId, sub);
  }

  async revokeUser(tenantId: string, sub: string, before: number, ttlSec: number): Promise<void> {
    await this.lookup.revokeUser(tenantId, sub, before, ttlSec);
    this.shardOfKey(this.userPrefix + keyOf2(tenantId, sub))?.mirror.rememberUser(tenantId, sub, before, ttlSec);
  }

  onUserRevoked(handler: (tenantId: string, sub: string, before: number) => void): void {
    this.userHandler = handler;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const node of [...this.shards.keys()]) this.retire(node);
  }

  private sum(f: (m: RedisRevocationMirror) => number): number {
    let n = 0;
    for (const s of this.shards.values()) n += f(s.mirror);
    return n;
  }

  private shardOf(jti: string): Shard | undefined {
    return this.shardOfKey(this.prefix + jti);
  }

  private shardOfKey(key: string): Shard | undefined {
    if (this.cluster.status !== 'ready') return undefined;
    const nodes = this.cluster.slots[calculateSlot(key)];
    return nodes?.[0] === undefined ? undefined : this.shards.get(nodes[0]);
  }

  /** The distinct masters of the slot map (host:port), or undefined when a slot has none. */
  private masters(): Set<string> | undefined {
    const out = new Set<string>();
    const slots = this.cluster.slots;
    for (let i = 0; i < 16384; i++) {
      const m = slots[i]?.[0];
      if (m === undefined) return undefined;
      out.add(m);
    }
    return out;
  }

  /** Starts a shard for each new master, closes the shards of nodes that master nothing now. */
  private topology(): void {
    if (this.closed || this.cluster.status !== 'ready') return;
    try {
      const masters = this.masters();
      if (masters === undefined) return;
      for (const node of [...this.shards.keys()]) if (!masters.has(node)) this.retire(node);
      for (const node of masters) if (!this.shards.has(node)) this.start(node);
    } catch (err) {
      this.onError(err);
    }
  }

  private start(node: string): void {
    const colon = node.lastIndexOf(':');
    const url = nodeUrl(this.url, node.slice(0, colon), Number(node.slice(colon + 1)));
    const redis = createRedis({ url, name: `${this.name}:revocations:cmd` });
    // its own subscriber: it subscribes again itself after a reconnect (it must ask CLIENT ID first)
    const sub = createRedis({ url, name: `${this.name}:revocations`, autoResubscribe: false });
    redis.on('error', () => undefined);
    sub.on('error', () => undefined);
    const mirror = new RedisRevocationMirror(redis, sub, this.prefix, this.timeoutMs, Date.now, this.onError, this.userPrefix, undefined, {
      lookup: this.lookup,
      master: true,
      onDemoted: () => {
        // the slot map is stale: ask the cluster who masters the slots now
        this.cluster.refreshSlotsCache();
      },
    });
    mirror.onRevoked((jti) => this.handler?.(jti));
    mirror.onUserRevoked((tenantId, sub, before) => this.userHandler?.(tenantId, sub, before));
    this.shards.set(node, { node, mirror, redis, sub });
    this.shardsStarted++;
  }

  private retire(node: string): void {
    const s = this.shards.get(node);
    if (!s) return;
    this.shards.delete(node);
    this.retired.syncs += s.mirror.syncs;
    this.retired.syncFailures += s.mirror.syncFailures;
    this.retired.invalidations += s.mirror.invalidations;
    s.mirror.close();
    s.redis.disconnect();
  }
}
