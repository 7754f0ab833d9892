// The store ports: small interfaces the core talks to. Each has a memory implementation (the
// embedded single-node default), an in-host one (the workers of one host, over their supervisor:
// stores/host/) and a Redis one, and one contract suite runs against all (test/contract/).

/** Thrown (or rejected) by a store that cannot answer now: Redis down, timed out, paused. */
export class StoreUnavailable extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'StoreUnavailable';
  }
}

/** A token with this iat (seconds; undefined: the token has none) is revoked by a user revocation at `before` (0: none). */
export function revokedByUser(iat: number | undefined, before: number): boolean {
  return before > 0 && (iat === undefined || iat < before);
}

/** `<prefix><jti>` exists while a token is revoked: the seed's layout, shared with the auth service. */
export interface RevocationStore {
  /**
   * The answer now, when the store can give it without waiting (a local mirror, the embedded
   * store); undefined when only isRevoked can tell. An upgrade answered here is decided
   * synchronously, inside uWS's upgrade handler.
   */
  isRevokedNow(jti: string): boolean | undefined;
  /** Concurrent calls share round trips. Rejects with StoreUnavailable on failure or timeout. */
  isRevoked(jti: string): Promise<boolean>;
  /** Revokes a token id for `ttlSec` seconds (normally the token's remaining lifetime). */
  revoke(jti: string, ttlSec: number): Promise<void>;
  /**
   * Registers the one handler told of each token id revoked from now on, by anyone (the auth
   * service's plain SET included), so that open sockets carrying it can be closed. Stores that
   * cannot learn of revocations (the Redis lookup mode) never call it.
   */
  onRevoked(handler: (jti: string) => void): void;

  // User revocations (docs/REDIS.md#user-revocations): `<userPrefix><keyOf(tenant, sub)>` holds
  // `before`, seconds since epoch: every token of that user with iat < before, or without iat, is
  // revoked while the key exists. 0 below means "no user revocation".

  /** `before` now, when the store can tell without waiting (as isRevokedNow); undefined: ask userRevokedBefore. */
  userRevokedBeforeNow(tenantId: string, sub: string): number | undefined;
  /** Shares round trips with isRevoked (one MGET per event-loop turn in the lookup mode). Rejects with StoreUnavailable. */
  userRevokedBefore(tenantId: string, sub: string): Promise<number>;
  /** Revokes the user's tokens issued before `before` (seconds), for `ttlSec` seconds. */
  revokeUser(tenantId: string, sub: string, before: number, ttlSec: number): Promise<void>;
  /** As onRevoked, for user revocations written from now on (by anyone). */
  onUserRevoked(handler: (tenantId: string, sub: string, before: number) => void): void;

  /** Lookups asked for, and round trips they took (0 for the embedded store). */
  readonly lookups: number;
  readonly roundTrips: number;
}

/** Users who became present / absent in one room (tenant-qualified key). */
export interface PresenceTransition {
  readonly room: string;
  readonly joined: readonly string[];
  readonly left: readonly string[];
}

/** `lost`: the store had no state for this node before this apply (first write, expiry, or a
 * store restarted empty), so the writer should send its full state next time. */
export interface ApplyResult {
  readonly lost: boolean;
  /**
   * Presence only, where the store can tell at no cost (the embedded and in-host stores hold every
   * node's rooms): the transitions this apply caused over all nodes, a user with connections on
   * several nodes counting once. Absent (Redis): the node's own transitions are announced.
   */
  readonly transitions?: readonly PresenceTransition[];
}

export interface ConnectionEntry {
  readonly connId: string;
  readonly nodeId: string;
  readonly userId: string;
  readonly tenantId: string;
  /** ms since epoch */
  readonly since: number;
  /** token exp, seconds since epoch */
  readonly exp: number;
}

export interface RegistryBatch {
  readonly upserts: readonly ConnectionEntry[];
  readonly removals: readonly string[];
  /** Replace the node's entries with `upserts` (resync after loss). */
  readonly full?: boolean;
}

/** Who is connected, on which node. Written in batches; a node's entries vanish a TTL (given to the store) after its last apply. */
export interface RegistryStore {
  /** Applies one batch for `nodeId` and refreshes the node's heartbeat. One round trip. */
  apply(nodeId: string, batch: RegistryBatch): Promise<ApplyResult>;
  /** Every live node's connections. */
  list(): Promise<ConnectionEntry[]>;
  /** The ids of the live nodes (a heartbeat within the TTL), with or without connections. */
  liveNodes(): Promise<string[]>;
  /** Drops a node's entries at once (clean shutdown). */
  removeNode(nodeId: string): Promise<void>;
}

/** One flush of a node's presence changes: per room (tenant-qualified key), users added and removed on this node. */
export interface PresenceBatch {
  readonly added: ReadonlyMap<string, readonly string[]>;
  readonly removed: ReadonlyMap<string, readonly string[]>;
  /** Rooms with no member on this node any more: the store may forget them for this node. */
  readonly vacated: readonly string[];
  /** Rooms whose node-level entry should have its TTL refreshed (a slice, amortised). */
  readonly refresh: readonly string[];
  /**
   * The node's complete state, sent instead of deltas after a store failure, a restart, or a
   * buffer overflow: afterwards the store holds exactly these rooms for the node (rooms it had
   * and that are not listed are removed).
   */
  readonly full?: ReadonlyMap<string, readonly string[]>;
}

/** Who is in a room across the deployment. Node liveness by heartbeat; entries vanish a TTL (given to the store) after it stops. */
export interface PresenceStore {
  apply(nodeId: string, batch: PresenceBatch): Promise<ApplyResult>;
  /**
   * Distinct users present in a room (tenant-qualified key) on every live node, sorted; with
   * `exceptNode`, on every live node but that one (a node adds its own members, which it knows
   * better than the store: they include the changes it has not flushed yet).
   */
  members(room: string, exceptNode?: string): Promise<string[]>;
  removeNode(nodeId: string, rooms: readonly string[]): Promise<void>;
}

/**
 * Cross-node fan-out: a room's bytes published on one node reach the nodes with members in it.
 * The node tells the bus which rooms it has local members in (watch/unwatch); a per-room bus
 * delivers a room's payloads only to the nodes that watch it, a single-channel bus to every node.
 */
export interface Bus {
  /** False for the embedded single-node bus: nothing to send, so the Hub skips encoding. */
  readonly distributed: boolean;
  publish(room: string, payload: Buffer): Promise<void>;
  /** This node has a local member in `room` from now on. Batched by the bus; idempotent. */
  watch(room: string): void;
  /** This node has no local member in `room` any more. */
  unwatch(room: string): void;
  /**
   * Resolves once payloads of these watched rooms reach this node (the subscription is confirmed,
   * or failed and is being retried); undefined when they already do. A join is acknowledged after
   * it, so a client that has its join ack receives every later publish, from any node.
   */
  ready(rooms: readonly string[]): Promise<void> | undefined;
  /**
   * To every node, whatever rooms it watches: the server API's commands and answers (core/control.ts).
   * Every bus receives these from its start (a channel of its own in the room mode).
   */
  broadcast(payload: Buffer): Promise<void>;
  /** Registers the single inbound handler (the Hub). It may also see this node's own payloads. */
  onMessage(handler: (payload: Buffer) => void): void;
  close(): Promise<void>;
}

/** A deployment-wide cap's answer: admitted, or which cap is reached. */
export type CapVerdict = 'ok' | 'user' | 'tenant';

/**
 * Connection counts per user and per tenant across every node, for the deployment-wide caps
 * (the caps and the TTL are given to the store). Each node's counts vanish a TTL after its last
 * refresh: a crashed node stops counting by itself.
 */
export interface CapStore {
  /**
   * Counts one more connection of (tenant, user) on `nodeId` unless it would exceed a cap, and
   * says which. Concurrent calls share round trips; synchronous where the store can answer at
   * once. Rejects with StoreUnavailable when it cannot answer.
   */
  reserve(nodeId: string, tenant: string, user: string): CapVerdict | Promise<CapVerdict>;
  /** One connection of (tenant, user) on `nodeId` ended. Resolves false when the store had no such count (lost: the node should rewrite the tenant). */
  release(nodeId: string, tenant: string, user: string): Promise<boolean>;
  /**
   * Heartbeat of the node and of its counts in these tenants. Resolves to the tenants whose counts
   * the store had lost, and `all` when it had lost the node itself (a restart, a flush): then every
   * tenant of the node should be rewritten.
   */
  refresh(nodeId: string, tenants: readonly string[]): Promise<{ readonly lost: readonly string[]; readonly all: boolean }>;
  /** Replaces the node's counts in each tenant given (tenant -> user -> connections). */
  rewrite(nodeId: string, counts: ReadonlyMap<string, ReadonlyMap<string, number>>): Promise<void>;
  /** Drops the node's counts at once (clean shutdown). */
  removeNode(nodeId: string, tenants: readonly string[]): Promise<void>;
}
