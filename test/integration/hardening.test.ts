// The findings of the outside check (issue 8), each tried as a hostile client would, against the
// built gateway as its own process: the crash oracle is the process itself (it must stay up and
// healthy), and every bystander must keep being served.
import { connect as tcpConnect } from 'node:net';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, refused, type Client } from '../helpers/client.js';
import { spawnGateway, type GatewayProcess } from '../helpers/process.js';
import { claims, hs, now, rawHs } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

// Two gateway processes: one with the default limits, one with a small rate limit for the floods.
let gw: GatewayProcess;
let limited: GatewayProcess;
let bystander: Client;
let limitedBystander: Client;
beforeAll(async () => {
  [gw, limited] = await Promise.all([spawnGateway({}), spawnGateway({ WSGATE_RATE_LIMIT: '100', WSGATE_RATE_BURST: '50' })]);
  bystander = (await connect(gw.url, hs({ sub: 'bystander' }))).client;
  limitedBystander = (await connect(limited.url, hs({ sub: 'bystander' }))).client;
});
afterAll(async () => {
  await Promise.all([bystander.close(), limitedBystander.close()]);
  // a clean SIGTERM exit: neither process died on its own
  expect(await gw.kill()).toBe(0);
  expect(await limited.kill()).toBe(0);
});

/** The process is up, healthy, and still serves an established socket. */
async function stillServing(g = gw, b = bystander): Promise<void> {
  expect(g.proc.exitCode).toBeNull();
  expect((await fetch(`${g.http}/healthz`)).status).toBe(200);
  expect((await b.request({ type: 'ping' })).type).toBe('ack');
}

const metric = async (name: string, g = gw): Promise<number> => {
  const text = await (await fetch(`${g.http}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^wsgate_${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
};

/** The bytes of a msgpack map {id, type: 'publish', room: 'r', data: <to follow>}. */
const publishHead = (id: number): Buffer =>
  Buffer.from([0x84, 0xa2, 0x69, 0x64, id, 0xa4, ...Buffer.from('type'), 0xa7, ...Buffer.from('publish'), 0xa4, ...Buffer.from('room'), 0xa1, 0x72, 0xa4, ...Buffer.from('data')]);

const nested = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

describe('finding 1: one frame must not end the process', () => {
  it('JSON publish with data nested 2,000 arrays deep (~4 KB): BAD_REQUEST, process up', async () => {
    const { client } = await connect(gw.url, hs({ sub: 'deep-json' }), { json: true });
    const frame = JSON.stringify({ id: 1, type: 'publish', room: 'r', data: nested(2000) });
    expect(frame.length).toBeLessThan(8192);
    client.sendRaw(frame, false);
    expect(await client.next((m) => m.ref === 1)).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    await stillServing();
    await client.close();
  });

  it('msgpack publish with data nested 2,000 arrays deep: BAD_REQUEST, process up', async () => {
    const { client } = await connect(gw.url, hs({ sub: 'deep-mp' }));
    // {id: 2, type: 'publish', room: 'r', data: [[[...1...]]]} with 2,000 fixarray(1) headers, by hand
    const frame = Buffer.concat([publishHead(2), Buffer.alloc(2000, 0x91), Buffer.from([0x01])]);
    client.sendRaw(frame, true);
    expect(await client.next((m) => m.ref === 2)).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    await stillServing();
    await client.close();
  });

  it('msgpack publish whose data carries msgpackr-only extension types: BAD_REQUEST for each, process up', async () => {
    const { client } = await connect(gw.url, hs({ sub: 'ext' }));
    const packrs = [new Packr({ useRecords: true, moreTypes: true }), new Packr({ structuredClone: true, moreTypes: true }), new Packr({ moreTypes: true, useRecords: false })];
    const datas: unknown[] = [2n ** 80n, new Float64Array([1.5, 2]), new Uint16Array([1]), [{ a: 1 }, { a: 2 }, { a: 3 }], new Set([1, 2]), new Map<unknown, unknown>([[{ k: 1 }, 1]]), new Error('x'), /re/g];
    let id = 100;
    for (const p of packrs) {
      for (const data of datas) {
        const frame = p.pack({ id: ++id, type: 'publish', room: 'r', data });
        if (!frame.some((b, i) => i > 0 && (b === 0xd4 || b === 0xd5 || b === 0xd6 || b === 0xd7 || b === 0xd8 || b === 0xc7 || b === 0xc8 || b === 0xc9))) continue; // plain encoding: not this case
        client.sendRaw(frame, true);
        const r = await client.next((m) => m.ref === id || m.ref === null);
        expect(r.type, `${p === packrs[0] ? 'records' : 'types'} ${String(data)}`).toBe('error');
        expect(r.code).toBe('BAD_REQUEST');
      }
    }
    // and each raw extension type on its own
    for (let type = -128; type < 128; type += 7) {
      const frame = Buffer.concat([publishHead(1), Buffer.from([0xd6, type & 0xff, 1, 2, 3, 4])]);
      client.sendRaw(frame, true);
      const r = await client.next((m) => m.ref === 1);
      if (type === -1) expect(r.type).toBe('ack'); // the standard timestamp is plain MessagePack
      else expect(r, `ext ${type}`).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    }
    await stillServing();
    await client.close();
  });
});

describe('finding 3: the rate limit bounds work', () => {
  it('20,000 invalid frames: charged before decoding, answered RATE_LIMITED, then closed with 4502; far fewer than 20,000 replies', async () => {
    const decoded0 = await metric('frames_rejected_total', limited);
    const { client } = await connect(limited.url, hs({ sub: 'flood-invalid' }), { json: true });
    let replies = 0;
    let rateLimited = 0;
    client.ws.on('message', (d: Buffer) => {
      replies++;
      if (d.toString().includes('RATE_LIMITED')) rateLimited++;
    });
    for (let i = 0; i < 20_000 && client.ws.readyState === WebSocket.OPEN; i++) client.sendRaw('{"not":"a request"', false);
    expect(await client.closed).toEqual({ code: 4502, reason: 'Rate limit exceeded' });
    expect(rateLimited).toBeGreaterThan(0);
    expect(replies).toBeLessThan(1000);
    // frames the decoder saw: the burst plus what refilled meanwhile, not 20,000
    expect((await metric('frames_rejected_total', limited)) - decoded0).toBeLessThan(1000);
    await stillServing(limited, limitedBystander);
  });

  it('a byte flood (60 KB frames) hits the byte bucket before any decoding, then 4502', async () => {
    const { client } = await connect(gw.url, hs({ sub: 'flood-bytes' }), { json: true });
    const big = JSON.stringify({ id: 1, type: 'ping', pad: 'x'.repeat(60_000) });
    // the default byte bucket (2 MiB, 1 MiB/s) passes ~35 such frames, then refuses; 400 refusals close
    for (let i = 0; i < 1000 && client.ws.readyState === WebSocket.OPEN; i++) client.sendRaw(big, false);
    expect(await client.closed).toEqual({ code: 4502, reason: 'Rate limit exceeded' });
    await stillServing();
  });

  it('a sustained flood slower than the refill cannot reset the strikes: it still ends with 4502', async () => {
    const { client } = await connect(limited.url, hs({ sub: 'drip' }), { json: true });
    // 3x the refill rate (100/s), for long enough to pass 50 refusals in a row
    const timer = setInterval(() => {
      for (let i = 0; i < 3; i++) if (client.ws.readyState === WebSocket.OPEN) client.send({ id: 1, type: 'ping' });
    }, 10);
    try {
      expect(await client.closed).toEqual({ code: 4502, reason: 'Rate limit exceeded' });
    } finally {
      clearInterval(timer);
    }
    await stillServing(limited, limitedBystander);
  });
});

describe('finding 6: claims and transports', () => {
  const sign = (c: Record<string, unknown>): string => rawHs(c);
  const cases: Array<[string, () => string]> = [
    ['exp 1e308', () => sign(claims({ exp: 1e308 }))],
    ['exp not an integer', () => sign(claims({ exp: now() + 60.5 }))],
    ['exp beyond WSGATE_JWT_MAX_TTL_SEC (default one day)', () => sign(claims({ exp: now() + 2 * 86400 }))],
    ['iat in the future beyond the clock tolerance', () => sign(claims({ iat: now() + 600 }))],
    ['tenant_id with a lone high surrogate', () => sign(claims({ tenant_id: 'acme\uD800' }))],
    ['sub with a lone low surrogate', () => sign(claims({ sub: 'alice\uDC00' }))],
    ['sub with a NUL', () => sign(claims({ sub: 'ali\u0000ce' }))],
    ['tenant_id with a newline', () => sign(claims({ tenant_id: 'acme\nevil' }))],
    ['jti with a C1 control', () => sign(claims({ jti: 'j\u0085' }))],
    ['a permission with a newline (the permission-cache collision)', () => sign(claims({ permissions: ['join:lobby\npublish:**'] }))],
    ['sub of 257 characters', () => sign(claims({ sub: 'a'.repeat(257) }))],
  ];
  for (const [name, token] of cases) {
    it(`${name}: 401 Authentication failed`, async () => {
      const r = await refused(connect(gw.url, token()));
      expect(r.status).toBe(401);
      expect(r.body).toEqual({ error: 'Authentication failed', code: 'AUTH_FAILED' });
    });
  }

  it('two bearer. subprotocol entries with different tokens are a conflict: 401', async () => {
    const r = await refused(connect(gw.url, undefined, { protocols: ['wsgate.v1.json', `bearer.${hs({ sub: 'a' })}`, `bearer.${hs({ sub: 'b' })}`], headers: {} }));
    expect(r.status).toBe(401);
    // the same token twice is not a conflict (raw request: the ws client refuses duplicate entries)
    const t = hs({ sub: 'same' });
    const res = await fetch(gw.http + '/ws', { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-protocol': `wsgate.v1.json, bearer.${t}, bearer.${t}` } }).catch((e: unknown) => e);
    // fetch cannot complete a 101; what matters is that it was not refused with 401
    expect(res instanceof Response ? res.status : 101).not.toBe(401);
  });

  it('the claim refusals are counted under reason "claims"', async () => {
    const text = await (await fetch(`${gw.http}/metrics`)).text();
    expect(Number(/wsgate_auth_failures_total\{reason="claims"\} (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(cases.length);
  });
});

describe('finding 6: binary data reaches JSON clients as base64', () => {
  it('a msgpack publisher\'s bin value arrives at a JSON member as a base64 string', async () => {
    const { client: json } = await connect(gw.url, hs({ sub: 'json-reader' }), { json: true });
    const { client: mp } = await connect(gw.url, hs({ sub: 'mp-writer' }));
    await json.request({ type: 'join', rooms: ['bin/1'] });
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    expect((await mp.request({ type: 'publish', room: 'bin/1', data: { b: bytes, nested: [bytes] } })).type).toBe('ack');
    const m = await json.type('message');
    const b64 = Buffer.from(bytes).toString('base64');
    expect(m.data).toEqual({ b: b64, nested: [b64] });
    await Promise.all([json.close(), mp.close()]);
  });
});

describe('frames uWS drops itself', () => {
  it('a text frame that is not UTF-8, and a frame over WSGATE_MAX_PAYLOAD_BYTES, drop that connection only (1006 on both builds)', async () => {
    for (const send of [
      (ws: WebSocket) => (ws as unknown as { _sender: { send(d: Buffer, o: object, cb: () => void): void } })._sender.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false, fin: true, mask: true, opcode: 1, readOnly: false, rsv1: false }, () => undefined),
      (ws: WebSocket) => ws.send('x'.repeat(70_000)),
    ]) {
      const code = await new Promise<number>((resolve) => {
        const ws = new WebSocket(gw.url, ['wsgate.v1.json'], { headers: { authorization: `Bearer ${hs({ sub: 'dropper' })}` } });
        ws.on('message', () => send(ws));
        ws.on('close', (c) => resolve(c));
        ws.on('error', () => undefined);
      });
      expect(code).toBe(1006);
    }
    await until(async () => (await metric('protocol_drops_total')) >= 2);
    await stillServing();
  });
});

describe('control frames are charged too', () => {
  it('a ping flood (uWS answers each with a pong) ends with 4502; so does a flood of unsolicited pongs', async () => {
    for (const kind of ['ping', 'pong'] as const) {
      const { client } = await connect(limited.url, hs({ sub: `${kind}-flood` }), { json: true });
      const payload = Buffer.alloc(100, 1);
      const timer = setInterval(() => {
        for (let i = 0; i < 50 && client.ws.readyState === WebSocket.OPEN; i++) client.ws[kind](payload);
      }, 5);
      try {
        expect(await client.closed).toEqual({ code: 4502, reason: 'Rate limit exceeded' });
      } finally {
        clearInterval(timer);
      }
    }
    await stillServing(limited, limitedBystander);
  });
});

describe('a user\'s sockets share one room-change budget (red-team finding F2)', () => {
  it('10 sockets of one user: joins past the user\'s bucket are RATE_LIMITED, whatever each socket\'s own limit; another user is not affected', async () => {
    const g = await spawnGateway({ WSGATE_USER_ROOM_RATE: '1', WSGATE_USER_ROOM_BURST: '100' });
    try {
      const many = await Promise.all(Array.from({ length: 10 }, async () => (await connect(g.url, hs({ sub: 'many' }))).client));
      const replies = await Promise.all(many.map((c, i) => c.request({ type: 'join', rooms: Array.from({ length: 20 }, (_, j) => `u/${i}/${j}`) })));
      const codes = replies.map((r) => (r.type === 'ack' ? 'ack' : r.code));
      // 100 tokens pay for 5 joins of 20 rooms (plus at most one token refilled meanwhile)
      expect(codes.filter((c) => c === 'ack')).toHaveLength(5);
      expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(5);
      // no socket is closed for it (it is not a flood of one socket)
      expect((await many[9]!.request({ type: 'ping' })).type).toBe('ack');
      const other = (await connect(g.url, hs({ sub: 'other' }))).client;
      expect((await other.request({ type: 'join', rooms: Array.from({ length: 20 }, (_, j) => `o/${j}`) })).type).toBe('ack');
      // leaves cost room changes too: the user has none left
      expect((await many[0]!.request({ type: 'leave', rooms: ['u/0/0', 'u/0/1', 'u/0/2', 'u/0/3', 'u/0/4'] })).code).toBe('RATE_LIMITED');
      await Promise.all([other.close(), ...many.map((c) => c.close())]);
    } finally {
      expect(await g.kill()).toBe(0);
    }
  });
});

describe('repeated header lines (red-team finding F5)', () => {
  /** A raw upgrade with the given extra header lines; resolves the status line. */
  const raw = (lines: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const sock = tcpConnect({ host: '127.0.0.1', port: gw.port });
      let got = '';
      sock.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('\r\n')) {
          resolve(got.slice(0, got.indexOf('\r\n')));
          sock.destroy();
        }
      });
      sock.on('error', reject);
      sock.write(['GET /ws HTTP/1.1', 'Host: x', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', ...lines, '', ''].join('\r\n'));
    });
  const a = hs({ sub: 'first' });
  const b = hs({ sub: 'second' });

  it('two Authorization lines, two Sec-WebSocket-Protocol lines or two cookies with different tokens are refused; the same token twice is fine', async () => {
    expect(await raw([`Authorization: Bearer ${a}`, `Authorization: Bearer ${b}`])).toMatch(/ 401 /);
    expect(await raw([`Sec-WebSocket-Protocol: wsgate.v1.json, bearer.${a}`, `Sec-WebSocket-Protocol: bearer.${b}`])).toMatch(/ 401 /);
    expect(await raw([`Cookie: wsgate_token=${a}`, `Cookie: wsgate_token=${b}`])).toMatch(/ 401 /);
    expect(await raw(['Origin: http://x', 'Origin: http://evil.example', `Authorization: Bearer ${a}`])).toMatch(/ 401 /);
    expect(await raw([`Authorization: Bearer ${a}`, `Authorization: Bearer ${a}`])).toMatch(/ 101 /);
    // a token on the second protocol line alone is found, not ignored
    expect(await raw(['Sec-WebSocket-Protocol: wsgate.v1.json', `Sec-WebSocket-Protocol: bearer.${a}`])).toMatch(/ 101 /);
  });
});
