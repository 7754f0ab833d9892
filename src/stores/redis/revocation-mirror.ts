// Revocations as a local mirror of the `<prefix><jti>` keys, kept exact by Redis itself (docs/REDIS.md
// #revocation-mirror). The seed's layout is unchanged: the auth service still writes `revoked:<jti>`
// with a plain SET; nothing else changes on its side.
//
//   1. A subscriber connection of its own SUBSCRIBEs to __redis__:invalidate.
//   2. The command connection turns on CLIENT TRACKING ... REDIRECT <subscriber> BCAST PREFIX <prefix>:
//      from then on every write, delete or expiry of a key with the prefix, by anyone, is pushed to
//      the subscriber (Redis >= 6; no server configuration, unlike keyspace notifications).
//   3. SCAN MATCH <prefix>* loads the keys that exist, with their PTTL; keys invalidated while the
//      scan runs are read again after it. Then the mirror is ready.
//   4. Each invalidation is answered by a PTTL of its keys (batched per tick): the mirror follows, and
//      a key that now exists is reported to onRevoked (open sockets with that jti are closed).
// Any reconnect of either connection, or a flush (a null invalidation), starts over at 1. A
// heartbeat PINGs both connections every second: one that does not answer within the lookup
// timeout (a partition that TCP has not noticed) makes the mirror not ready until a PING answers
// again, and then it starts over.
//
// Why: an upgrade's revocation check becomes a Map lookup, so the upgrade is decided synchronously
// inside uWS's upgrade handler. That saves the Redis round trip, the promise and the cork of an
// asynchronous upgrade (the upgrade path's CPU), and it cannot meet uWebSockets #1928, which closes
// asynchronously upgraded sockets inside res.cork (docs/UWS-1928.md). The cost is memory: one entry
// per currently revoked token (about 100 bytes each), and a SCAN at start and after each reconnect.
// While the mirror is not ready, lookups go to Redis as in the lookup mode (one MGET per tick).
//
// User revocations (`<userPrefix><keyOf(tenant, sub)>` holding `before`, docs/REDIS.md#user-revocations)
// are mirrored the same way, in a second map: the tracking has a second PREFIX, the sync a second
// SCAN, and their keys are read with GET and PTTL. The functions that deal with them end in User(s).
// After every sync, every revocation the new copy holds is reported: sockets carrying a token revoked
// while the mirror was away (or let in by a fail-open lookup meanwhile) are closed once it is back.
// On a Redis Cluster one such mirror runs per master (cluster-revocation-mirror.ts).
import type { Redis } from 'ioredis';
import { keyOf2, partsOf } from '../../keys/keys.js';
import { StoreUnavailable, type RevocationStore } from '../ports.js';
import { DEFAULT_USER_PREFIX, parseBefore, RedisRevocationStore, type BatchObserver } from './revocation.js';

/** A user revocation in the mirror: `before` (seconds) and when the key expires (ms; Infinity: no TTL). */
interface UserEntry { readonly before: number; readonly until: number }

export interface MirrorOptions {
  /** Where lookups go while the mirror is not ready (default: the lookup mode on `redis`). */
  readonly lookup?: RevocationStore;
  /**
   * A shard of a cluster mirror: the node must be a master. The heartbeat asks ROLE instead of PING;
   * a node that is no longer a master makes the mirror not ready and calls onDemoted.
   */
  readonly master?: boolean;
  readonly onDemoted?: () => void;
}

const INVALIDATE = '__redis__:invalidate';

export class RedisRevocationMirror implements RevocationStore {
  /** jti -> ms when the key expires (Infinity: no TTL) */
  private revoked = new Map<string, number>();
  private ready = false;
  /** bumps on every (re)start of the sync: a sync that finds a newer generation stops */
  private generation = 0;
  /** keys invalidated while a sync runs (re-read at its end) */
  private invalidatedDuringSync: Set<string> | undefined;
  /** keys to re-read at the next tick */
  private toCheck = new Set<string>();
  private checkScheduled = false;
  private handler: ((jti: string) => void) | undefined;
  /** keyOf2(tenant, sub) -> the user's revocation */
  private users = new Map<string, UserEntry>();
  private userHandler: ((tenantId: string, sub: string, before: number) => void) | undefined;
  private readonly lookup: RevocationStore;
  private closed = false;
  /** the subscriber's client id while it is subscribed (a subscribed connection cannot ask) */
  private subId: number | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private beating = false;
  /** lookups answered from the copy */
  private answered = 0;
  syncs = 0;
  syncFailures = 0;
  invalidations = 0;

  constructor(
    private readonly redis: Redis,
    /** a connection for this mirror only (it is put in subscriber mode) */
    private readonly sub: Redis,
    private readonly prefix: string,
    timeoutMs: number,
    private readonly now: () => number = Date.now,
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly userPrefix: string = DEFAULT_USER_PREFIX,
    observe?: BatchObserver,
    private readonly options: MirrorOptions = {},
  ) {
    this.lookup = options.lookup ?? new RedisRevocationStore(redis, prefix, timeoutMs, userPrefix, observe);
    sub.on('messageBuffer', (channel: Buffer, message: Buffer[] | null) => {
      if (channel.toString() === INVALIDATE) this.invalidated(message);
    });
    const restart = (): void => void this.sync();
    this.heartbeat = setInterval(() => void this.beat(timeoutMs), 1000);
    this.heartbeat.unref();
    redis.on('ready', restart);
    sub.on('ready', restart);
    redis.on('close', () => this.lost());
    sub.on('close', () => {
      this.subId = undefined;
      this.lost();
    });
    if (redis.status === 'ready' && sub.status === 'ready') restart();
  }

  /** Lookups answered here and by the fallback. */
  get lookups(): number {
    return this.answered + this.lookup.lookups;
  }

  get roundTrips(): number {
    return this.lookup.roundTrips;
  }

  /** Entries in the mirror (revoked tokens and users known now). */
  get size(): number {
    return this.revoked.size + this.users.size;
  }

  get isReady(): boolean {
    return this.ready;
  }

  isRevokedNow(jti: string): boolean | undefined {
    if (!this.ready) return undefined;
    this.answered++;
    const until = this.revoked.get(jti);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.revoked.delete(jti);
    return false;
  }

  isRevoked(jti: string): Promise<boolean> {
    const known = this.isRevokedNow(jti);
    if (known !== undefined) return Promise.resolve(known);
    return this.lookup.isRevoked(jti);
  }

  /** Writes the key; this node's mirror knows at once (the invalidation confirms it a moment later). */
  async revoke(jti: string, ttlSec: number): Promise<void> {
    await this.lookup.revoke(jti, ttlSec);
    this.remember(jti, ttlSec);
  }

  /** This node wrote the key itself: the mirror knows at once. */
  remember(jti: string, ttlSec: number): void {
    if (this.ready) this.revoked.set(jti, this.now() + Math.max(1, Math.ceil(ttlSec)) * 1000);
  }

  /** This node wrote a user revocation itself: the mirror knows at once. */
  rememberUser(tenantId: string, sub: string, before: number, ttlSec: number): void {
    if (this.ready) this.users.set(keyOf2(tenantId, sub), { before, until: this.now() + Math.max(1, Math.ceil(ttlSec)) * 1000 });
  }

  /** User revocations in the mirror. */
  get userCount(): number {
    return this.users.size;
  }

  onRevoked(handler: (jti: string) => void): void {
    this.handler = handler;
  }

  userRevokedBeforeNow(tenantId: string, sub: string): number | undefined {
    if (!this.ready) return undefined;
    if (this.users.size === 0) return 0; // no key to build on the upgrade path while nobody is revoked
    const key = keyOf2(tenantId, sub);
    const e = this.users.get(key);
    if (e === undefined) return 0;
    if (e.until > this.now()) return e.before;
    this.users.delete(key);
    return 0;
  }

  userRevokedBefore(tenantId: string, sub: string): Promise<number> {
    const known = this.userRevokedBeforeNow(tenantId, sub);
    if (known !== undefined) return Promise.resolve(known);
    return this.lookup.userRevokedBefore(tenantId, sub);
  }

  /** Writes the key; this node's mirror knows at once (as revoke). */
  async revokeUser(tenantId: string, sub: string, before: number, ttlSec: number): Promise<void> {
    await this.lookup.revokeUser(tenantId, sub, before, ttlSec);
    this.rememberUser(tenantId, sub, before, ttlSec);
  }

  onUserRevoked(handler: (tenantId: string, sub: string, before: number) => void): void {
    this.userHandler = handler;
  }

  close(): void {
    this.closed = true;
    this.ready = false;
    clearInterval(this.heartbeat);
    this.sub.disconnect();
  }

  private async beat(timeoutMs: number): Promise<void> {
    if (this.beating || this.closed || this.redis.status !== 'ready' || this.sub.status !== 'ready') return;
    this.beating = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const [master] = await Promise.race([
        Promise.all([this.options.master ? this.isMaster() : Promise.resolve(true), this.sub.ping()]),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new StoreUnavailable('revocation mirror: no PING answer')), timeoutMs))),
      ]);
      if (!master) {
        // a failover made this node a replica: its keys are served (and tracked) elsewhere now
        this.lost();
        this.options.onDemoted?.();
        return;
      }
      if (!this.ready && this.invalidatedDuringSync === undefined) void this.sync();
    } catch (err) {
      if (this.ready) this.onError(err);
      this.lost();
    } finally {
      clearTimeout(timer);
      this.beating = false;
    }
  }

  private lost(): void {
    this.ready = false;
    this.generation++;
  }

  private async isMaster(): Promise<boolean> {
    const role = (await this.redis.role()) as unknown[];
    return role[0] === 'master';
  }

  /** Steps 1-3 above; on failure, the next 'ready' of a connection starts over. */
  private async sync(): Promise<void> {
    if (this.closed || this.redis.status !== 'ready' || this.sub.status !== 'ready') return;
    const gen = ++this.generation;
    this.ready = false;
    this.syncs++;
    const pending = new Set<string>();
    this.invalidatedDuringSync = pending;
    try {
      if (this.options.master && !(await this.isMaster())) {
        this.options.onDemoted?.();
        return;
      }
      if (this.subId === undefined) {
        const id = Number(await this.sub.client('ID'));
        await this.sub.subscribe(INVALIDATE);
        this.subId = id;
      }
      const id = this.subId;
      // OFF first: a tracking left on from before (a redirect to an old subscriber) is replaced
      await this.redis.call('CLIENT', 'TRACKING', 'OFF');
      await this.redis.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', 'PREFIX', this.prefix, 'PREFIX', this.userPrefix);
      const next = new Map<string, number>();
      const nextUsers = new Map<string, UserEntry>();
      if (!(await this.scan(this.prefix, gen, (keys) => this.read(keys, next)))) return;
      if (!(await this.scan(this.userPrefix, gen, (keys) => this.readUsers(keys, nextUsers)))) return;
      // keys changed while the scans ran: read them again, into the new maps
      while (pending.size > 0) {
        const keys = [...pending];
        pending.clear();
        await this.read(keys.filter((k) => k.startsWith(this.prefix)), next);
        await this.readUsers(keys.filter((k) => k.startsWith(this.userPrefix)), nextUsers);
        if (gen !== this.generation) return;
      }
      this.revoked = next;
      this.users = nextUsers;
      this.ready = true;
      this.reportResynced();
    } catch (err) {
      if (gen === this.generation) {
        this.syncFailures++;
        this.onError(err);
      }
    } finally {
      // this sync's collection of invalidations ends with it (a newer sync has its own)
      if (this.invalidatedDuringSync === pending) this.invalidatedDuringSync = undefined;
    }
  }

  /** SCAN MATCH <prefix>*, each page handed to `read`; false when a newer sync started meanwhile. */
  private async scan(prefix: string, gen: number, read: (keys: string[]) => Promise<unknown>): Promise<boolean> {
    // MATCH is a glob: the prefix's own glob characters are escaped
    const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [c, keys] = (await this.redis.scan(cursor, 'MATCH', match, 'COUNT', 1000)) as [string, string[]];
      if (gen !== this.generation) return false;
      cursor = c;
      await read(keys);
    } while (cursor !== '0');
    return gen === this.generation;
  }

  /**
   * After a sync, every revocation the new copy holds is reported, not only the ones the old copy
   * lacked: while the mirror was away, upgrades were decided by lookups, and with
   * WSGATE_REVOCATION_FAIL_OPEN a token the old copy knew as revoked may have been let in during the
   * outage (the red team's finding). Closing the sockets of a revoked token is always right, and
   * the Hub closes them all with one scan of its sessions (core/control.ts). Syncs are rare (start,
   * reconnects, failovers).
   */
  private reportResynced(): void {
    for (const jti of this.revoked.keys()) this.tell(jti);
    for (const [key, e] of this.users) this.tellUser(key, e.before);
  }

  private tell(jti: string): void {
    try {
      this.handler?.(jti);
    } catch (err) {
      this.onError(err);
    }
  }

  private tellUser(key: string, before: number): void {
    const parts = partsOf(key);
    if (parts?.length !== 2) return; // not a key the gateway could have written: no user to close
    try {
      this.userHandler?.(parts[0]!, parts[1]!, before);
    } catch (err) {
      this.onError(err);
    }
  }

  /** PTTL of each key (one pipeline) into `into`: exists -> revoked until its expiry, else removed. Returns the jtis now revoked. */
  private async read(keys: readonly string[], into: Map<string, number>): Promise<string[]> {
    if (keys.length === 0) return [];
    const p = this.redis.pipeline();
    for (const k of keys) p.pttl(k);
    const res = await p.exec();
    if (!res) throw new StoreUnavailable('revocation mirror: pipeline aborted');
    const now = this.now();
    const revoked: string[] = [];
    keys.forEach((key, i) => {
      const [err, ttl] = res[i]!;
      if (err) throw err;
      const jti = key.slice(this.prefix.length);
      const ms = Number(ttl);
      if (ms === -2) into.delete(jti);
      else {
        into.set(jti, ms === -1 ? Infinity : now + ms);
        revoked.push(jti);
      }
    });
    return revoked;
  }

  /** GET and PTTL of each user key (one pipeline) into `into`. Returns the user keys (keyOf2) that now exist. */
  private async readUsers(keys: readonly string[], into: Map<string, UserEntry>): Promise<string[]> {
    if (keys.length === 0) return [];
    const p = this.redis.pipeline();
    for (const k of keys) p.get(k).pttl(k);
    const res = await p.exec();
    if (!res) throw new StoreUnavailable('revocation mirror: pipeline aborted');
    const now = this.now();
    const present: string[] = [];
    keys.forEach((key, i) => {
      const [gerr, value] = res[2 * i]!;
      const [terr, ttl] = res[2 * i + 1]!;
      // a key that is not a string (WRONGTYPE) is garbage: it revokes every token of the user, as parseBefore says
      if (gerr && !String(gerr.message).startsWith('WRONGTYPE')) throw gerr;
      if (terr) throw terr;
      const user = key.slice(this.userPrefix.length);
      const ms = Number(ttl);
      if (ms === -2 || (value === null && !gerr)) into.delete(user);
      else {
        into.set(user, { before: gerr ? Infinity : parseBefore(value as string), until: ms === -1 ? Infinity : now + ms });
        present.push(user);
      }
    });
    return present;
  }

  private invalidated(message: Buffer[] | null): void {
    this.invalidations++;
    if (message === null) {
      // FLUSHDB/FLUSHALL, or Redis dropped tracking state: start over
      void this.sync();
      return;
    }
    for (const b of message) {
      const key = b.toString();
      if (!key.startsWith(this.prefix) && !key.startsWith(this.userPrefix)) continue;
      if (this.invalidatedDuringSync) this.invalidatedDuringSync.add(key);
      else this.toCheck.add(key);
    }
    if (this.toCheck.size > 0 && !this.checkScheduled) {
      this.checkScheduled = true;
      setImmediate(() => void this.check());
    }
  }

  private report(jti: string): void {
    try {
      this.handler?.(jti);
    } catch (err) {
      this.onError(err);
    }
  }

  /** Step 4: re-reads the invalidated keys, updates the mirror, reports new revocations. */
  private async check(): Promise<void> {
    this.checkScheduled = false;
    const keys = [...this.toCheck];
    this.toCheck.clear();
    const gen = this.generation;
    try {
      // Read into maps of their own, applied only if no sync started meanwhile: a read that lands in
      // the copy a sync is about to replace would put the key in the sync's "before", and the sync
      // would not report it (the red team's revocations that never closed their sockets).
      const tokenKeys = keys.filter((k) => k.startsWith(this.prefix));
      const userKeys = keys.filter((k) => k.startsWith(this.userPrefix));
      const seen = new Map<string, number>();
      const seenUsers = new Map<string, UserEntry>();
      const revoked = await this.read(tokenKeys, seen);
      const users = await this.readUsers(userKeys, seenUsers);
      if (gen !== this.generation) return; // the sync under way reads these keys itself
      for (const k of tokenKeys) {
        const jti = k.slice(this.prefix.length);
        const until = seen.get(jti);
        if (until === undefined) this.revoked.delete(jti);
        else this.revoked.set(jti, until);
      }
      for (const k of userKeys) {
        const user = k.slice(this.userPrefix.length);
        const e = seenUsers.get(user);
        if (e === undefined) this.users.delete(user);
        else this.users.set(user, e);
      }
      for (const jti of revoked) this.tell(jti);
      for (const key of users) this.tellUser(key, this.users.get(key)?.before ?? 0);
    } catch (err) {
      // could not read them: the mirror cannot be trusted until a new sync
      this.onError(err);
      this.lost();
      void this.sync();
    }
  }
}
