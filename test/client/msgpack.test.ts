// The SDK's own MessagePack codec against the two libraries around it: the server's msgpackr
// (with the gateway's settings) and @msgpack/msgpack, in both directions, on generated values;
// and against the protocol's own examples (docs/PROTOCOL.md).
import { readFileSync } from 'node:fs';
import { decode as refDecode, encode as refEncode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../src/client/msgpack.js';
import { Decoder, encodeMsgpack } from '../../src/protocol/codec.js';

const serverDecoder = new Decoder({ maxDepth: 32, maxItems: 10_000 });

// The gateway's own settings (src/protocol/codec.ts).
const packr = new Packr({ useRecords: false, bundleStrings: false, moreTypes: false, encodeUndefinedAsNil: true });
const unpackr = new Unpackr({ useRecords: false, bundleStrings: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

// Values the protocol carries: JSON-like data plus binary; integers across every width. Keys
// leave out "__proto__", which msgpackr renames on decoding (tested on its own below).
const key = fc.string({ unit: 'binary', maxLength: 12 }).filter((k) => k !== '__proto__');
const value = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true }).filter((d) => !Object.is(d, -0)),
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }),
  ),
  node: fc.oneof({ depthSize: 'small' }, tie('leaf'), fc.array(tie('node'), { maxLength: 20 }), fc.dictionary(key, tie('node'), { maxKeys: 20 })),
})).node;

/** Uint8Array vs Buffer compare equal by content. */
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? { bin: [...x] } : x)));

describe('own MessagePack codec', () => {
  it('what it encodes, msgpackr (the gateway) and @msgpack/msgpack decode to the same value', () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = encode(v);
        expect(plain(unpackr.unpack(bytes))).toEqual(plain(v));
        expect(plain(refDecode(bytes))).toEqual(plain(v));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes what msgpackr (the gateway) and @msgpack/msgpack encode', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(plain(decode(packr.pack(v)))).toEqual(plain(v));
        expect(plain(decode(refEncode(v)))).toEqual(plain(v));
      }),
      { numRuns: 300 },
    );
  });

  it('integers take the smallest form, and values beyond 32 bits the float64 msgpackr writes', () => {
    for (const n of [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), 2 ** 32, 1767225000123, -(2 ** 40), 0.5, Number.MAX_SAFE_INTEGER]) {
      expect(Buffer.from(encode(n)).toString('hex'), String(n)).toBe(packr.pack(n).toString('hex'));
      expect(Object.is(decode(encode(n)), n), String(n)).toBe(true);
    }
    // -0 stays -0 (float64); msgpackr writes it as the integer 0
    expect(Object.is(decode(encode(-0)), -0)).toBe(true);
  });

  it('64-bit integers, float32, timestamps and other extensions decode', () => {
    expect(decode(Buffer.from('cf0000010000000000', 'hex'))).toBe(2 ** 40);
    expect(decode(Buffer.from('d3ffffff0000000000', 'hex'))).toBe(-(2 ** 40));
    expect(decode(Buffer.from('ca3fc00000', 'hex'))).toBe(1.5);
    expect(decode(encode(BigInt(2) ** BigInt(60)))).toBe(2 ** 60);
    expect(decode(encode(-(BigInt(2) ** BigInt(60))))).toBe(-(2 ** 60));
    for (const d of [new Date(0), new Date(1767225600000), new Date(1767225600123), new Date(-1000), new Date(Date.UTC(2600, 0, 1, 0, 0, 0, 7))]) {
      expect(decode(encode(d))).toEqual(d);
      expect(unpackr.unpack(encode(d))).toEqual(d);
      expect(decode(packr.pack(d))).toEqual(d);
    }
    expect(decode(Buffer.from('d40501', 'hex'))).toEqual({ type: 5, data: Uint8Array.of(1) });
  });

  it('leaves out undefined properties as JSON does; undefined elsewhere is nil, as the gateway writes it', () => {
    expect(decode(encode({ a: 1, b: undefined, f: () => 1 }))).toEqual({ a: 1 });
    expect(decode(encode([undefined, 1]))).toEqual([null, 1]);
    expect(decode(encode(new Map<unknown, unknown>([['k', 1], [2, 'two']])))).toEqual({ k: 1, 2: 'two' });
  });

  it('a "__proto__" key is an own property, not the prototype', () => {
    const o = decode(packr.pack(JSON.parse('{"__proto__":{"polluted":true}}'))) as Record<string, unknown>;
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(Object.keys(o)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects truncated, trailing and invalid input instead of guessing', () => {
    const bytes = encode({ type: 'message', room: 'chat/42', data: 'x'.repeat(40) });
    for (let n = 0; n < bytes.length; n++) expect(() => decode(bytes.subarray(0, n)), `${n} bytes`).toThrow(RangeError);
    expect(() => decode(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/trailing/);
    expect(() => decode(Buffer.from('c1', 'hex'))).toThrow(/0xc1/);
    expect(() => decode(Buffer.from('dfffffffff', 'hex'))).toThrow(RangeError); // a 4-billion-entry map in 5 bytes
  });

  it('long strings and many entries use the 16- and 32-bit forms', () => {
    const big = { s: 'é'.repeat(40_000), a: Array.from({ length: 70_000 }, (_, i) => i % 7), b: new Uint8Array(70_000).fill(3) };
    expect(plain(decode(encode(big)))).toEqual(plain(big));
    expect(plain(unpackr.unpack(encode(big)))).toEqual(plain(big));
  });

  it('decodes every server-side example of docs/PROTOCOL.md, and the gateway reads what it encodes', () => {
    const text = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    const pairs = [...text.matchAll(/```json\n(.+?)\n```\n\n```msgpack-hex\n([\s\S]+?)\n```/g)];
    expect(pairs.length).toBeGreaterThanOrEqual(15);
    for (const [, json, hex] of pairs) {
      const example = JSON.parse(json!) as Record<string, unknown>;
      expect(decode(Buffer.from(hex!.replace(/\s+/g, ''), 'hex'))).toEqual(example);
      expect(decode(encodeMsgpack(example as never))).toEqual(example);
      if ('id' in example) expect(serverDecoder.decode('msgpack', encode(example), true)).toMatchObject({ ok: true });
    }
  });
});
