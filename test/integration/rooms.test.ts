// Rooms on uWS topics: tenant scoping, permissions, limits, both encodings, reply errors that
// keep the connection open, and closes for protocol violations. Real sockets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { Client, connect } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { hs } from '../helpers/tokens.js';
import { roomKey } from '../../src/rooms/rooms.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ WSGATE_MAX_ROOMS: '3', WSGATE_MAX_PUBLISH_BYTES: '512', WSGATE_MAX_ROOM_NAME: '32', WSGATE_PRESENCE_FLUSH_MS: '100' });
});
afterAll(() => gw.stop());

const user = async (sub: string, tenant = 'acme', permissions: string[] = ['*:**'], json = false): Promise<Client> =>
  (await connect(gw.url, hs({ sub, tenant_id: tenant, permissions }), { json })).client;

const stillOpen = async (c: Client): Promise<void> => {
  expect((await c.request({ type: 'ping' })).type).toBe('ack');
};

describe('join, publish, leave', () => {
  it('delivers one publish to msgpack and JSON subscribers alike, sender excluded unless echo', async () => {
    const a = await user('a');
    const b = await user('b', 'acme', ['*:**'], true);
    const c = await user('c');
    for (const x of [a, b, c]) expect((await x.request({ type: 'join', rooms: ['chat/1'] })).result).toEqual({ rooms: ['chat/1'] });
    expect((await a.request({ type: 'publish', room: 'chat/1', data: { text: 'hi' } })).type).toBe('ack');
    const mb = await b.type('message');
    const mc = await c.type('message');
    expect(mb).toMatchObject({ room: 'chat/1', data: { text: 'hi' }, from: 'a', __binary: false });
    expect(mc).toMatchObject({ room: 'chat/1', data: { text: 'hi' }, from: 'a', __binary: true });
    expect(await a.none((m) => m.type === 'message')).toBe(true);
    await a.request({ type: 'publish', room: 'chat/1', data: 2, echo: true });
    expect((await a.type('message')).data).toBe(2);
    expect((await c.request({ type: 'leave', rooms: ['chat/1', 'never/joined'] })).result).toEqual({ rooms: ['chat/1'] });
    await a.request({ type: 'publish', room: 'chat/1', data: 3 });
    expect((await b.next((m) => m.type === 'message' && m.data === 3)).from).toBe('a');
    expect(await c.none((m) => m.type === 'message' && m.data === 3)).toBe(true);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('joins several rooms in one request; join is idempotent', async () => {
    const a = await user('multi');
    expect((await a.request({ type: 'join', rooms: ['r/1', 'r/2'] })).result).toEqual({ rooms: ['r/1', 'r/2'] });
    expect((await a.request({ type: 'join', rooms: ['r/1'] })).type).toBe('ack');
    await a.close();
  });
});

describe('join counts rooms, not names', () => {
  it('a room named twice in one join is one room against the limit, and named once in the ack', async () => {
    const c = await user('twice');
    expect((await c.request({ type: 'join', rooms: ['x/1', 'x/2'] })).type).toBe('ack');
    expect(await c.request({ type: 'join', rooms: ['x/3', 'x/3'] })).toMatchObject({ type: 'ack', result: { rooms: ['x/3'] } });
    expect(await c.request({ type: 'join', rooms: ['x/4'] })).toMatchObject({ code: 'TOO_MANY_ROOMS' });
    await c.close();
  });
});

describe('tenant isolation', () => {
  it('the same room name in two tenants is two rooms: no messages, no presence across', async () => {
    const acme = await user('alice', 'acme');
    const evil = await user('mallory', 'evil');
    await acme.request({ type: 'join', rooms: ['chat/1'] });
    await evil.request({ type: 'join', rooms: ['chat/1'] });
    await evil.request({ type: 'publish', room: 'chat/1', data: 'x', echo: true });
    expect((await evil.type('message')).data).toBe('x');
    expect(await acme.none((m) => m.type === 'message')).toBe(true);
    await gw.hub.flushPresence(); // both joins written (a flush in flight is shared)
    await gw.hub.flushPresence();
    expect((await evil.request({ type: 'presence', room: 'chat/1' })).result).toEqual({ room: 'chat/1', users: ['mallory'] });
    expect((await acme.request({ type: 'presence', room: 'chat/1' })).result).toEqual({ room: 'chat/1', users: ['alice'] });
    await Promise.all([acme.close(), evil.close()]);
  });

  it('no room name reaches another tenant\'s topic', async () => {
    const acme = await user('alice2', 'acme');
    const evil = await user('mallory2', 'evil');
    await acme.request({ type: 'join', rooms: ['chat/9'] });
    const key = roomKey('acme', 'chat/9');
    // Names that spell acme's key or topic: valid room names are evil's own rooms (ack), the others BAD_ROOM.
    const names: Array<[string, 'ack' | 'BAD_ROOM']> = [
      [key, 'ack'], ['4:acme/chat/9', 'ack'], ['../acme/chat/9', 'ack'], ['acme/chat/9', 'ack'], ['chat/9', 'ack'],
      [`${key}#m`, 'BAD_ROOM'], [`${key}#j`, 'BAD_ROOM'], ['chat/9#m', 'BAD_ROOM'], ['chat//9', 'BAD_ROOM'], ['/chat/9', 'BAD_ROOM'],
    ];
    for (const [room, want] of names) {
      const r = await evil.request({ type: 'publish', room, data: 'leak' });
      if (want === 'ack') expect(r, room).toMatchObject({ type: 'ack' });
      else expect(r, room).toMatchObject({ type: 'error', code: 'BAD_ROOM' });
    }
    // A publish by acme's own member proves the room works: exactly that one arrives.
    const alice3 = await user('alice3', 'acme');
    await alice3.request({ type: 'publish', room: 'chat/9', data: 'own' });
    expect((await acme.type('message')).data).toBe('own');
    expect(await acme.none((m) => m.type === 'message', 200)).toBe(true);
    await Promise.all([acme.close(), evil.close(), alice3.close()]);
  });
});

describe('permissions and limits: reply errors, connection stays open', () => {
  it('FORBIDDEN for join, publish and presence outside the token\'s patterns', async () => {
    const c = await user('p', 'acme', ['join:chat/*', 'publish:chat/42', 'presence:lobby/**']);
    expect((await c.request({ type: 'join', rooms: ['chat/1'] })).type).toBe('ack');
    expect(await c.request({ type: 'join', rooms: ['chat/1/x'] })).toMatchObject({ type: 'error', code: 'FORBIDDEN', message: 'Forbidden' });
    expect(await c.request({ type: 'join', rooms: ['chat/2', 'admin'] })).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect(await c.request({ type: 'publish', room: 'chat/1', data: 1 })).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect((await c.request({ type: 'publish', room: 'chat/42', data: 1 })).type).toBe('ack');
    expect(await c.request({ type: 'presence', room: 'chat/1' })).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect((await c.request({ type: 'presence', room: 'lobby/a/b' })).type).toBe('ack');
    await stillOpen(c);
    await c.close();
  });

  it('a rejected multi-room join joins nothing', async () => {
    const c = await user('atomic', 'acme', ['join:ok/*']);
    await c.request({ type: 'join', rooms: ['ok/1', 'no/1'] });
    expect((await c.request({ type: 'leave', rooms: ['ok/1'] })).result).toEqual({ rooms: [] });
    await c.close();
  });

  it('a publish whose re-encoding for the other subprotocol would grow past 4x the limit is refused', async () => {
    const mp = await user('grower');
    const reader = await user('reader-json', 'acme', ['*:**'], true);
    await reader.request({ type: 'join', rooms: ['grow'] });
    // 400 control characters: ~440 bytes of MessagePack, ~2,500 of JSON (each one a 6-character escape)
    expect(await mp.request({ type: 'publish', room: 'grow', data: '\u0001'.repeat(400) })).toMatchObject({ type: 'error', code: 'PAYLOAD_TOO_LARGE' });
    expect((await mp.request({ type: 'publish', room: 'grow', data: '\u0001'.repeat(50) })).type).toBe('ack');
    expect(((await reader.type('message')).data as string).length).toBe(50);
    await Promise.all([mp.close(), reader.close()]);
  });

  it('BAD_ROOM, TOO_MANY_ROOMS and PAYLOAD_TOO_LARGE', async () => {
    const c = await user('lim');
    expect(await c.request({ type: 'join', rooms: ['bad room'] })).toMatchObject({ code: 'BAD_ROOM', message: 'Invalid room name' });
    expect(await c.request({ type: 'join', rooms: ['x'.repeat(33)] })).toMatchObject({ code: 'BAD_ROOM' });
    expect(await c.request({ type: 'publish', room: 'a/*', data: 1 })).toMatchObject({ code: 'BAD_ROOM' });
    expect((await c.request({ type: 'join', rooms: ['l/1', 'l/2', 'l/3'] })).type).toBe('ack');
    expect(await c.request({ type: 'join', rooms: ['l/4'] })).toMatchObject({ code: 'TOO_MANY_ROOMS', message: 'Room limit reached' });
    expect(await c.request({ type: 'publish', room: 'l/1', data: 'x'.repeat(600) })).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    await stillOpen(c);
    await c.close();
  });

  it('UNKNOWN_TYPE and BAD_REQUEST keep the socket open; ref echoes the id', async () => {
    const c = await user('proto');
    expect(await c.request({ type: 'fly' })).toMatchObject({ type: 'error', code: 'UNKNOWN_TYPE' });
    expect(await c.request({ type: 'join', rooms: 'chat' })).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    c.sendRaw(Buffer.from([0xc1]));
    expect(await c.type('error')).toMatchObject({ ref: null, code: 'BAD_REQUEST' });
    c.sendRaw(new Packr({ useRecords: false }).pack({ type: 'ping' }));
    expect(await c.type('error')).toMatchObject({ ref: null, code: 'BAD_REQUEST' });
    await stillOpen(c);
    await c.close();
  });

  it('a text frame on the msgpack subprotocol closes with 4401', async () => {
    const c = await user('frames');
    c.sendRaw('{"id":1,"type":"ping"}', false);
    expect(await c.closed).toEqual({ code: 4401, reason: 'Wrong frame type for subprotocol' });
  });

  it('a binary frame on the JSON subprotocol closes with 4401', async () => {
    const c = await user('frames2', 'acme', ['*:**'], true);
    c.sendRaw(Buffer.from('{}'), true);
    expect((await c.closed).code).toBe(4401);
  });
});

describe('presence', () => {
  it('lists a room\'s users once however many connections; notifies joins and leaves in batches', async () => {
    const watcher = await user('watcher');
    await watcher.request({ type: 'join', rooms: ['pres/1'] });
    await watcher.next((m) => m.type === 'presence' && (m.joined as string[]).includes('watcher'));
    const a1 = await user('amy');
    const a2 = await user('amy');
    await a1.request({ type: 'join', rooms: ['pres/1'] });
    await a2.request({ type: 'join', rooms: ['pres/1'] });
    const joined = await watcher.next((m) => m.type === 'presence');
    expect(joined).toMatchObject({ room: 'pres/1', joined: ['amy'], left: [] });
    expect((await watcher.request({ type: 'presence', room: 'pres/1' })).result).toEqual({ room: 'pres/1', users: ['amy', 'watcher'] });
    await a1.close();
    await gw.hub.flushPresence(); // a1's leave is written (amy stays: a2 is still in the room)
    await gw.hub.flushPresence();
    expect((await watcher.request({ type: 'presence', room: 'pres/1' })).result).toEqual({ room: 'pres/1', users: ['amy', 'watcher'] });
    expect(await watcher.none((m) => m.type === 'presence', 100)).toBe(true);
    await a2.close();
    expect(await watcher.next((m) => m.type === 'presence')).toMatchObject({ room: 'pres/1', joined: [], left: ['amy'] });
    expect((await watcher.request({ type: 'presence', room: 'pres/1' })).result).toEqual({ room: 'pres/1', users: ['watcher'] });
    await watcher.close();
  });
});
