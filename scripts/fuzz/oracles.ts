// How each case is run against the gateway and judged. One frame: exactly one reply (ack,
// token:refreshed or a documented error) or a documented close. Claims and transports: refused
// with a documented status, or accepted with claims the docs allow and the precedence they
// state. Permissions: every request is allowed exactly when docs/PROTOCOL.md#permissions says
// so. Tenant isolation: a publish or a presence query of one tenant never shows another's user.
import type { ClaimsCase, FrameCase, IsolationCase, PermissionCase, TransportCase } from './cases.js';
import { frameTraits } from './cases.js';
import { encodeFor, isReply, type Event, type OpenSpec, type Opened, type Sock } from './client.js';
import { FRAME_CLOSES, INVALID_UTF8_CLOSES, OVERSIZE_CLOSES, REPLY_CODES, permits, roomIsValid, type Action } from './model.js';

export interface Finding {
  readonly kind: string;
  readonly detail: string;
}

export interface Verdict {
  outcome: string;
  readonly failures: Finding[];
  /** behaviour the docs do not settle, worth a look (not a failure) */
  readonly warnings: Finding[];
  /** the gateway process died while the case ran */
  died: boolean;
}

export interface Ctx {
  readonly url: string;
  readonly index: number;
  readonly timeoutMs: number;
  readonly maxPayload: number;
  /** HS256 with the gateway's secret (fast-jwt's createSigner) */
  sign(claims: Record<string, unknown>): string;
  open(spec: Omit<OpenSpec, 'url'>): Promise<Opened>;
  /** A pooled socket of that encoding (authenticated with ["*:**"] in tenant "fuzz"). */
  pooled(encoding: 'json' | 'msgpack'): Promise<Sock | undefined>;
  /** Did the gateway process die (waits a moment for its exit)? */
  died(): Promise<boolean>;
}

const verdict = (): Verdict => ({ outcome: '', failures: [], warnings: [], died: false });

export function outcomeOf(e: Event): string {
  switch (e.kind) {
    case 'msg':
      return e.msg.type === 'error' ? `error ${String(e.msg.code)}` : e.msg.type === 'token:refreshed' ? 'refreshed' : 'ack';
    case 'close':
      return `close ${e.code}`;
    default:
      return e.kind;
  }
}

const show = (v: unknown, max = 160): string => {
  let s: string;
  try {
    s = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x)) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > max ? `${s.slice(0, max)}…(${s.length})` : s;
};

/** A socket that dropped or went silent: the gateway's death, or a failure of its own. */
async function dropped(ctx: Ctx, v: Verdict, kind: string, detail: string): Promise<void> {
  if (await ctx.died()) {
    v.died = true;
    v.outcome = 'gateway-died';
  } else v.failures.push({ kind, detail });
}

/** Checks one reply event of a request with a known id; returns false when the socket is gone. */
async function checkReply(ctx: Ctx, v: Verdict, e: Event, what: string): Promise<boolean> {
  if (e.kind === 'msg') {
    if (e.msg.type === 'error' && !REPLY_CODES.has(String(e.msg.code))) v.failures.push({ kind: 'undocumented-error-code', detail: `${what}: ${show(e.msg)}` });
    return true;
  }
  if (e.kind === 'undecodable') {
    v.failures.push({ kind: 'undecodable-reply', detail: `${what}: ${e.bytes.subarray(0, 48).toString('hex')}` });
    return true;
  }
  if (e.kind === 'close' && (FRAME_CLOSES.has(e.code) || e.code === 4007 || oversized.has(e))) return false;
  await dropped(ctx, v, e.kind === 'silence' ? 'silence' : `undocumented-close-${e.kind === 'close' ? e.code : ''}`, `${what}: ${outcomeOf(e)}`);
  return false;
}

let requestIds = 0;
/** closes that answered a request frame over the payload limit (documented: 1006/1009) */
const oversized = new WeakSet<Event>();

/** Sends a well-formed request and waits for the reply that carries its id. */
export async function request(ctx: Ctx, sock: Sock, msg: Record<string, unknown>): Promise<Event> {
  const id = ++requestIds;
  // the id first: a frame refused for what follows it is still answered with its ref (docs/PROTOCOL.md)
  const frame = encodeFor(sock, { id, ...msg });
  sock.send(frame, !sock.json);
  const e = await sock.next((x) => x.kind === 'undecodable' || (x.kind === 'msg' && isReply(x.msg) && x.msg.ref === id), ctx.timeoutMs);
  if (e.kind === 'close' && OVERSIZE_CLOSES.has(e.code) && Buffer.byteLength(frame) > ctx.maxPayload) oversized.add(e);
  return e;
}

// ---------------------------------------------------------------- one frame

const lastCase = new WeakMap<Sock, number>();

export async function runFrame(ctx: Ctx, c: FrameCase): Promise<Verdict> {
  const v = verdict();
  const sock = await ctx.pooled(c.encoding);
  if (!sock) {
    await dropped(ctx, v, 'cannot-connect', 'no pooled socket could be opened');
    if (!v.died) v.outcome = 'cannot-connect';
    return v;
  }
  // a reply that came while no request was pending: a second reply to the previous frame
  const strays = sock.strayReplies();
  if (strays.length > 0) v.failures.push({ kind: 'extra-reply', detail: `after case ${lastCase.get(sock) ?? '?'}: ${show(strays)}` });
  lastCase.set(sock, ctx.index);
  const t = frameTraits(c, ctx.maxPayload);
  sock.send(c.bytes, c.binary);
  const e = await sock.reply(ctx.timeoutMs);
  v.outcome = outcomeOf(e);
  if (e.kind === 'msg') {
    const m = e.msg;
    if (m.type === 'error' && !REPLY_CODES.has(String(m.code))) v.failures.push({ kind: 'undocumented-error-code', detail: show(m) });
    // the ref is the frame's id, or null when the frame had no usable id
    if (c.id !== undefined && m.ref !== null && m.ref !== c.id) v.failures.push({ kind: 'wrong-ref', detail: `sent id ${show(c.id)}, reply ${show(m)}` });
    if (m.type === 'error' && m.code === 'INVALID_TOKEN') {
      const close = await sock.next(() => false, ctx.timeoutMs);
      if (close.kind !== 'close' || close.code !== 4006) v.failures.push({ kind: 'no-4006-after-invalid-token', detail: outcomeOf(close) });
    }
    return v;
  }
  if (e.kind === 'undecodable') {
    v.failures.push({ kind: 'undecodable-reply', detail: e.bytes.subarray(0, 48).toString('hex') });
    return v;
  }
  if (e.kind === 'close') {
    const allowed = new Set([...FRAME_CLOSES, ...(t.oversize ? OVERSIZE_CLOSES : []), ...(t.invalidUtf8 ? INVALID_UTF8_CLOSES : []), ...(t.wrongKind ? [4401] : [])]);
    if (allowed.has(e.code)) {
      // 1011 is documented for failures inside the gateway only: no frame may cause one
      if (e.code === 1011) v.failures.push({ kind: 'internal-error-1011', detail: 'the gateway contained an internal error to this socket' });
      // uWS drops these frames before any JavaScript runs; should the process die anyway, the
      // crash watcher counts this case among the suspects (it finished just before the exit)
      return v;
    }
    await dropped(ctx, v, `undocumented-close-${e.code}`, `close ${e.code} ${e.reason}`);
    return v;
  }
  await dropped(ctx, v, 'silence', `no reply in ${ctx.timeoutMs} ms`);
  return v;
}

// ---------------------------------------------------------------- permissions

/** Judges one join/publish/presence reply against the permission model. */
function judgePermission(v: Verdict, perms: readonly string[], action: Action, room: string, e: Event, who: string): void {
  if (e.kind !== 'msg') return;
  const valid = roomIsValid(room);
  const allowed = valid && permits(perms, action, room);
  const detail = `${who} ${action} ${show(room, 60)} with permissions ${show(perms, 200)}: ${outcomeOf(e)}`;
  if (e.msg.type === 'ack') {
    if (!valid) v.failures.push({ kind: 'invalid-room-accepted', detail });
    else if (!allowed) v.failures.push({ kind: 'permission-escalation', detail });
  } else if (e.msg.code === 'FORBIDDEN' && allowed) v.failures.push({ kind: 'permission-denied', detail });
  else if (e.msg.code === 'BAD_ROOM' && valid) v.failures.push({ kind: 'valid-room-refused', detail });
}

async function probe(ctx: Ctx, v: Verdict, sock: Sock, perms: readonly string[], action: Action, room: string, who: string): Promise<boolean> {
  const msg = action === 'join' ? { type: 'join', rooms: [room] } : action === 'publish' ? { type: 'publish', room, data: { probe: ctx.index } } : { type: 'presence', room };
  const e = await request(ctx, sock, msg);
  if (!(await checkReply(ctx, v, e, `${who} ${action}`))) return false;
  judgePermission(v, perms, action, room, e, who);
  if (action === 'join' && e.kind === 'msg' && e.msg.type === 'ack') await request(ctx, sock, { type: 'leave', rooms: [room] });
  return true;
}

const parses = (p: string): boolean => roomIsValid(p.slice(p.indexOf(':') + 1).replace(/\*\*?/g, 'x')) && ['join', 'publish', 'presence', '*'].includes(p.slice(0, p.indexOf(':')));

/** An upgrade refusal: documented statuses only, and a crash is a crash. */
async function refusal(ctx: Ctx, v: Verdict, o: Extract<Opened, { ok: false }>, allowed: readonly number[], what: string, token?: string): Promise<void> {
  v.outcome = `refused ${o.status}${o.code ? ` ${o.code}` : ''}${o.closeCode ? ` close ${o.closeCode}` : ''}`;
  if (o.status === -1) {
    v.outcome = 'client-refused';
    return;
  }
  // uWS refuses headers over its limit itself (docs/SECURITY.md, known limits): 431, or a reset when far over
  if (token !== undefined && token.length > 16_384 && (o.status === 431 || o.status === 0)) {
    v.outcome = `refused ${o.status === 0 ? 'reset' : 431} (token over 16 KiB)`;
    return;
  }
  if (allowed.includes(o.status)) return;
  if (o.status === 503) {
    v.warnings.push({ kind: 'upgrade-503', detail: what });
    return;
  }
  await dropped(ctx, v, `upgrade-${o.status === 0 ? 'dropped' : o.status}`, `${what}: ${v.outcome} ${o.error ?? ''}`);
}

export async function runPermission(ctx: Ctx, c: PermissionCase): Promise<Verdict> {
  const v = verdict();
  const socks: Sock[] = [];
  try {
    const { victim, primer, probes } = c.pair;
    if (primer) {
      const pt = ctx.sign({ sub: `pp-${ctx.index}`, tenant_id: 'perm', jti: `pp-${ctx.index}-${Math.random()}`, exp: Math.floor(Date.now() / 1000) + 3600, permissions: primer });
      const p = await ctx.open({ protocols: ['wsgate.v1.json'], headers: { authorization: `Bearer ${pt}` } });
      if (p.ok) socks.push(p.sock);
      else await refusal(ctx, v, p, [401], 'primer', pt);
      if (v.died) return v;
    }
    const vt = ctx.sign({ sub: `pv-${ctx.index}`, tenant_id: 'perm', jti: `pv-${ctx.index}-${Math.random()}`, exp: Math.floor(Date.now() / 1000) + 3600, permissions: victim });
    const o = await ctx.open({ protocols: [ctx.index % 2 === 0 ? 'wsgate.v1.json' : 'wsgate.v1.msgpack'], headers: { authorization: `Bearer ${vt}` } });
    if (!o.ok) {
      await refusal(ctx, v, o, [401], 'victim', vt);
      // refusing claims is allowed, except a list whose every entry follows the grammar
      if (o.status === 401 && victim.length <= 1000 && victim.every(parses)) v.failures.push({ kind: 'valid-token-refused', detail: `permissions ${show(victim)}` });
      return v;
    }
    socks.push(o.sock);
    for (const [action, room] of probes) if (!(await probe(ctx, v, o.sock, victim, action, room, 'victim'))) break;
    v.outcome = v.failures.some((f) => f.kind === 'permission-escalation') ? 'escalated' : 'held';
    return v;
  } finally {
    for (const s of socks) s.close();
  }
}

// ---------------------------------------------------------------- claims

const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const wellFormed = (s: unknown): s is string => typeof s === 'string' && s !== '' && !LONE.test(s);

export async function runClaims(ctx: Ctx, c: ClaimsCase): Promise<Verdict> {
  const v = verdict();
  let token: string;
  try {
    token = ctx.sign(c.claims);
  } catch {
    v.outcome = 'unsignable';
    return v;
  }
  const o = await ctx.open({ protocols: [c.protocol], headers: { authorization: `Bearer ${token}` } });
  if (!o.ok) {
    await refusal(ctx, v, o, [401], 'upgrade', token);
    return v;
  }
  const sock = o.sock;
  try {
    v.outcome = 'accepted';
    const cl = c.claims;
    const now = Date.now() / 1000;
    const bad: string[] = [];
    for (const k of ['sub', 'tenant_id', 'jti']) if (typeof cl[k] !== 'string' || cl[k] === '') bad.push(`${k}=${show(cl[k], 40)}`);
    if (typeof cl.exp !== 'number' || cl.exp < now - 10) bad.push(`exp=${show(cl.exp)}`);
    if (typeof cl.nbf === 'number' && cl.nbf > now + 10) bad.push(`nbf=${show(cl.nbf)}`);
    const p = cl.permissions;
    if (p !== undefined && (!Array.isArray(p) || p.length > 1000 || p.some((x) => typeof x !== 'string'))) bad.push(`permissions=${show(p, 60)}`);
    if (bad.length > 0) v.failures.push({ kind: 'bad-claims-accepted', detail: bad.join(', ') });
    const m = o.connected;
    if (wellFormed(cl.sub) && m.user !== cl.sub) v.failures.push({ kind: 'identity-mismatch', detail: `sub ${show(cl.sub, 60)}, connected.user ${show(m.user, 60)}` });
    if (wellFormed(cl.tenant_id) && m.tenant !== cl.tenant_id) v.failures.push({ kind: 'identity-mismatch', detail: `tenant_id ${show(cl.tenant_id, 60)}, connected.tenant ${show(m.tenant, 60)}` });
    const perms = Array.isArray(p) ? (p.filter((x) => typeof x === 'string') as string[]) : [];
    const ping = await request(ctx, sock, { type: 'ping' });
    if (!(await checkReply(ctx, v, ping, 'ping'))) return v;
    for (const action of ['join', 'publish', 'presence'] as const) if (!(await probe(ctx, v, sock, perms, action, c.room, 'claims'))) return v;
    let refresh: string;
    try {
      refresh = ctx.sign(c.refresh);
    } catch {
      return v;
    }
    const r = await request(ctx, sock, { type: 'token:refresh', token: refresh });
    v.outcome = `accepted, refresh ${outcomeOf(r)}`;
    if (!(await checkReply(ctx, v, r, 'token:refresh'))) return v;
    if (r.kind !== 'msg') return v;
    const rc = c.refresh;
    const same = rc.sub === cl.sub && rc.tenant_id === cl.tenant_id;
    if (r.msg.type === 'token:refreshed') {
      if (!same) v.failures.push({ kind: 'refresh-changed-identity', detail: `from ${show([cl.sub, cl.tenant_id], 80)} to ${show([rc.sub, rc.tenant_id], 80)}` });
      const rp = Array.isArray(rc.permissions) ? (rc.permissions.filter((x) => typeof x === 'string') as string[]) : [];
      await probe(ctx, v, sock, rp, 'publish', c.room, 'refreshed');
    } else if (r.msg.code === 'USER_MISMATCH' && same) v.failures.push({ kind: 'user-mismatch-same-identity', detail: show([cl.sub, cl.tenant_id], 80) });
    else if (r.msg.code === 'INVALID_TOKEN') {
      const close = await sock.next(() => false, ctx.timeoutMs);
      if (close.kind !== 'close' || close.code !== 4006) v.failures.push({ kind: 'no-4006-after-invalid-token', detail: outcomeOf(close) });
    }
    return v;
  } finally {
    sock.close();
  }
}

// ---------------------------------------------------------------- transports

export async function runTransport(ctx: Ctx, c: TransportCase): Promise<Verdict> {
  const v = verdict();
  const t = c.transport;
  // three tokens: identities 0 and 1, and a second token of identity 0 (same user, other jti)
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const tokens = [0, 1, 0].map((who, i) => ctx.sign({ sub: `tr-${ctx.index}-${who}`, tenant_id: 'transport', jti: `tr-${ctx.index}-${i}-${Math.random()}`, exp, permissions: ['*:**'] }));
  const headers: Record<string, string> = {};
  if (t.header !== undefined) headers.authorization = `Bearer ${tokens[t.header]}`;
  if (t.cookie !== undefined) headers.cookie = `other=1; wsgate_token=${tokens[t.cookie]}`;
  const bearers = [...new Set(t.bearerEntries.map((i) => tokens[i]!))];
  // the ws client refuses an answer without a subprotocol when it offered some: offer ours with bearer entries
  const protocols = [...bearers.map((b) => `bearer.${b}`), ...(t.protocol ? [t.protocol] : bearers.length > 0 ? ['wsgate.v1.msgpack'] : [])];
  const o = await ctx.open({ protocols, headers, ...(t.query !== undefined ? { query: `access_token=${tokens[t.query]}` } : {}) });
  // one token per transport (the subprotocol's is its first bearer entry); several different bearer
  // entries are an ambiguity of their own (a proxy may read another entry than the gateway)
  const sets = [t.header !== undefined ? [tokens[t.header]!] : [], bearers.slice(0, 1), t.query !== undefined ? [tokens[t.query]!] : [], t.cookie !== undefined ? [tokens[t.cookie]!] : []].filter((s) => s.length > 0);
  const all = new Set([...sets.flat(), ...bearers]);
  const cross = new Set(sets.flat()).size > 1;
  const desc = c.kind;
  if (!o.ok) {
    await refusal(ctx, v, o, [401, 403], desc);
    if (o.status === 401 && all.size === 1 && sets.length > 0) v.failures.push({ kind: 'agreeing-transports-refused', detail: desc });
    return v;
  }
  o.sock.close();
  v.outcome = 'accepted';
  if (all.size === 0) v.failures.push({ kind: 'no-token-accepted', detail: desc });
  else if (cross) v.failures.push({ kind: 'conflicting-transports-accepted', detail: `${desc}: ${sets.map((s) => s.map((x) => tokens.indexOf(x)).join('|')).join(' vs ')}` });
  // two bearer. entries with different tokens are a conflict like any two transports (docs/PROTOCOL.md)
  else if (bearers.length > 1) v.failures.push({ kind: 'conflicting-bearer-entries-accepted', detail: `${desc}: entries of tokens ${bearers.map((b) => tokens.indexOf(b)).join(', ')} accepted as ${show(o.connected.user)}` });
  // precedence: header, bearer entry, query, cookie
  const first = sets[0]?.[0];
  if (first !== undefined && !cross && o.connected.user !== `tr-${ctx.index}-${[0, 1, 0][tokens.indexOf(first)]}`) v.failures.push({ kind: 'wrong-identity', detail: `${desc}: connected as ${show(o.connected.user)}` });
  return v;
}

// ---------------------------------------------------------------- tenant isolation

export async function runIsolation(ctx: Ctx, c: IsolationCase): Promise<Verdict> {
  const v = verdict();
  const { tenants, rooms } = c.pair;
  const subs = [`iso-${ctx.index}-a`, `iso-${ctx.index}-b`] as const;
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const socks: Sock[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const tok = ctx.sign({ sub: subs[i], tenant_id: tenants[i], jti: `${subs[i]}-${Math.random()}`, exp, permissions: ['*:**'] });
      const o = await ctx.open({ protocols: [i === 0 ? 'wsgate.v1.json' : 'wsgate.v1.msgpack'], headers: { authorization: `Bearer ${tok}` } });
      if (!o.ok) {
        await refusal(ctx, v, o, [401], `tenant ${show(tenants[i])}`, tok);
        return v;
      }
      if (wellFormed(tenants[i]) && o.connected.tenant !== tenants[i]) v.failures.push({ kind: 'identity-mismatch', detail: `tenant ${show(tenants[i])}, connected.tenant ${show(o.connected.tenant)}` });
      socks.push(o.sock);
    }
    for (let i = 0; i < 2; i++) {
      const e = await request(ctx, socks[i]!, { type: 'join', rooms: [rooms[i]] });
      if (!(await checkReply(ctx, v, e, 'join'))) return v;
      if (e.kind !== 'msg' || e.msg.type !== 'ack') {
        v.outcome = `join ${outcomeOf(e)}`;
        return v;
      }
    }
    const nonces = [`${subs[0]}-${Math.random()}`, `${subs[1]}-${Math.random()}`];
    for (let i = 0; i < 2; i++) {
      const e = await request(ctx, socks[i]!, { type: 'publish', room: rooms[i], data: { nonce: nonces[i] } });
      if (!(await checkReply(ctx, v, e, 'publish'))) return v;
    }
    // a ping answered after both publishes were acknowledged: anything they fanned out to this socket came before it
    for (const s of socks) if (!(await checkReply(ctx, v, await request(ctx, s, { type: 'ping' }), 'ping'))) return v;
    const pair = `tenants ${show(tenants)} rooms ${show(rooms)} (${c.pair.trick})`;
    for (let i = 0; i < 2; i++) {
      const other = 1 - i;
      const leaked = socks[i]!.pushes((m) => m.type === 'message' && (m.data as { nonce?: unknown } | undefined)?.nonce === nonces[other]);
      if (leaked.length > 0) v.failures.push({ kind: 'tenant-leak-message', detail: `${pair}: ${subs[i]} received ${subs[other]}'s publish: ${show(leaked[0])}` });
    }
    // presence: once each sees itself, its list must not name the other
    for (let i = 0; i < 2; i++) {
      const other = 1 - i;
      let users: unknown[] | undefined;
      for (let tries = 0; tries < 100; tries++) {
        const e = await request(ctx, socks[i]!, { type: 'presence', room: rooms[i] });
        if (!(await checkReply(ctx, v, e, 'presence'))) return v;
        const r = e.kind === 'msg' ? (e.msg.result as { users?: unknown } | undefined) : undefined;
        if (Array.isArray(r?.users) && r.users.includes(subs[i])) {
          users = r.users;
          break;
        }
        await new Promise((res) => setTimeout(res, 20));
      }
      if (!users) v.warnings.push({ kind: 'presence-never-listed-self', detail: pair });
      else if (users.includes(subs[other])) v.failures.push({ kind: 'tenant-leak-presence', detail: `${pair}: ${subs[i]}'s presence lists ${subs[other]}: ${show(users)}` });
    }
    v.outcome = v.failures.some((f) => f.kind.startsWith('tenant-leak')) ? 'leaked' : 'isolated';
    return v;
  } finally {
    for (const s of socks) s.close();
  }
}

