import { decode as plainDecode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { decode, encode, negotiate, toRequest } from '../../src/protocol/codec.js';
import { ReplyError } from '../../src/errors/codes.js';

describe('codec', () => {
  it('msgpack frames are plain MessagePack that another library decodes', () => {
    const msg = { type: 'message' as const, room: 'chat/1', data: { a: [1, 'x', true, null], bin: new Uint8Array([1, 2]) }, from: 'alice', ts: 1700000000000 };
    const bytes = encode('msgpack', msg) as Buffer;
    const back = plainDecode(bytes) as { data: { a: unknown; bin: Uint8Array } } & Record<string, unknown>;
    expect({ ...back, data: undefined }).toEqual({ ...msg, data: undefined });
    expect(back.data.a).toEqual([1, 'x', true, null]);
    expect(Array.from(back.data.bin)).toEqual([1, 2]);
  });

  it('JSON frames carry the same messages; binary becomes base64', () => {
    const s = encode('json', { type: 'message', room: 'r', data: { bin: Buffer.from([1, 2, 3]) }, from: 'a', ts: 1 }) as string;
    expect(JSON.parse(s)).toEqual({ type: 'message', room: 'r', data: { bin: 'AQID' }, from: 'a', ts: 1 });
  });

  it('decodes requests and validates every field', () => {
    const ok = (v: unknown) => toRequest(v);
    expect(ok({ id: 1, type: 'join', rooms: ['a', 'b'] })).toEqual({ ok: true, req: { type: 'join', id: 1, rooms: ['a', 'b'] } });
    expect(ok({ id: 'x', type: 'join', room: 'a' })).toEqual({ ok: true, req: { type: 'join', id: 'x', rooms: ['a'] } });
    expect(ok({ id: 2, type: 'publish', room: 'a', data: 1 })).toEqual({ ok: true, req: { type: 'publish', id: 2, room: 'a', data: 1, echo: false } });
    expect(ok({ id: 3, type: 'token:refresh', token: 't' })).toMatchObject({ ok: true });
    expect(ok({ id: 4, type: 'presence', room: 'a' })).toMatchObject({ ok: true });
    expect(ok({ id: 5, type: 'ping' })).toMatchObject({ ok: true });
  });

  it('answers malformed requests with typed errors and the ref when there is one', () => {
    expect(toRequest(null)).toEqual({ ok: false, ref: null, error: ReplyError.BAD_REQUEST });
    expect(toRequest([1])).toEqual({ ok: false, ref: null, error: ReplyError.BAD_REQUEST });
    expect(toRequest({ type: 'join', rooms: ['a'] })).toEqual({ ok: false, ref: null, error: ReplyError.BAD_REQUEST });
    expect(toRequest({ id: 1.5, type: 'ping' })).toMatchObject({ ok: false, ref: null });
    expect(toRequest({ id: 'x'.repeat(65), type: 'ping' })).toMatchObject({ ok: false, ref: null });
    expect(toRequest({ id: 7, type: 'nope' })).toEqual({ ok: false, ref: 7, error: ReplyError.UNKNOWN_TYPE });
    for (const bad of [
      { id: 7, type: 'join' },
      { id: 7, type: 'join', rooms: [] },
      { id: 7, type: 'join', rooms: [1] },
      { id: 7, type: 'join', rooms: Array(101).fill('a') },
      { id: 7, type: 'publish', room: 'a' },
      { id: 7, type: 'publish', room: 1, data: 1 },
      { id: 7, type: 'publish', room: 'a', data: 1, echo: 'yes' },
      { id: 7, type: 'presence' },
      { id: 7, type: 'token:refresh', token: '' },
      { id: 7, type: 'token:refresh', token: 5 },
    ]) {
      expect(toRequest(bad)).toEqual({ ok: false, ref: 7, error: ReplyError.BAD_REQUEST });
    }
  });

  it('frames of the wrong kind for the subprotocol are flagged; garbage is a BAD_REQUEST', () => {
    expect(decode('msgpack', new TextEncoder().encode('{}'), false)).toBe('wrong-frame-type');
    expect(decode('json', new Uint8Array([0x80]), true)).toBe('wrong-frame-type');
    expect(decode('json', new TextEncoder().encode('{nope'), false)).toMatchObject({ ok: false, ref: null });
    expect(decode('msgpack', new Uint8Array([0xc1]), true)).toMatchObject({ ok: false, ref: null });
    expect(decode('msgpack', new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]), true)).toMatchObject({ ok: false, ref: null });
  });

  it('negotiates our subprotocols, ignores bearer entries, refuses foreign-only offers', () => {
    expect(negotiate([])).toEqual({ encoding: 'msgpack', protocol: undefined });
    expect(negotiate(['bearer.x'])).toEqual({ encoding: 'msgpack', protocol: undefined });
    expect(negotiate(['wsgate.v1.json', 'bearer.x'])).toEqual({ encoding: 'json', protocol: 'wsgate.v1.json' });
    expect(negotiate(['foo', 'wsgate.v1.msgpack'])).toEqual({ encoding: 'msgpack', protocol: 'wsgate.v1.msgpack' });
    expect(negotiate(['foo'])).toBeUndefined();
  });
});
