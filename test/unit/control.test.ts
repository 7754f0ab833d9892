// The server API's commands in the core (core/control.ts) over fake socket ports: two hubs linked by
// a MemoryBusHub sharing one registry store play two nodes. No uWS, no network.
import { describe, expect, it } from 'vitest';
import { Authenticator } from '../../src/auth/authenticate.js';
import type { Claims } from '../../src/auth/claims.js';
import { createTokenVerifier } from '../../src/auth/verifier.js';
import { Hub, type HubOptions, type Session, type SocketPort } from '../../src/core/hub.js';
import { Metrics } from '../../src/observability/metrics.js';
import { PresenceTracker } from '../../src/presence/tracker.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../../src/protocol/bus.js';
import { ConnectionRegistry } from '../../src/registry/registry.js';
import { MemoryBus, MemoryBusHub } from '../../src/stores/memory/bus.js';
import { MemoryPresenceStore } from '../../src/stores/memory/presence.js';
import { MemoryRegistryStore } from '../../src/stores/memory/registry.js';
import { MemoryRevocationStore } from '../../src/stores/memory/revocation.js';
import type { RegistryStore } from '../../src/stores/ports.js';
import { SECRET } from '../helpers/tokens.js';

interface FakeSocket {
  readonly name: string;
  ended?: { code: number; reason: string };
}

/** Ends call the hub's close at once, as uWS runs the close handler inside ws.end. */
class FakePort implements SocketPort<FakeSocket> {
  onEnd: (s: FakeSocket) => void = () => undefined;
  send(): number {
    return 1;
  }
  subscribe(): void {}
  unsubscribe(): void {}
  end(s: FakeSocket, code: number, reason: string): void {
    if (s.ended) return;
    s.ended = { code, reason };
    this.onEnd(s);
  }
  publish(): void {}
  cork(_s: FakeSocket, fn: () => void): void {
    fn();
  }
  buffered(): number {
    return 0;
  }
}

const OPTS = (nodeId: string): HubOptions => ({
  nodeId, maxConnections: 1000, maxConnectionsPerUser: 0, maxConnectionsPerTenant: 0,
  maxRooms: 5, maxRoomNameLength: 64, maxPublishBytes: 1024, lookupTimeoutMs: 200,
  tokenExpiringSec: 60, expiryGraceMs: 5000, expirySweepMs: 1000, maxBackpressureBytes: 1000,
  presenceNotify: false,
  rate: { rate: 0, burst: 5, rateBytes: 0, burstBytes: 1 << 20 },
  users: { roomRate: 0, roomBurst: 1, presenceWaiting: 16 },
  frame: { maxDepth: 8, maxItems: 100 },
});

function node(nodeId: string, registry: RegistryStore, busHub: MemoryBusHub | undefined) {
  const metrics = new Metrics();
  const port = new FakePort();
  const presenceStore = new MemoryPresenceStore(30);
  const revocations = new MemoryRevocationStore();
  const verifier = createTokenVerifier({ secrets: [SECRET], publicKeys: [], jwks: undefined, algorithms: undefined, issuer: undefined, audience: undefined, clockToleranceSec: 5, cacheSize: 0, cacheTtlMs: 0, maxTokenLength: 16384, maxTtlSec: 86400 });
  const hub = new Hub<FakeSocket>(OPTS(nodeId), port, {
    authenticator: new Authenticator(verifier, revocations, { query: false, cookie: undefined, allowedOrigins: undefined, failOpen: false }, metrics),
    registry: (snap) => new ConnectionRegistry(registry, nodeId, snap),
    presence: new PresenceTracker(presenceStore, nodeId, 10),
    presenceStore,
    bus: new MemoryBus(busHub),
    metrics,
    faults: { report: (where, err) => { throw new Error(`fault at ${where}: ${String(err)}`); } },
    info: () => ({ draining: false, uptimeSec: 7 }),
  });
  const sessions = new Map<FakeSocket, Session<FakeSocket>>();
  port.onEnd = (sock) => hub.close(sessions.get(sock)!);
  const connect = (sub: string, over: Partial<Claims> = {}): { s: Session<FakeSocket>; sock: FakeSocket } => {
    const s = hub.create({ sub, tenantId: 'acme', jti: `j-${sub}-${sessions.size}`, exp: 2_000_000_000, permissions: [], ...over }, 'json', undefined);
    const sock: FakeSocket = { name: sub };
    sessions.set(sock, s);
    hub.open(s, sock);
    return { s, sock };
  };
  return { hub, metrics, connect, revocations };
}

function twoNodes() {
  const registry = new MemoryRegistryStore(30);
  const bus = new MemoryBusHub();
  const a = node('a', registry, bus);
  const b = node('b', registry, bus);
  return { a, b, registry, flush: () => Promise.all([a.hub.registry.flush(), b.hub.registry.flush()]) };
}

/** Store-reported revocations are carried out together at the end of the event-loop turn. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('user revocations on one node', () => {
  it('close the user\'s sockets whose token was issued before `before`, or has no iat, with 4003; newer tokens and other users stay', async () => {
    const { a } = twoNodes();
    const old = a.connect('alice', { iat: 1000 });
    const same = a.connect('alice', { iat: 1000.5 });
    const noIat = a.connect('alice');
    const newer = a.connect('alice', { iat: 1001 });
    const bob = a.connect('bob', { iat: 1000 });
    const otherTenant = a.connect('alice', { iat: 1000, tenantId: 'other' });
    a.hub.revokedUser('acme', 'alice', 1001);
    expect(old.sock.ended).toBeUndefined(); // not before the turn ends
    await turn();
    for (const x of [old, same, noIat]) expect(x.sock.ended).toEqual({ code: 4003, reason: 'Token revoked' });
    for (const x of [newer, bob, otherTenant]) expect(x.sock.ended).toBeUndefined();
    expect(a.metrics.revokedCloses).toBe(3);
    expect(a.hub.size).toBe(3);
  });

  it('follow closes and token refreshes; revocations of one turn share the scan and each closes its own', async () => {
    const { a } = twoNodes();
    const x = a.connect('alice', { iat: 5 });
    a.hub.close(x.s);
    const y = a.connect('alice', { iat: 5 });
    y.s.iat = 20; // what token:refresh does (core/refresh.ts)
    const z = a.connect('zed', { iat: 5, jti: 'z-token' });
    const w = a.connect('wes', { iat: 5 });
    a.hub.revokedUser('acme', 'alice', 10);
    a.hub.revoked('z-token');
    a.hub.revoked('nobody-has-this');
    await turn();
    expect(y.sock.ended).toBeUndefined();
    expect(z.sock.ended?.code).toBe(4003);
    expect(w.sock.ended).toBeUndefined();
    a.hub.revokedUser('acme', 'alice', 21);
    await turn();
    expect(y.sock.ended?.code).toBe(4003);
    expect(a.metrics.revokedCloses).toBe(2);
    expect(a.hub.size).toBe(1);
  });
});

describe('commands on every node', () => {
  it('disconnect-user closes the user\'s sockets on both nodes (4009; 4509 with reconnect) and counts them per node', async () => {
    const { a, b, flush } = twoNodes();
    await flush();
    const onA = a.connect('carol');
    const onB = [b.connect('carol'), b.connect('carol')];
    const bystander = b.connect('dave');
    const g = await a.hub.command({ op: 'disconnect-user', tenant: 'acme', user: 'carol', reconnect: false });
    expect(Object.fromEntries(g.answers)).toEqual({ a: { op: 'closed', closed: 1 }, b: { op: 'closed', closed: 2 } });
    expect(g).toMatchObject({ missing: [], complete: true });
    for (const x of [onA, ...onB]) expect(x.sock.ended).toEqual({ code: 4009, reason: 'Disconnected by the server' });
    expect(bystander.sock.ended).toBeUndefined();
    const r = await b.hub.command({ op: 'disconnect-user', tenant: 'acme', user: 'dave', reconnect: true });
    expect(bystander.sock.ended).toEqual({ code: 4509, reason: 'Reconnect requested' });
    expect(r.complete).toBe(true);
    expect(a.metrics.disconnectCloses + b.metrics.disconnectCloses).toBe(4);
  });

  it('disconnect closes one connection by id, wherever it is', async () => {
    const { a, b, flush } = twoNodes();
    await flush();
    const x = b.connect('erin');
    const y = b.connect('erin');
    const g = await a.hub.command({ op: 'disconnect', connection: x.s.id, reconnect: false });
    expect(x.sock.ended?.code).toBe(4009);
    expect(y.sock.ended).toBeUndefined();
    expect(g.answers.get('b')).toEqual({ op: 'closed', closed: 1 });
    expect(g.answers.get('a')).toEqual({ op: 'closed', closed: 0 });
  });

  it('revoke-token and revoke-user reach both nodes', async () => {
    const { a, b, flush } = twoNodes();
    await flush();
    const t1 = a.connect('fay', { jti: 'shared' });
    const t2 = b.connect('gus', { jti: 'shared' });
    const u1 = a.connect('hal', { iat: 100 });
    const u2 = b.connect('hal', { iat: 100 });
    const u3 = b.connect('hal', { iat: 300 });
    expect((await a.hub.command({ op: 'revoke-token', jti: 'shared' })).answers.size).toBe(2);
    for (const x of [t1, t2]) expect(x.sock.ended?.code).toBe(4003);
    const g = await b.hub.command({ op: 'revoke-user', tenant: 'acme', user: 'hal', before: 200 });
    for (const x of [u1, u2]) expect(x.sock.ended).toEqual({ code: 4003, reason: 'Token revoked' });
    expect(u3.sock.ended).toBeUndefined();
    expect([g.answers.get('a'), g.answers.get('b')]).toEqual([{ op: 'closed', closed: 1 }, { op: 'closed', closed: 1 }]);
  });

  it('a revocation the store reported first (the mirror) still counts in the command that follows, once', async () => {
    const { a, b, flush } = twoNodes();
    await flush();
    const x = b.connect('kim', { jti: 'first-by-mirror' });
    const u = b.connect('lee', { iat: 10 });
    b.hub.revoked('first-by-mirror'); // the mirror on b was faster than the bus
    b.hub.revokedUser('acme', 'lee', 20);
    await turn();
    expect([x.sock.ended?.code, u.sock.ended?.code]).toEqual([4003, 4003]);
    const t = await a.hub.command({ op: 'revoke-token', jti: 'first-by-mirror' });
    expect(t.answers.get('b')).toEqual({ op: 'closed', closed: 1 });
    expect((await a.hub.command({ op: 'revoke-user', tenant: 'acme', user: 'lee', before: 20 })).answers.get('b')).toEqual({ op: 'closed', closed: 1 });
    // another revocation of the user (another `before`) is another count
    expect((await a.hub.command({ op: 'revoke-user', tenant: 'acme', user: 'lee', before: 30 })).answers.get('b')).toEqual({ op: 'closed', closed: 0 });
    // counted once: the same command again closes nothing more
    expect((await a.hub.command({ op: 'revoke-token', jti: 'first-by-mirror' })).answers.get('b')).toEqual({ op: 'closed', closed: 0 });
  });

  it('stats: connections per node and per tenant, one tenant or all', async () => {
    const { a, b, flush } = twoNodes();
    await flush();
    a.connect('u1');
    a.connect('u2', { tenantId: 'globex' });
    b.connect('u3');
    const all = await a.hub.command({ op: 'stats', tenant: undefined, tenants: true });
    const stats = (n: string) => { const x = all.answers.get(n)!; return x.op === 'stats' ? { ...x.stats, tenants: Object.fromEntries(x.stats.tenants) } : undefined; };
    expect(stats('a')).toEqual({ connections: 2, tenants: { acme: 1, globex: 1 }, truncated: false, draining: false, uptimeSec: 7 });
    expect(stats('b')).toEqual({ connections: 1, tenants: { acme: 1 }, truncated: false, draining: false, uptimeSec: 7 });
    const one = await b.hub.command({ op: 'stats', tenant: 'globex', tenants: true });
    expect([...one.answers].map(([n, x]) => [n, x.op === 'stats' ? x.stats.connections : -1]).sort()).toEqual([['a', 1], ['b', 0]]);
  });

  it('a live node that does not answer is reported missing after the timeout; the others\' answers are kept', async () => {
    const { a, b, registry, flush } = twoNodes();
    await flush();
    await registry.apply('ghost', { upserts: [], removals: [] }); // a heartbeat, and no node behind it
    b.connect('ivy');
    const t0 = Date.now();
    const g = await a.hub.command({ op: 'disconnect-user', tenant: 'acme', user: 'ivy', reconnect: false });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(g).toMatchObject({ missing: ['ghost'], complete: false });
    expect(g.answers.get('b')).toEqual({ op: 'closed', closed: 1 });
  });

  it('a single node (a bus that is not distributed) answers alone, complete', async () => {
    const n = node('solo', new MemoryRegistryStore(30), undefined);
    n.connect('jo');
    const g = await n.hub.command({ op: 'disconnect-user', tenant: 'acme', user: 'jo', reconnect: false });
    expect(g).toMatchObject({ missing: [], complete: true });
    expect(g.answers.get('solo')).toEqual({ op: 'closed', closed: 1 });
  });
});

describe('bus envelopes', () => {
  const cases: Envelope[] = [
    { kind: 'command', node: 'a', id: '1', command: { op: 'disconnect', connection: 'a.1', reconnect: true } },
    { kind: 'command', node: 'a', id: '2', command: { op: 'disconnect-user', tenant: 't', user: 'u', reconnect: false } },
    { kind: 'command', node: 'a', id: '3', command: { op: 'revoke-token', jti: 'j' } },
    { kind: 'command', node: 'a', id: '4', command: { op: 'revoke-user', tenant: 't', user: 'u', before: 1_700_000_000 } },
    { kind: 'command', node: 'a', id: '5', command: { op: 'stats', tenant: undefined, tenants: false } },
    { kind: 'command', node: 'a', id: '6', command: { op: 'stats', tenant: 't', tenants: true } },
    { kind: 'answer', node: 'b', to: 'a', id: '1', answer: { op: 'closed', closed: 3 } },
    { kind: 'answer', node: 'b', to: 'a', id: '5', answer: { op: 'stats', stats: { connections: 2, tenants: new Map([['__proto__', 1], ['t', 1]]), truncated: false, draining: true, uptimeSec: 9 } } },
  ];
  it('round-trip every kind (a tenant named __proto__ included)', () => {
    for (const e of cases) expect(decodeEnvelope(encodeEnvelope(e))).toEqual(e);
  });

  it('drop malformed ones', async () => {
    const { Packr } = await import('msgpackr');
    const pack = (v: unknown) => new Packr({ useRecords: false }).pack(v);
    for (const bad of [
      { k: 'c', n: 'a', i: '1', o: 'nope' },
      { k: 'c', n: 'a', i: '', o: 'rt', j: 'x' },
      { k: 'c', n: 'a', i: '1', o: 'rt', j: '' },
      { k: 'c', n: 'a', i: '1', o: 'ru', t: 't', u: 'u', b: -1 },
      { k: 'c', n: 'a', i: '1', o: 'd', c: 'x'.repeat(513), rc: false },
      { k: 'c', n: 'a', i: '1', o: 's' },
      { k: 'a', n: 'b', to: 'a', i: '1', o: 'c', c: 1.5 },
      { k: 'a', n: 'b', to: 'a', i: '1', o: 's', c: 1, t: ['t'], tr: false, dr: false, up: 0 },
      { k: 'a', n: 'b', to: 'a', i: '1', o: 's', c: 1, t: [], tr: false, dr: false },
      { k: 'x', n: 'a' },
    ]) expect(decodeEnvelope(pack(bad)), JSON.stringify(bad)).toBeUndefined();
  });
});
