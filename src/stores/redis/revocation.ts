// Revocation lookups against `<prefix><jti>` with per-tick batching: every lookup issued while
// the event loop handles one poll phase (all the upgrades uWS read together) goes out as one
// MGET at setImmediate. Measured here: a lone GET costs ~130 µs round trip, ~5 µs each with
// 1000 in flight, so sharing round trips is what keeps connect storms cheap for Redis.
// (process.nextTick or ioredis auto-pipelining would not batch: uWS enters JS once per
// upgrade and Node drains the tick queue after each entry.)
//
// User revocations (`<userPrefix><keyOf(tenant, sub)>`, docs/REDIS.md#user-revocations) are read in
// the same MGET: an upgrade asks for two keys, in the same round trip.
import { keyOf2 } from '../../keys/keys.js';
//
// On a Redis Cluster the keys of one tick live in many slots (the auth service writes
// `revoked:<jti>` untagged), and MGET must stay in one slot: the tick's keys are grouped by the
// master that serves their slot, and each master gets one pipeline of GETs. A storm then costs one
// round trip per master per tick, in parallel (test/integration/redis-cluster.test.ts counts them).
import { StoreUnavailable, type RevocationStore } from '../ports.js';
import { isCluster, type RedisClient } from './client.js';
import { execOrThrow, groupOf } from './util.js';

interface Waiter { key: string; resolve: (v: string | null) => void; reject: (e: unknown) => void }

/** WSGATE_REVOKED_USER_PREFIX's default. */
export const DEFAULT_USER_PREFIX = 'revoked-user:';

/**
 * The value of a user revocation key -> `before` (seconds). Absent: 0 (none). Not a non-negative
 * integer: Infinity, every token of the user (an auth service that wrote garbage meant to revoke).
 */
export function parseBefore(v: string | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return /^[0-9]{1,15}$/.test(v) ? Number(v) : Infinity;
}

const MAX_KEYS_PER_MGET = 1000;

/** Told of every lookup batch that settled (answered, failed or timed out): its keys and its round trip in seconds. */
export type BatchObserver = (keys: number, seconds: number) => void;

export class RedisRevocationStore implements RevocationStore {
  private queue: Waiter[] = [];
  private scheduled = false;
  /** Round trips issued (MGET commands), for metrics and the pipelining test. */
  roundTrips = 0;
  lookups = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly timeoutMs: number,
    private readonly userPrefix: string = DEFAULT_USER_PREFIX,
    private readonly observe: BatchObserver = () => undefined,
  ) {}

  /** The lookup mode never knows without asking Redis. */
  isRevokedNow(): undefined {
    return undefined;
  }

  /** The lookup mode does not learn of revocations: sockets are checked at the upgrade and at refresh only. */
  onRevoked(): void {}

  isRevoked(jti: string): Promise<boolean> {
    this.lookups++;
    return new Promise<boolean>((resolve, reject) => this.enqueue({ key: this.prefix + jti, resolve: (v) => resolve(v !== null && v !== undefined), reject }));
  }

  async revoke(jti: string, ttlSec: number): Promise<void> {
    await this.redis.set(this.prefix + jti, '1', 'EX', Math.max(1, Math.ceil(ttlSec)));
  }

  /** The lookup mode never knows without asking Redis. */
  userRevokedBeforeNow(): undefined {
    return undefined;
  }

  userRevokedBefore(tenantId: string, sub: string): Promise<number> {
    return new Promise<number>((resolve, reject) => this.enqueue({ key: this.userKey(tenantId, sub), resolve: (v) => resolve(parseBefore(v)), reject }));
  }

  async revokeUser(tenantId: string, sub: string, before: number, ttlSec: number): Promise<void> {
    await this.redis.set(this.userKey(tenantId, sub), String(before), 'EX', Math.max(1, Math.ceil(ttlSec)));
  }

  /** As onRevoked: the lookup mode does not learn of user revocations. */
  onUserRevoked(): void {}

  private userKey(tenantId: string, sub: string): string {
    return this.userPrefix + keyOf2(tenantId, sub);
  }

  private enqueue(w: Waiter): void {
    this.queue.push(w);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const all = this.queue;
    this.queue = [];
    for (const group of this.groups(all)) {
      for (let i = 0; i < group.length; i += MAX_KEYS_PER_MGET) this.lookupBatch(group.slice(i, i + MAX_KEYS_PER_MGET));
    }
  };

  /** One group on a single Redis; on a cluster, one per master serving the keys' slots. */
  private groups(all: Waiter[]): Waiter[][] {
    const redis = this.redis;
    if (!isCluster(redis)) return [all];
    const by = new Map<string, Waiter[]>();
    for (const w of all) {
      let g: string;
      try {
        g = groupOf(redis, w.key);
      } catch (err) {
        w.reject(err);
        continue;
      }
      const list = by.get(g);
      if (list) list.push(w);
      else by.set(g, [w]);
    }
    return [...by.values()];
  }

  /** The values of `keys`: one MGET, or on a cluster one pipeline of GETs (all keys on one master). */
  private fetch(keys: string[]): Promise<Array<string | null>> {
    const redis = this.redis;
    if (!isCluster(redis)) return redis.mget(keys);
    return execOrThrow(redis.pipeline(keys.map((k) => ['get', k]))) as Promise<Array<string | null>>;
  }

  private lookupBatch(batch: Waiter[]): void {
    this.roundTrips++;
    let done = false;
    const t0 = performance.now();
    const settled = (): void => this.observe(batch.length, (performance.now() - t0) / 1000);
    // One timer per batch, not per lookup.
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      settled();
      const err = new StoreUnavailable('revocation lookup timed out');
      for (const w of batch) w.reject(err);
    }, this.timeoutMs);
    const keys = batch.map((w) => w.key);
    this.fetch(keys).then(
      (values) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        settled();
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(values[i] ?? null);
      },
      (err: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        settled();
        const e = new StoreUnavailable('revocation lookup failed', err);
        for (const w of batch) w.reject(e);
      },
    );
  }
}
