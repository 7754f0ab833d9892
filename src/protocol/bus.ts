// The node-to-node envelope on the Bus (stores/ports.ts): what one gateway node tells the others.
// Plain MessagePack maps with short keys and a kind. Pure. Envelopes come from other nodes of the
// same deployment, but are still validated field by field: a malformed one is dropped.
//
// Kinds:
//   room     frames for a room's members (k 'r')
//   command  something every node does to its own sockets, from the server API (k 'c'): close a
//            connection or a user's, close the sockets of a revoked token or user, count
//   answer   one node's answer to a command, addressed to the node that sent it (k 'a')
// A command carries an id; every node answers it once, so the asking node knows when all did.
// Tenants, users and token ids were checked against the claim grammar by the node that sent them
// (the server API); here they are checked as strings of 1 to 256 characters, enough for lookups.
import { Packr, Unpackr } from 'msgpackr';

/** What every node does on its own sockets. */
export type Command =
  /** close the connection with this id (its node has it); reconnect: 4509 instead of 4009 */
  | { readonly op: 'disconnect'; readonly connection: string; readonly reconnect: boolean }
  /** close every socket of the user */
  | { readonly op: 'disconnect-user'; readonly tenant: string; readonly user: string; readonly reconnect: boolean }
  /** close the sockets carrying this token id with 4003 (the key is written already) */
  | { readonly op: 'revoke-token'; readonly jti: string }
  /** close the user's sockets whose token was issued before `before` (seconds), or has no iat, with 4003 */
  | { readonly op: 'revoke-user'; readonly tenant: string; readonly user: string; readonly before: number }
  /** count the connections (of one tenant, when given); `tenants`: list the counts per tenant too */
  | { readonly op: 'stats'; readonly tenant: string | undefined; readonly tenants: boolean };

/** One node's counts. */
export interface NodeStats {
  readonly connections: number;
  /** connections per tenant; only the largest MAX_STATS_TENANTS when there are more (then `truncated`) */
  readonly tenants: ReadonlyMap<string, number>;
  readonly truncated: boolean;
  readonly draining: boolean;
  readonly uptimeSec: number;
}

export type Answer = { readonly op: 'closed'; readonly closed: number } | { readonly op: 'stats'; readonly stats: NodeStats };

export type Envelope =
  /** Frames for a room's members, already encoded for both subprotocols (receivers only copy bytes). */
  | { readonly kind: 'room'; readonly node: string; readonly room: string; readonly bin: Uint8Array; readonly json: string }
  | { readonly kind: 'command'; readonly node: string; readonly id: string; readonly command: Command }
  | { readonly kind: 'answer'; readonly node: string; readonly to: string; readonly id: string; readonly answer: Answer };

/** Tenants one node lists in a stats answer at most. */
export const MAX_STATS_TENANTS = 10_000;
/** Longest connection id accepted (a node id, a dot, a base-36 counter). */
export const MAX_CONNECTION_ID = 512;

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

function commandFields(c: Command): Record<string, unknown> {
  switch (c.op) {
    case 'disconnect': return { o: 'd', c: c.connection, rc: c.reconnect };
    case 'disconnect-user': return { o: 'du', t: c.tenant, u: c.user, rc: c.reconnect };
    case 'revoke-token': return { o: 'rt', j: c.jti };
    case 'revoke-user': return { o: 'ru', t: c.tenant, u: c.user, b: c.before };
    case 'stats': return c.tenant === undefined ? { o: 's', pt: c.tenants } : { o: 's', t: c.tenant, pt: c.tenants };
  }
}

function answerFields(a: Answer): Record<string, unknown> {
  if (a.op === 'closed') return { o: 'c', c: a.closed };
  // tenants as a flat [tenant, count, ...] array: a tenant named __proto__ never meets an object's keys
  const t: unknown[] = [];
  for (const [tenant, n] of a.stats.tenants) t.push(tenant, n);
  const s = a.stats;
  return { o: 's', c: s.connections, t, tr: s.truncated, dr: s.draining, up: s.uptimeSec };
}

export function encodeEnvelope(e: Envelope): Buffer {
  switch (e.kind) {
    case 'room': return packr.pack({ k: 'r', n: e.node, r: e.room, b: e.bin, j: e.json });
    case 'command': return packr.pack({ k: 'c', n: e.node, i: e.id, ...commandFields(e.command) });
    case 'answer': return packr.pack({ k: 'a', n: e.node, to: e.to, i: e.id, ...answerFields(e.answer) });
  }
}

const count = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const id = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_CONNECTION_ID;
const isClaimString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;

function decodeCommand(m: Record<string, unknown>): Command | undefined {
  switch (m.o) {
    case 'd': return id(m.c) && typeof m.rc === 'boolean' ? { op: 'disconnect', connection: m.c, reconnect: m.rc } : undefined;
    case 'du': return isClaimString(m.t) && isClaimString(m.u) && typeof m.rc === 'boolean' ? { op: 'disconnect-user', tenant: m.t, user: m.u, reconnect: m.rc } : undefined;
    case 'rt': return isClaimString(m.j) ? { op: 'revoke-token', jti: m.j } : undefined;
    case 'ru': return isClaimString(m.t) && isClaimString(m.u) && count(m.b) ? { op: 'revoke-user', tenant: m.t, user: m.u, before: m.b } : undefined;
    case 's':
      if (typeof m.pt !== 'boolean') return undefined;
      if (m.t === undefined) return { op: 'stats', tenant: undefined, tenants: m.pt };
      return isClaimString(m.t) ? { op: 'stats', tenant: m.t, tenants: m.pt } : undefined;
    default: return undefined;
  }
}

function decodeAnswer(m: Record<string, unknown>): Answer | undefined {
  if (m.o === 'c') return count(m.c) ? { op: 'closed', closed: m.c } : undefined;
  if (m.o !== 's' || !count(m.c) || !Array.isArray(m.t) || m.t.length > 2 * MAX_STATS_TENANTS || m.t.length % 2 !== 0) return undefined;
  if (typeof m.tr !== 'boolean' || typeof m.dr !== 'boolean' || !count(m.up)) return undefined;
  const tenants = new Map<string, number>();
  for (let i = 0; i < m.t.length; i += 2) {
    const tenant: unknown = m.t[i];
    const n: unknown = m.t[i + 1];
    if (!isClaimString(tenant) || !count(n)) return undefined;
    tenants.set(tenant, n);
  }
  return { op: 'stats', stats: { connections: m.c, tenants, truncated: m.tr, draining: m.dr, uptimeSec: m.up } };
}

export function decodeEnvelope(payload: Uint8Array): Envelope | undefined {
  let m: Record<string, unknown>;
  try {
    m = unpackr.unpack(payload) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (m === null || typeof m !== 'object' || typeof m.n !== 'string') return undefined;
  if (m.k === 'r' && typeof m.r === 'string' && m.b instanceof Uint8Array && typeof m.j === 'string') {
    return { kind: 'room', node: m.n, room: m.r, bin: m.b, json: m.j };
  }
  if (m.k === 'c' && id(m.i)) {
    const command = decodeCommand(m);
    return command && { kind: 'command', node: m.n, id: m.i, command };
  }
  if (m.k === 'a' && id(m.i) && typeof m.to === 'string') {
    const answer = decodeAnswer(m);
    return answer && { kind: 'answer', node: m.n, to: m.to, id: m.i, answer };
  }
  return undefined;
}
