import { decode as plainDecode, encode as plainEncode } from '@msgpack/msgpack';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { Decoder, encode, encodeJson, negotiate, toRequest, type Decoded } from '../../src/protocol/codec.js';
import { ReplyError } from '../../src/errors/codes.js';

const limits = { maxDepth: 32, maxItems: 10_000 };
const decoder = new Decoder(limits);
const mp = (v: unknown): Uint8Array => plainEncode(v);
const js = (v: string): Uint8Array => new TextEncoder().encode(v);
const dm = (b: Uint8Array): Decoded => decoder.decode('msgpack', b, true) as Decoded;
const dj = (s: string): Decoded => decoder.decode('json', js(s), false) as Decoded;

/** A msgpack publish request (id 3) whose `data` is the given raw bytes. */
const publishWith = (value: Uint8Array, id = 3): Uint8Array =>
  Buffer.concat([Buffer.from([0x84]), Buffer.from(mp('id')), Buffer.from(mp(id)), Buffer.from(mp('type')), Buffer.from(mp('publish')), Buffer.from(mp('room')), Buffer.from(mp('r')), Buffer.from(mp('data')), Buffer.from(value)]);

/** `depth` nested arrays around 1, as the `data` of a publish. */
const nested = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

describe('codec', () => {
  it('msgpack frames are plain MessagePack that another library decodes', () => {
    const msg = { type: 'message' as const, room: 'chat/1', data: { a: [1, 'x', true, null], bin: new Uint8Array([1, 2]) }, from: 'alice', ts: 1700000000000 };
    const bytes = encode('msgpack', msg) as Buffer;
    const back = plainDecode(bytes) as { data: { a: unknown; bin: Uint8Array } } & Record<string, unknown>;
    expect({ ...back, data: undefined }).toEqual({ ...msg, data: undefined });
    expect(back.data.a).toEqual([1, 'x', true, null]);
    expect(Array.from(back.data.bin)).toEqual([1, 2]);
  });

  it('JSON frames carry the same messages; every byte-array shape becomes base64', () => {
    const msg = (bin: unknown) => ({ type: 'message' as const, room: 'r', data: { bin, list: [bin] }, from: 'a', ts: 1 });
    for (const bin of [Buffer.from([1, 2, 3]), new Uint8Array([1, 2, 3]), new Uint8Array([0, 1, 2, 3, 4]).subarray(1, 4)]) {
      expect(JSON.parse(encodeJson(msg(bin), true))).toEqual({ type: 'message', room: 'r', data: { bin: 'AQID', list: ['AQID'] }, from: 'a', ts: 1 });
    }
  });

  it('a msgpack publisher\'s bin data reaches JSON as base64, end to end through the decoder', () => {
    const d = dm(mp({ id: 1, type: 'publish', room: 'r', data: { b: new Uint8Array([255, 0, 7]) } }));
    expect(d).toMatchObject({ ok: true, binary: true });
    if (!d.ok || d.req.type !== 'publish') throw new Error('decode failed');
    const out = JSON.parse(encodeJson({ type: 'message', room: 'r', data: d.req.data, from: 'a', ts: 1 }, d.binary)) as { data: { b: string } };
    expect(out.data.b).toBe(Buffer.from([255, 0, 7]).toString('base64'));
  });

  it('decodes requests and validates every field', () => {
    const ok = (v: unknown) => toRequest(v);
    expect(ok({ id: 1, type: 'join', rooms: ['a', 'b'] })).toEqual({ ok: true, req: { type: 'join', id: 1, rooms: ['a', 'b'] }, binary: false });
    expect(ok({ id: 'x', type: 'join', room: 'a' })).toEqual({ ok: true, req: { type: 'join', id: 'x', rooms: ['a'] }, binary: false });
    expect(ok({ id: 2, type: 'publish', room: 'a', data: 1 })).toEqual({ ok: true, req: { type: 'publish', id: 2, room: 'a', data: 1, echo: false }, binary: false });
    expect(ok({ id: 3, type: 'token:refresh', token: 't' })).toMatchObject({ ok: true });
    expect(ok({ id: 4, type: 'presence', room: 'a' })).toMatchObject({ ok: true });
    expect(ok({ id: 5, type: 'ping' })).toMatchObject({ ok: true });
  });

  it('answers malformed requests with typed errors and the ref when there is one', () => {
    const badReq = { ok: false, ref: null, error: ReplyError.BAD_REQUEST, reason: 'shape' };
    expect(toRequest(null)).toEqual(badReq);
    expect(toRequest([1])).toEqual(badReq);
    expect(toRequest({ type: 'join', rooms: ['a'] })).toEqual(badReq);
    expect(toRequest({ id: 1.5, type: 'ping' })).toMatchObject({ ok: false, ref: null });
    expect(toRequest({ id: 'x'.repeat(65), type: 'ping' })).toMatchObject({ ok: false, ref: null });
    expect(toRequest({ id: 7, type: 'nope' })).toEqual({ ok: false, ref: 7, error: ReplyError.UNKNOWN_TYPE, reason: 'unknown-type' });
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
      expect(toRequest(bad)).toEqual({ ok: false, ref: 7, error: ReplyError.BAD_REQUEST, reason: 'shape' });
    }
  });

  it('frames of the wrong kind for the subprotocol are flagged; garbage is a BAD_REQUEST', () => {
    expect(decoder.decode('msgpack', js('{}'), false)).toBe('wrong-frame-type');
    expect(decoder.decode('json', new Uint8Array([0x80]), true)).toBe('wrong-frame-type');
    expect(dj('{nope')).toMatchObject({ ok: false, ref: null, reason: 'malformed' });
    expect(dm(new Uint8Array([0xc1]))).toMatchObject({ ok: false, ref: null, reason: 'malformed' });
    expect(dm(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]))).toMatchObject({ ok: false, ref: null, reason: 'malformed' });
  });

  it('negotiates our subprotocols, ignores bearer entries, refuses foreign-only offers', () => {
    expect(negotiate([])).toEqual({ encoding: 'msgpack', protocol: undefined });
    expect(negotiate(['bearer.x'])).toEqual({ encoding: 'msgpack', protocol: undefined });
    expect(negotiate(['wsgate.v1.json', 'bearer.x'])).toEqual({ encoding: 'json', protocol: 'wsgate.v1.json' });
    expect(negotiate(['foo', 'wsgate.v1.msgpack'])).toEqual({ encoding: 'msgpack', protocol: 'wsgate.v1.msgpack' });
    expect(negotiate(['foo'])).toBeUndefined();
  });
});

describe('strict, bounded decoding', () => {
  it('the frames that ended the process: ~2,000 nested arrays in publish data, both encodings -> BAD_REQUEST with the ref', () => {
    const deep = { id: 9, type: 'publish', room: 'r', data: nested(2000) };
    expect(dj(JSON.stringify(deep))).toMatchObject({ ok: false, ref: 9, error: ReplyError.BAD_REQUEST, reason: 'depth' });
    // built by hand: 2,000 fixarray(1) headers around a 1
    expect(dm(publishWith(Buffer.concat([Buffer.alloc(2000, 0x91), Buffer.from([0x01])]), 9))).toMatchObject({ ok: false, ref: 9, reason: 'depth' });
  });

  it('depth up to the limit passes and one more is refused (the request map is level 1)', () => {
    const at = (depth: number) => ({ id: 1, type: 'publish', room: 'r', data: nested(depth) });
    expect(dm(mp(at(limits.maxDepth - 1)))).toMatchObject({ ok: true });
    expect(dm(mp(at(limits.maxDepth)))).toMatchObject({ ok: false, reason: 'depth' });
    expect(dj(JSON.stringify(at(limits.maxDepth - 1)))).toMatchObject({ ok: true });
    expect(dj(JSON.stringify(at(limits.maxDepth)))).toMatchObject({ ok: false, reason: 'depth' });
  });

  it('items up to the limit pass and more are refused, counting map keys', () => {
    const withItems = (n: number) => ({ id: 1, type: 'publish', room: 'r', data: Array(n).fill(0) });
    // the request map: 4 keys + 4 values = 8 items, the array itself 1: data may hold maxItems - 9
    expect(dm(mp(withItems(limits.maxItems - 9)))).toMatchObject({ ok: true });
    expect(dm(mp(withItems(limits.maxItems - 8)))).toMatchObject({ ok: false, reason: 'items' });
    expect(dj(JSON.stringify(withItems(limits.maxItems - 9)))).toMatchObject({ ok: true });
    expect(dj(JSON.stringify(withItems(limits.maxItems - 8)))).toMatchObject({ ok: false, reason: 'items' });
  });

  it('every extension type but the standard timestamp is refused, in every position', () => {
    const extBytes = (type: number, len: number): Uint8Array => {
      const head = len === 1 ? [0xd4] : len === 2 ? [0xd5] : len === 4 ? [0xd6] : len === 8 ? [0xd7] : len === 16 ? [0xd8] : [0xc7, len];
      return new Uint8Array([...head, type & 0xff, ...new Array(len).fill(0)]);
    };
    for (const type of [0x42, 0x74, 0x69, 0x70, 0x73, 0x6d, 0x65, 0x78, 0x72, 0x64, 0, 1, 127, -128, -2]) {
      for (const len of [1, 2, 4, 8, 16, 3, 12]) {
        expect(dm(publishWith(extBytes(type, len))), `type ${type} len ${len}`).toMatchObject({ ok: false, ref: 3, reason: 'extension' });
      }
    }
    // the timestamp (type -1) in its three sizes decodes
    for (const t of [extBytes(-1, 4), new Uint8Array([0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 1]), new Uint8Array([0xc7, 12, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])]) {
      expect(dm(publishWith(t))).toMatchObject({ ok: true });
    }
    // timestamps that would decode to an Invalid Date are malformed
    expect(dm(publishWith(new Uint8Array([0xc7, 12, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1])))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(dm(publishWith(new Uint8Array([0xc7, 12, 0xff, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])))).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('msgpackr-only encodings (records, BigInt, typed arrays, structured clone) are refused', () => {
    const value = { id: 4, type: 'publish', room: 'r', data: { big: 2n ** 70n, typed: new Float64Array([1.5]), set: new Set([1]), map: new Map([[1, 2]]), err: new Error('x'), re: /x/ } };
    const variants = [
      new Packr({ useRecords: true, moreTypes: true }).pack(value),
      new Packr({ structuredClone: true, moreTypes: true }).pack(value),
      new Packr({ moreTypes: true, useRecords: false, largeBigIntToFloat: false }).pack(value),
    ];
    for (const v of variants) expect(dm(v)).toMatchObject({ ok: false, error: ReplyError.BAD_REQUEST });
  });

  it('maps must have string keys; truncated values and trailing bytes are malformed', () => {
    const good = Buffer.from(mp({ id: 5, type: 'ping' }));
    expect(dm(good)).toMatchObject({ ok: true });
    expect(dm(new Uint8Array([0x82, 0x01, 0x02, 0xa4, 0x74, 0x79, 0x70, 0x65, 0xa4, 0x70, 0x69, 0x6e, 0x67]))).toMatchObject({ ok: false, reason: 'key-type' });
    expect(dm(publishWith(new Uint8Array([0x81, 0x01, 0xa1, 0x78]), 5))).toMatchObject({ ok: false, ref: 5, reason: 'key-type' });
    expect(dm(publishWith(new Uint8Array([0x81, 0xc0, 0xa1, 0x78]), 5))).toMatchObject({ ok: false, ref: 5, reason: 'key-type' });
    expect(dm(publishWith(new Uint8Array([0x81, 0xc4, 0x01, 0x78, 0x01]), 5))).toMatchObject({ ok: false, ref: 5, reason: 'key-type' });
    for (let cut = 1; cut < good.length; cut++) expect(dm(good.subarray(0, cut))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(dm(Buffer.concat([good, Buffer.from([0xc0])]))).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('every string must be Unicode that survives the other encoding; the key __proto__ is refused', () => {
    // MessagePack strings that are not UTF-8
    expect(dm(publishWith(new Uint8Array([0xa2, 0xff, 0xfe]), 5))).toMatchObject({ ok: false, ref: 5, reason: 'unicode' });
    expect(dm(publishWith(new Uint8Array([0xa3, 0xed, 0xa0, 0x80]), 5))).toMatchObject({ ok: false, reason: 'unicode' }); // an encoded surrogate
    expect(dm(publishWith(Buffer.from([0xa6, ...Buffer.from('héllo')]), 5))).toMatchObject({ ok: true });
    // JSON escapes that spell lone surrogates, in values and in keys
    expect(dj('{"id":6,"type":"publish","room":"r","data":"a\\ud800b"}')).toMatchObject({ ok: false, ref: 6, reason: 'unicode' });
    expect(dj('{"id":6,"type":"publish","room":"r","data":{"\\udc00":1}}')).toMatchObject({ ok: false, ref: 6, reason: 'unicode' });
    expect(dj('{"id":6,"type":"publish","room":"r","data":"\\ud83d\\ude00"}')).toMatchObject({ ok: true });
    // __proto__ as a key, in both encodings
    expect(dj('{"id":7,"type":"publish","room":"r","data":{"__proto__":{"x":1}}}')).toMatchObject({ ok: false, ref: 7, reason: 'key-type' });
    expect(dm(publishWith(new Uint8Array([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01]), 7))).toMatchObject({ ok: false, ref: 7, reason: 'key-type' });
    // duplicate keys: the last one wins, in both encodings
    expect(dj('{"id":8,"type":"ping","type":"presence","room":"r"}')).toMatchObject({ ok: true, req: { type: 'presence' } });
  });

  it('declared lengths larger than the frame cost nothing and are malformed', () => {
    for (const head of [[0xdd, 0xff, 0xff, 0xff, 0xff], [0xdf, 0xff, 0xff, 0xff, 0xff], [0xdb, 0x7f, 0xff, 0xff, 0xff], [0xc6, 0xff, 0xff, 0xff, 0xff], [0xdc, 0xff, 0xff], [0xde, 0xff, 0xff], [0xc9, 0xff, 0xff, 0xff, 0xff, 0x01]]) {
      expect(dm(new Uint8Array(head))).toMatchObject({ ok: false });
    }
  });

  it('the request id is still read from a refused frame (string and integer ids)', () => {
    const badData = new Uint8Array([0x81, 0x01, 0x01]);
    for (const id of ['req-1', 300, -5, 70000, -70000, 0]) expect(dm(publishWith(badData, id as number))).toMatchObject({ ok: false, ref: id });
    // id after the offending value: not read, ref null
    const late = Buffer.concat([Buffer.from([0x82]), Buffer.from(mp('data')), Buffer.from(badData), Buffer.from(mp('id')), Buffer.from(mp(1))]);
    expect(dm(late)).toMatchObject({ ok: false, ref: null });
  });

  it('decoding time follows the frame bytes: a 64 KiB frame of the worst shapes is refused without building it', () => {
    // 64 KiB of fixarray(15) headers: each declares 15 children, far more than the bytes left at the end
    const deepWide = new Uint8Array(65536).fill(0x9f);
    expect(dm(deepWide)).toMatchObject({ ok: false });
    const flat = Buffer.concat([Buffer.from([0xdc, 0xff, 0xff]), Buffer.alloc(65535, 0xc0)]);
    expect(dm(flat)).toMatchObject({ ok: false, reason: 'items' });
  });
});
