// The core over the SocketPort seam with a fake socket port: no uWS, no network. A fake clock
// drives the rate limit and the expiry sweep. Real memory stores, a real verifier.
import { describe, expect, it } from 'vitest';
import { Authenticator } from '../../src/auth/authenticate.js';
import { createTokenVerifier } from '../../src/auth/verifier.js';
import { Hub, type HubOptions, type Session, type SocketPort } from '../../src/core/hub.js';
import { RateLimiter } from '../../src/core/ratelimit.js';
import { roomCount } from '../../src/core/room-set.js';
import { Metrics } from '../../src/observability/metrics.js';
import { PresenceTracker } from '../../src/presence/tracker.js';
import { encodeJson } from '../../src/protocol/codec.js';
import { ConnectionRegistry } from '../../src/registry/registry.js';
import { MemoryBus } from '../../src/stores/memory/bus.js';
import { MemoryPresenceStore } from '../../src/stores/memory/presence.js';
import { MemoryRegistryStore } from '../../src/stores/memory/registry.js';
import { MemoryRevocationStore } from '../../src/stores/memory/revocation.js';
import { hs, SECRET } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

interface FakeSocket {
  name: string;
  sent: Array<Record<string, unknown>>;
  topics: Set<string>;
  ended?: { code: number; reason: string };
  buffered: number;
}

/** The SocketPort over fake sockets: sends are parsed JSON, publishes reach subscribed fakes. */
class FakePort implements SocketPort<FakeSocket> {
  readonly sockets: FakeSocket[] = [];
  corks = 0;
  socket(name: string): FakeSocket {
    const s: FakeSocket = { name, sent: [], topics: new Set(), buffered: 0 };
    this.sockets.push(s);
    return s;
  }
  send(s: FakeSocket, data: string | Buffer): number {
    s.sent.push(JSON.parse(data.toString()) as Record<string, unknown>);
    return 1;
  }
  subscribe(s: FakeSocket, topic: string): void {
    s.topics.add(topic);
  }
  unsubscribe(s: FakeSocket, topic: string): void {
    s.topics.delete(topic);
  }
  end(s: FakeSocket, code: number, reason: string): void {
    s.ended ??= { code, reason };
  }
  publish(topic: string, data: string | Buffer, binary: boolean, exclude?: FakeSocket): void {
    if (binary) return; // the fakes speak JSON
    for (const s of this.sockets) if (s !== exclude && s.topics.has(topic) && !s.ended) s.sent.push(JSON.parse(data.toString()) as Record<string, unknown>);
  }
  cork(_s: FakeSocket, fn: () => void): void {
    this.corks++;
    fn();
  }
  buffered(s: FakeSocket): number {
    return s.buffered;
  }
}

function setup(over: Partial<HubOptions> = {}) {
  let t = 1_700_000_000_000;
  const now = () => t;
  const metrics = new Metrics();
  const port = new FakePort();
  const presenceStore = new MemoryPresenceStore(30);
  const revocations = new MemoryRevocationStore();
  const verifier = createTokenVerifier({ secrets: [SECRET], publicKeys: [], jwks: undefined, algorithms: undefined, issuer: undefined, audience: undefined, clockToleranceSec: 5, cacheSize: 0, cacheTtlMs: 0, maxTokenLength: 16384, maxTtlSec: 86400 });
  const authenticator = new Authenticator(verifier, revocations, { query: false, cookie: undefined, allowedOrigins: undefined, failOpen: false }, metrics);
  const faults: string[] = [];
  const opts: HubOptions = {
    nodeId: 'n1', maxConnections: 100, maxConnectionsPerUser: 0, maxConnectionsPerTenant: 0,
    maxRooms: 5, maxRoomNameLength: 64, maxPublishBytes: 1024, lookupTimeoutMs: 100,
    tokenExpiringSec: 60, expiryGraceMs: 5000, maxBackpressureBytes: 1000,
    presenceNotify: true,
    presenceNotifyMaxNames: 3,
    rate: { rate: 10, burst: 5, rateBytes: 0, burstBytes: 1 << 20 },
    users: { roomRate: 0, roomBurst: 1, presenceWaiting: 16 },
    frame: { maxDepth: 8, maxItems: 100 },
    ...over,
  };
  const hub = new Hub<FakeSocket>(opts, port, {
    authenticator,
    registry: (snap, toEntry) => new ConnectionRegistry(new MemoryRegistryStore(30), 'n1', snap, Infinity, toEntry),
    presence: new PresenceTracker(presenceStore, 'n1', 10),
    presenceStore,
    bus: new MemoryBus(),
    metrics,
    faults: { report: (where) => void faults.push(where) },
    now,
  });
  const connect = (sub: string, tenant = 'acme', permissions = ['*:**'], exp = Math.floor(t / 1000) + 3600): { s: Session<FakeSocket>; sock: FakeSocket } => {
    const s = hub.create({ sub, tenantId: tenant, jti: `j-${sub}`, exp, permissions }, 'json', 'wsgate.v1.json');
    const sock = port.socket(sub);
    hub.open(s, sock);
    return { s, sock };
  };
  const send = (s: Session<FakeSocket>, msg: unknown): void => {
    const bytes = new TextEncoder().encode(typeof msg === 'string' ? msg : encodeJson(msg as never));
    hub.message(s, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, false);
  };
  return { hub, port, metrics, faults, revocations, presenceStore, connect, send, advance: (ms: number) => void (t += ms), now };
}

const last = (sock: FakeSocket) => sock.sent.at(-1);

describe('Hub over a fake SocketPort', () => {
  it('open sends the connected frame; join subscribes the tenant-scoped topic; publish reaches members but not the sender', () => {
    const { connect, send } = setup();
    const a = connect('a');
    const b = connect('b');
    const other = connect('c', 'evil');
    expect(a.sock.sent[0]).toMatchObject({ type: 'connected', user: 'a', tenant: 'acme', node: 'n1' });
    for (const x of [a, b, other]) send(x.s, { id: 1, type: 'join', rooms: ['chat'] });
    expect(last(a.sock)).toEqual({ type: 'ack', ref: 1, result: { rooms: ['chat'] } });
    send(a.s, { id: 2, type: 'publish', room: 'chat', data: { x: 1 } });
    expect(last(b.sock)).toMatchObject({ type: 'message', room: 'chat', data: { x: 1 }, from: 'a' });
    expect(other.sock.sent.some((m) => m.type === 'message')).toBe(false);
    expect(a.sock.sent.filter((m) => m.type === 'message')).toEqual([]);
    expect(last(a.sock)).toMatchObject({ type: 'ack', ref: 2 });
  });

  it('every frame costs from the bucket before decoding: garbage floods get RATE_LIMITED, then 4502', () => {
    const { connect, send, metrics } = setup();
    const a = connect('a');
    for (let i = 0; i < 5; i++) send(a.s, '{garbage');
    expect(a.sock.sent.filter((m) => m.code === 'BAD_REQUEST')).toHaveLength(5);
    send(a.s, '{garbage');
    expect(last(a.sock)).toMatchObject({ type: 'error', code: 'RATE_LIMITED', ref: null });
    for (let i = 0; i < 10 && !a.sock.ended; i++) send(a.s, '{garbage');
    expect(a.sock.ended).toEqual({ code: 4502, reason: 'Rate limit exceeded' });
    expect(metrics.framesRejected.get('malformed')).toBe(5); // only the admitted ones were decoded
  });

  it('a join or leave costs one token per room it names', () => {
    const { connect, send } = setup({ maxRooms: 100 });
    const a = connect('a');
    send(a.s, { id: 1, type: 'join', rooms: ['r1', 'r2', 'r3', 'r4'] }); // 4 of the 5 tokens
    expect(last(a.sock)).toMatchObject({ type: 'ack', ref: 1 });
    send(a.s, { id: 2, type: 'leave', rooms: ['r1', 'r2'] }); // 1 left: the frame takes it, the second room cannot be paid
    expect(last(a.sock)).toMatchObject({ type: 'error', ref: 2, code: 'RATE_LIMITED' });
    expect(roomCount(a.s.rooms)).toBe(4); // nothing left
  });

  it('a refused small frame is answered with its own ref', () => {
    const { connect, send } = setup();
    const a = connect('a');
    for (let i = 1; i <= 6; i++) send(a.s, { id: i, type: 'ping' });
    expect(last(a.sock)).toMatchObject({ type: 'error', code: 'RATE_LIMITED', ref: 6 });
  });

  it('strikes are only forgiven once the bucket is full again', () => {
    const limiter = new RateLimiter({ rate: 10, burst: 5, rateBytes: 0, burstBytes: 0 });
    const b = { tokens: 0, bytes: 0, refilledAt: 0, strikes: 0 };
    limiter.fill(b, 0);
    let t = 0;
    const verdicts: string[] = [];
    // 30 frames/s against 10/s for 1 s: one in three passes, and the strikes keep counting
    for (let i = 0; i < 30; i++) {
      t += 33;
      verdicts.push(limiter.charge(b, 1, t));
    }
    expect(verdicts).toContain('close');
    // a client that calms down is forgiven: after the bucket refills, strikes start from zero
    const c = { tokens: 0, bytes: 0, refilledAt: 0, strikes: 0 };
    limiter.fill(c, 0);
    for (let i = 0; i < 8; i++) limiter.charge(c, 1, 0);
    expect(c.strikes).toBe(3);
    expect(limiter.charge(c, 1, 1000)).toBe('ok');
    expect(c.strikes).toBe(0);
  });

  it('the byte bucket refuses a frame larger than what is left, before decoding', () => {
    const limiter = new RateLimiter({ rate: 0, burst: 3, rateBytes: 100, burstBytes: 1000 });
    const b = { tokens: 0, bytes: 0, refilledAt: 0, strikes: 0 };
    limiter.fill(b, 0);
    expect(limiter.charge(b, 600, 0)).toBe('ok');
    expect(limiter.charge(b, 600, 0)).toBe('refused');
    expect(limiter.charge(b, 600, 2000)).toBe('ok'); // 200 bytes refilled in 2 s
  });

  it('token expiry: token:expiring before exp, close 4007 at exp + tolerance, on the sweep', () => {
    const { connect, hub, advance, now } = setup();
    const a = connect('a', 'acme', ['*:**'], Math.floor(now() / 1000) + 120);
    advance(59_000);
    hub.sweep();
    expect(a.sock.sent.some((m) => m.type === 'token:expiring')).toBe(false);
    advance(2_000);
    hub.sweep();
    expect(last(a.sock)).toMatchObject({ type: 'token:expiring' });
    advance(60_000);
    hub.sweep();
    expect(a.sock.ended).toBeUndefined(); // exp passed, tolerance not yet
    advance(5_000);
    hub.sweep();
    expect(a.sock.ended).toEqual({ code: 4007, reason: 'Token expired' });
  });

  it('a slow consumer (more than half the backpressure limit buffered) is closed with 4501 at the sweep', () => {
    const { connect, hub } = setup();
    const a = connect('a');
    const b = connect('b');
    a.sock.buffered = 501;
    hub.sweep();
    expect(a.sock.ended).toEqual({ code: 4501, reason: 'Slow consumer' });
    expect(b.sock.ended).toBeUndefined();
  });

  it('token:refresh: same user required; rooms no longer allowed are left; a revoked token ends the socket with 4006', async () => {
    const { connect, send, revocations } = setup();
    const a = connect('alice');
    send(a.s, { id: 1, type: 'join', rooms: ['chat', 'admin'] });
    send(a.s, { id: 2, type: 'token:refresh', token: hs({ sub: 'alice', permissions: ['join:chat'] }) });
    await until(() => a.sock.sent.some((m) => m.type === 'token:refreshed'));
    expect(a.sock.sent.find((m) => m.type === 'token:refreshed')).toMatchObject({ ref: 2, left: ['admin'], permissions: ['join:chat'] });
    send(a.s, { id: 3, type: 'token:refresh', token: hs({ sub: 'mallory' }) });
    await until(() => a.sock.sent.some((m) => m.ref === 3));
    expect(last(a.sock)).toMatchObject({ type: 'error', code: 'USER_MISMATCH', message: 'User mismatch' });
    await revocations.revoke('gone', 60);
    send(a.s, { id: 4, type: 'token:refresh', token: hs({ sub: 'alice', jti: 'gone' }) });
    await until(() => a.sock.ended !== undefined);
    expect(last(a.sock)).toMatchObject({ type: 'error', ref: 4, code: 'INVALID_TOKEN' });
    expect(a.sock.ended).toEqual({ code: 4006, reason: 'Invalid token' });
  });

  it('close leaves every room and frees the caps', () => {
    const { connect, send, hub } = setup({ maxConnectionsPerUser: 1 });
    const a = connect('a');
    send(a.s, { id: 1, type: 'join', rooms: ['x', 'y'] });
    expect(hub.admit({ sub: 'a', tenantId: 'acme', jti: 'j', exp: 0, permissions: [] })).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
    hub.close(a.s);
    expect(roomCount(a.s.rooms)).toBe(0);
    expect(hub.size).toBe(0);
    expect(hub.admit({ sub: 'a', tenantId: 'acme', jti: 'j', exp: 0, permissions: [] })).toBeUndefined();
    hub.close(a.s); // twice is harmless
    expect(hub.size).toBe(0);
  });

  it('caps are keyed injectively: tenant "a" + user "1:b" is not tenant "a1:" + user "b"', () => {
    const { connect, hub } = setup({ maxConnectionsPerUser: 1 });
    connect('1:b', 'a');
    expect(hub.admit({ sub: 'b', tenantId: 'a1:', jti: 'j', exp: 0, permissions: [] })).toBeUndefined();
  });

  it('presence notifications: one per changed room per flush, with names up to the bound, counts beyond it', async () => {
    const { connect, send, hub } = setup();
    const watcher = connect('watcher');
    send(watcher.s, { id: 1, type: 'join', rooms: ['big'] });
    await hub.flushPresence();
    const before = watcher.sock.sent.length;
    for (const u of ['u1', 'u2']) send(connect(u).s, { id: 1, type: 'join', rooms: ['big'] });
    await hub.flushPresence();
    expect(watcher.sock.sent.slice(before)).toEqual([{ type: 'presence', room: 'big', joined: ['u1', 'u2'], left: [] }]);
    for (let i = 3; i <= 10; i++) send(connect(`u${i}`).s, { id: 1, type: 'join', rooms: ['big'] });
    await hub.flushPresence();
    expect(watcher.sock.sent.at(-1)).toEqual({ type: 'presence', room: 'big', joined: [], left: [], counts: { joined: 8, left: 0 } });
    // and the presence request stays exact
    send(watcher.s, { id: 9, type: 'presence', room: 'big' });
    await until(() => watcher.sock.sent.some((m) => m.ref === 9));
    expect((watcher.sock.sent.at(-1)!.result as { users: string[] }).users).toHaveLength(11);
  });

  it('a presence query whose store never answers is answered UNAVAILABLE after the lookup timeout', async () => {
    const { connect, send, presenceStore } = setup();
    presenceStore.members = () => new Promise(() => undefined);
    const a = connect('a');
    send(a.s, { id: 7, type: 'presence', room: 'chat' });
    await until(() => a.sock.sent.some((m) => m.ref === 7));
    expect(last(a.sock)).toMatchObject({ type: 'error', code: 'UNAVAILABLE' });
  });
});

describe('room sets', () => {
  it('none, one, then a set, and back', async () => {
    const { hasRoom, roomCount: count, roomList, withRoom, withoutRoom } = await import('../../src/core/room-set.js');
    let r = withRoom(undefined, 'a');
    expect(r).toBe('a');
    expect(withRoom(r, 'a')).toBe('a');
    r = withRoom(r, 'b');
    expect(r).toBeInstanceOf(Set);
    r = withRoom(r, 'c');
    expect([count(r), hasRoom(r, 'b'), hasRoom(r, 'z')]).toEqual([3, true, false]);
    r = withoutRoom(withoutRoom(r, 'b'), 'c');
    expect(r).toBe('a');
    expect(roomList(r)).toEqual(['a']);
    expect(withoutRoom(r, 'x')).toBe('a');
    expect(withoutRoom(r, 'a')).toBeUndefined();
  });
});
