// The server API's routes (docs/API.md): what each does, and the validation of its input. No uWS:
// server/admin.ts hands each route the query string and the body's bytes, and writes the reply.
// Every input is bounded (the body's size by the route, its depth and item count by the frame
// limits of the client protocol) and checked field by field; a bad one is a typed 400.
//
// Adding a route is adding one entry to routes(); a route that answers other than JSON (a
// Prometheus /metrics, say) returns `text`.
import { isClaimString } from '../auth/claims.js';
import type { Gathered } from '../core/control.js';
import { AdminError, type AdminErrorKind } from '../errors/codes.js';
import type { Metrics } from '../observability/metrics.js';
import { JsonWalker, type FrameLimits } from '../protocol/bounds.js';
import { MAX_CONNECTION_ID, type Answer, type Command } from '../protocol/bus.js';
import { encodeJson, encodeMsgpack } from '../protocol/codec.js';
import type { ServerMessage } from '../protocol/messages.js';
import { roomKey, validRoom } from '../rooms/rooms.js';
import type { PresenceStore, RevocationStore } from '../stores/ports.js';
import { withTimeout } from '../core/timeout.js';

/** A refusal of the request: answered with its status and { error, code }. */
export class AdminRefusal extends Error {
  constructor(readonly kind: AdminErrorKind) {
    super(kind.error);
    this.name = 'AdminRefusal';
  }
}

export interface AdminReply {
  readonly status: number;
  /** JSON-encoded into the body */
  readonly body?: unknown;
  /** or a body as is, with its content type */
  readonly text?: { readonly contentType: string; readonly body: string };
}

export interface RouteInput {
  /** the raw query string, without '?' */
  readonly query: string;
  /** the body's bytes (POST routes) */
  readonly body: Uint8Array | undefined;
  /** who called (auth.ts) */
  readonly principal: string;
}

export interface AdminRoute {
  readonly method: 'get' | 'post';
  readonly path: string;
  /** largest body accepted (POST); over it: 413 */
  readonly maxBody: number;
  /** writes something (logged at info, with the principal) */
  readonly mutates: boolean;
  handle(input: RouteInput): Promise<AdminReply>;
}

/** What the routes reach: the core and the stores, as small ports. */
export interface AdminPorts {
  /** Runs a command on every node (Hub.command). */
  command(c: Command): Promise<Gathered>;
  /** Sends a room's frames to its members on every node (FanOut.toRoom). */
  publish(roomKey: string, bin: Buffer, json: string): void;
  readonly presence: PresenceStore;
  readonly revocations: RevocationStore;
  readonly metrics: Metrics;
  readonly now: () => number;
  /**
   * Drains the gateway this listener belongs to (server/drain.ts; with workers, every worker of the
   * host): the seconds not given are the configured ones. Answers the plan and the node that drains.
   */
  drain(plan: { graceSec?: number; drainSec?: number }): { node: string; graceSec: number; drainSec: number };
}

export interface AdminLimits {
  readonly maxRoomNameLength: number;
  /** largest publish request of a client (WSGATE_MAX_PUBLISH_BYTES); the publish body may hold 1 KiB more (its fields) */
  readonly maxPublishBytes: number;
  readonly frame: FrameLimits;
  /** how long a store read (presence) may take */
  readonly timeoutMs: number;
  /** a revocation's TTL when the request names none: WSGATE_JWT_MAX_TTL_SEC + the clock tolerance */
  readonly defaultTtlSec: number;
}

/** Bodies of the routes other than publish. */
const SMALL_BODY = 4096;
/** The longest grace or spread a drain request may ask for (as WSGATE_DRAIN_GRACE_SEC and WSGATE_DRAIN_SEC allow). */
const MAX_DRAIN_SEC = 3600;
/** ttlSec a request may name at most: one year. */
export const MAX_TTL_SEC = 31_536_000;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export class AdminApi {
  private readonly walker: JsonWalker;

  constructor(
    private readonly ports: AdminPorts,
    private readonly limits: AdminLimits,
  ) {
    this.walker = new JsonWalker(limits.frame);
  }

  routes(): AdminRoute[] {
    const post = (path: string, handle: (body: Fields) => Promise<AdminReply>, maxBody = SMALL_BODY): AdminRoute => ({
      method: 'post',
      path,
      maxBody,
      mutates: true,
      handle: (input) => handle(this.body(input.body)),
    });
    const get = (path: string, handle: (query: Fields) => Promise<AdminReply>): AdminRoute => ({
      method: 'get',
      path,
      maxBody: 0,
      mutates: false,
      handle: async (input) => handle(queryFields(input.query)),
    });
    return [
      post('/v1/rooms/publish', (b) => this.publish(b), this.limits.maxPublishBytes + 1024),
      get('/v1/rooms/presence', (q) => this.presence(q)),
      post('/v1/connections/disconnect', (b) => this.disconnect(b)),
      post('/v1/users/disconnect', (b) => this.disconnectUser(b)),
      post('/v1/tokens/revoke', (b) => this.revokeToken(b)),
      post('/v1/users/revoke', (b) => this.revokeUser(b)),
      get('/v1/connections/counts', (q) => this.counts(q)),
      get('/v1/nodes', (q) => this.nodes(q)),
      post('/v1/drain', (b) => this.drain(b)),
    ];
  }

  /** JSON body -> its fields, within the frame limits. */
  private body(bytes: Uint8Array | undefined): Fields {
    let value: unknown;
    try {
      value = JSON.parse(Buffer.from(bytes ?? new Uint8Array()).toString('utf8'));
    } catch {
      throw new AdminRefusal(AdminError.BAD_REQUEST);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new AdminRefusal(AdminError.BAD_REQUEST);
    if (this.walker.check(value) !== undefined) throw new AdminRefusal(AdminError.BAD_REQUEST);
    return new Fields(value as Record<string, unknown>);
  }

  private async publish(b: Fields): Promise<AdminReply> {
    const [tenant, room] = [b.claim('tenant', AdminError.BAD_TENANT), this.room(b)];
    const from = b.optional('from') === undefined ? '' : b.claim('from', AdminError.BAD_FROM);
    const data = b.any('data');
    b.done();
    const ts = this.ports.now();
    const msg: ServerMessage = { type: 'message', room, data, from, ts };
    this.ports.publish(roomKey(tenant, room), encodeMsgpack(msg), encodeJson(msg));
    this.ports.metrics.publishes++;
    return ok({ tenant, room, ts });
  }

  private async presence(q: Fields): Promise<AdminReply> {
    const [tenant, room] = [q.claim('tenant', AdminError.BAD_TENANT), this.room(q)];
    q.done();
    let users: string[];
    try {
      users = await withTimeout(this.ports.presence.members(roomKey(tenant, room)), this.limits.timeoutMs, 'presence query');
    } catch {
      throw new AdminRefusal(AdminError.UNAVAILABLE);
    }
    return ok({ tenant, room, users });
  }

  private async disconnect(b: Fields): Promise<AdminReply> {
    const connection = b.string('connection', MAX_CONNECTION_ID, AdminError.BAD_CONNECTION);
    const reconnect = b.flag('reconnect');
    b.done();
    return ok({ connection, ...closedOn(await this.ports.command({ op: 'disconnect', connection, reconnect })) });
  }

  private async disconnectUser(b: Fields): Promise<AdminReply> {
    const [tenant, user] = [b.claim('tenant', AdminError.BAD_TENANT), b.claim('user', AdminError.BAD_USER)];
    const reconnect = b.flag('reconnect');
    b.done();
    return ok({ tenant, user, ...closedOn(await this.ports.command({ op: 'disconnect-user', tenant, user, reconnect })) });
  }

  /** Writes `<prefix><jti>` (every node refuses the token from then on), then closes the sockets carrying it on every node. */
  private async revokeToken(b: Fields): Promise<AdminReply> {
    const jti = b.claim('jti', AdminError.BAD_JTI);
    const ttlSec = this.ttl(b);
    b.done();
    await this.store(this.ports.revocations.revoke(jti, ttlSec));
    return ok({ jti, ttlSec, ...closedOn(await this.ports.command({ op: 'revoke-token', jti })) });
  }

  /**
   * Writes the user revocation (every token of the user issued up to this second, and every token
   * without iat, is refused from then on), then closes the user's sockets on every node.
   */
  private async revokeUser(b: Fields): Promise<AdminReply> {
    const [tenant, user] = [b.claim('tenant', AdminError.BAD_TENANT), b.claim('user', AdminError.BAD_USER)];
    const ttlSec = this.ttl(b);
    b.done();
    // iat has a resolution of one second: a token issued in this second may predate the call, so
    // the whole second is revoked. A new token for the user must be issued from the next second.
    const revokedBefore = Math.floor(this.ports.now() / 1000) + 1;
    await this.store(this.ports.revocations.revokeUser(tenant, user, revokedBefore, ttlSec));
    return ok({ tenant, user, revokedBefore, ttlSec, ...closedOn(await this.ports.command({ op: 'revoke-user', tenant, user, before: revokedBefore })) });
  }

  private async counts(q: Fields): Promise<AdminReply> {
    const tenant = q.optional('tenant') === undefined ? undefined : q.claim('tenant', AdminError.BAD_TENANT);
    q.done();
    const g = await this.ports.command({ op: 'stats', tenant, tenants: true });
    let total = 0;
    let truncated = false;
    const nodes: [string, number][] = [];
    const tenants = new Map<string, number>();
    for (const [node, a] of sorted(g.answers)) {
      if (a.op !== 'stats') continue;
      total += a.stats.connections;
      truncated ||= a.stats.truncated;
      nodes.push([node, a.stats.connections]);
      for (const [t, n] of a.stats.tenants) tenants.set(t, (tenants.get(t) ?? 0) + n);
    }
    const byTenant = [...tenants].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
    return ok({ total, nodes: Object.fromEntries(nodes), tenants: Object.fromEntries(byTenant), truncated, missing: g.missing, complete: g.complete });
  }

  private async nodes(q: Fields): Promise<AdminReply> {
    q.done();
    const g = await this.ports.command({ op: 'stats', tenant: undefined, tenants: false });
    const nodes: Record<string, unknown>[] = [];
    for (const [id, a] of sorted(g.answers)) {
      if (a.op === 'stats') nodes.push({ id, connections: a.stats.connections, draining: a.stats.draining, uptimeSec: a.stats.uptimeSec });
    }
    return ok({ nodes, missing: g.missing, complete: g.complete });
  }

  /** Starts the drain of this gateway (as SIGTERM does); a second call joins the drain under way. */
  private async drain(b: Fields): Promise<AdminReply> {
    const seconds = (name: string): number | undefined => {
      const v = b.optional(name);
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_DRAIN_SEC) throw new AdminRefusal(AdminError.BAD_REQUEST);
      return v;
    };
    const plan = { graceSec: seconds('graceSec'), drainSec: seconds('drainSec') };
    b.done();
    return { status: 202, body: { draining: true, ...this.ports.drain(plan) } };
  }

  private room(f: Fields): string {
    const room = f.optional('room');
    if (typeof room !== 'string' || !validRoom(room, this.limits.maxRoomNameLength)) throw new AdminRefusal(room === undefined ? AdminError.BAD_REQUEST : AdminError.BAD_ROOM);
    return room;
  }

  private ttl(f: Fields): number {
    const v = f.optional('ttlSec');
    if (v === undefined) return this.limits.defaultTtlSec;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > MAX_TTL_SEC) throw new AdminRefusal(AdminError.BAD_TTL);
    return v;
  }

  /** A store write: UNAVAILABLE when Redis cannot take it in time. */
  private async store(p: Promise<void>): Promise<void> {
    try {
      await withTimeout(p, this.limits.timeoutMs, 'revocation write');
    } catch {
      throw new AdminRefusal(AdminError.UNAVAILABLE);
    }
  }
}

const ok = (body: Record<string, unknown>): AdminReply => ({ status: 200, body });

const sorted = (m: ReadonlyMap<string, Answer>): [string, Answer][] => [...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

/** How many sockets a command closed, in all and per node. */
function closedOn(g: Gathered): { closed: number; nodes: Record<string, number>; missing: readonly string[]; complete: boolean } {
  let closed = 0;
  const nodes: [string, number][] = [];
  for (const [node, a] of sorted(g.answers)) {
    if (a.op !== 'closed') continue;
    closed += a.closed;
    nodes.push([node, a.closed]);
  }
  return { closed, nodes: Object.fromEntries(nodes), missing: g.missing, complete: g.complete };
}

/**
 * A query string's parameters as fields: each at most once, percent-decoded strictly. URLSearchParams
 * keeps a malformed escape (`%ZZ`) as text and turns bytes that are not UTF-8 into U+FFFD, so a
 * tenant could be named by a string nobody sent; both are refused instead.
 */
function queryFields(query: string): Fields {
  const out = Object.create(null) as Record<string, unknown>; // a parameter named __proto__ is a field like any other
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const k = strictDecode(eq < 0 ? pair : pair.slice(0, eq));
    const v = strictDecode(eq < 0 ? '' : pair.slice(eq + 1));
    if (Object.hasOwn(out, k)) throw new AdminRefusal(AdminError.BAD_REQUEST);
    out[k] = v;
  }
  return new Fields(out);
}

function strictDecode(s: string): string {
  try {
    return decodeURIComponent(s.replaceAll('+', ' ')); // throws on a malformed escape or bytes that are not UTF-8
  } catch {
    throw new AdminRefusal(AdminError.BAD_REQUEST);
  }
}

/** The fields of a request, read one by one; done() refuses any that was not read. */
class Fields {
  private readonly read = new Set<string>();

  constructor(private readonly values: Record<string, unknown>) {}

  optional(name: string): unknown {
    this.read.add(name);
    return Object.hasOwn(this.values, name) ? this.values[name] : undefined;
  }

  /** A present field of any JSON value (null included). */
  any(name: string): unknown {
    if (!Object.hasOwn(this.values, name)) throw new AdminRefusal(AdminError.BAD_REQUEST);
    return this.optional(name);
  }

  /** A claim string (auth/claims.ts: what tenants, users and token ids are). */
  claim(name: string, bad: AdminErrorKind): string {
    const v = this.optional(name);
    if (v === undefined) throw new AdminRefusal(AdminError.BAD_REQUEST);
    if (!isClaimString(v)) throw new AdminRefusal(bad);
    return v;
  }

  string(name: string, maxLength: number, bad: AdminErrorKind): string {
    const v = this.optional(name);
    if (v === undefined) throw new AdminRefusal(AdminError.BAD_REQUEST);
    if (typeof v !== 'string' || v.length === 0 || v.length > maxLength || !v.isWellFormed() || CONTROL.test(v)) throw new AdminRefusal(bad);
    return v;
  }

  /** An optional boolean, false when absent. */
  flag(name: string): boolean {
    const v = this.optional(name);
    if (v !== undefined && typeof v !== 'boolean') throw new AdminRefusal(AdminError.BAD_REQUEST);
    return v === true;
  }

  /** Every field was read: an unknown one is refused (a typo must not pass as a default). */
  done(): void {
    for (const k of Object.keys(this.values)) if (!this.read.has(k)) throw new AdminRefusal(AdminError.BAD_REQUEST);
  }
}
