// Property-based tests (fast-check) of the pure pieces a hostile client reaches: key encodings,
// permission matching and the bounded decoders. Each property is checked against a reference
// written independently of the implementation, over generators that reach the edges (separators,
// digits, ':' in parts, lone surrogates, depth, every MessagePack family).
import { encode as plainEncode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { isClaimString } from '../../src/auth/claims.js';
import { MSGPACK, JSON_TEXT, edgeString, mpDeep, permissionList, requestFrame } from '../helpers/arbitraries.js';
import { keyOf, keyOf2, partsOf } from '../../src/keys/keys.js';
import { JsonWalker, MsgpackScanner } from '../../src/protocol/bounds.js';
import { Decoder } from '../../src/protocol/codec.js';
import { compilePermissions } from '../../src/rooms/permissions.js';
import { roomKey, roomOf, tenantOf, topicOf, validRoom } from '../../src/rooms/rooms.js';

const RUNS = { numRuns: 2000 };

// Strings made of the characters that matter to encodings: separators, digits, ':' and '/', '\n',
// NUL, lone surrogates, astral characters, plus arbitrary UTF-16 units.
const tricky = fc.string({
  unit: fc.oneof(
    fc.constantFrom(':', '/', '#', '*', '\n', '\u0000', '0', '1', '9', 'a', '\uD800', '\uDC00', '\uFFFD', '😀', '.', '@', '-'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 12,
});

describe('keys (keyOf): injective', () => {
  it('equal keys only for equal part lists, and partsOf inverts keyOf', () => {
    fc.assert(
      fc.property(fc.array(tricky, { maxLength: 4 }), fc.array(tricky, { maxLength: 4 }), (a, b) => {
        expect(keyOf(...a) === keyOf(...b)).toBe(JSON.stringify(a) === JSON.stringify(b));
        expect(partsOf(keyOf(...a))).toEqual(a);
      }),
      RUNS,
    );
  });

  it('keyOf2 is keyOf of two parts; a key with a suffix never equals another key with a suffix', () => {
    fc.assert(
      fc.property(tricky, tricky, tricky, tricky, fc.constantFrom('#m', '#j', ''), fc.constantFrom('#m', '#j', ''), (a, b, c, d, s1, s2) => {
        expect(keyOf2(a, b)).toBe(keyOf(a, b));
        const same = a === c && b === d && s1 === s2;
        expect(keyOf2(a, b) + s1 === keyOf2(c, d) + s2).toBe(same);
      }),
      RUNS,
    );
  });

  it('room keys: tenant and room come back out; topics differ per tenant, room and encoding', () => {
    fc.assert(
      fc.property(tricky, tricky, tricky, tricky, fc.constantFrom('msgpack', 'json') as fc.Arbitrary<'msgpack' | 'json'>, (t1, r1, t2, r2, enc) => {
        expect(roomOf(roomKey(t1, r1))).toBe(r1);
        expect(tenantOf(roomKey(t1, r1))).toBe(t1);
        const sameRoom = t1 === t2 && r1 === r2;
        expect(topicOf(roomKey(t1, r1), enc) === topicOf(roomKey(t2, r2), enc)).toBe(sameRoom);
        expect(topicOf(roomKey(t1, r1), 'msgpack')).not.toBe(topicOf(roomKey(t2, r2), 'json'));
      }),
      RUNS,
    );
  });

  it('for claim strings the gateway accepts, the UTF-8 bytes of keys (what Redis stores) are injective too', () => {
    const claim = tricky.filter(isClaimString);
    fc.assert(
      fc.property(claim, claim, tricky, (t1, t2, room) => {
        const b1 = Buffer.from(roomKey(t1, room));
        const b2 = Buffer.from(roomKey(t2, room));
        expect(b1.equals(b2)).toBe(t1 === t2);
      }),
      RUNS,
    );
    // and the strings it refuses are exactly the ones that could collide or hide controls
    expect(isClaimString('acme\uD800')).toBe(false);
    expect(Buffer.from('acme\uD800').equals(Buffer.from('acme\uDBFF'))).toBe(true); // why they are refused
  });
});

// A reference matcher for the permission grammar (docs/PROTOCOL.md#permissions), written from the
// grammar, not from the implementation.
const SEGMENT = /^[A-Za-z0-9_\-.:@]+$/;
function refCan(perms: readonly string[], action: string, room: string): boolean {
  const roomSegs = room.split('/');
  const matches = (pattern: string): boolean => {
    const segs = pattern.split('/');
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i]!;
      if (s === '**') {
        if (i !== segs.length - 1) return false; // '**' only last: the pattern is invalid
        return roomSegs.length > i; // one or more remaining segments
      }
      if (s !== '*' && !SEGMENT.test(s)) return false; // invalid literal: grants nothing
      if (i >= roomSegs.length) return false;
      if (s !== '*' && s !== roomSegs[i]) return false;
    }
    return segs.length === roomSegs.length;
  };
  for (const p of perms) {
    const colon = p.indexOf(':');
    if (colon <= 0) continue;
    const a = p.slice(0, colon);
    if (a !== action && a !== '*') continue;
    if (!['join', 'publish', 'presence', '*'].includes(a)) continue;
    const pattern = p.slice(colon + 1);
    // an invalid pattern grants nothing, even where a prefix of it would match
    const segs = pattern.split('/');
    if (segs.some((s, i) => (s === '**' ? i !== segs.length - 1 : s !== '*' && !SEGMENT.test(s)))) continue;
    if (matches(pattern)) return true;
  }
  return false;
}

const seg = fc.constantFrom('a', 'b', 'chat', '42', 'x.y', 'u:1', '*', '**', '', '#', 'a\nb', 'a b', '..', 'é');
const pattern = fc.array(seg, { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));
const permission = fc.oneof(
  fc.tuple(fc.constantFrom('join', 'publish', 'presence', '*', 'fly', ''), pattern).map(([a, p]) => `${a}:${p}`),
  fc.tuple(fc.constantFrom('join', 'publish'), pattern, fc.constantFrom('\n', ',', ' '), fc.constantFrom('publish', '*'), pattern).map(([a, p, sep, b, q]) => `${a}:${p}${sep}${b}:${q}`),
  tricky,
);
const roomName = fc.array(fc.constantFrom('a', 'b', 'chat', '42', 'x.y', 'u:1', '..'), { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));

describe('permissions: compiled matching agrees with the grammar, whatever was compiled before', () => {
  it('can(action, room) equals the reference for every list, including lists whose joined text equals another list\'s', () => {
    fc.assert(
      fc.property(fc.array(permission, { maxLength: 4 }), fc.array(permission, { maxLength: 4 }), fc.constantFrom('join', 'publish', 'presence') as fc.Arbitrary<'join' | 'publish' | 'presence'>, roomName, (l1, l2, action, room) => {
        expect(validRoom(room, 128)).toBe(true);
        // compile l2 first: the cache must not hand l1 another list's compiled form
        compilePermissions(l2);
        expect(compilePermissions(l1).can(action, room)).toBe(refCan(l1, action, room));
        expect(compilePermissions(l2).can(action, room)).toBe(refCan(l2, action, room));
      }),
      { numRuns: 5000 },
    );
  });

  it('the collision from the outside check: one entry "join:lobby\\npublish:**" never allows publishing', () => {
    compilePermissions(['join:lobby', 'publish:**']);
    const p = compilePermissions(['join:lobby\npublish:**']);
    expect(p.can('publish', 'x')).toBe(false);
    expect(p.can('join', 'lobby')).toBe(false);
  });
});

describe('bounded decoding', () => {
  const limits = { maxDepth: 8, maxItems: 200 };
  const scanner = new MsgpackScanner(limits);
  const walker = new JsonWalker(limits);
  const decoder = new Decoder(limits);
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

  // the depth of a value, counting containers (the reference for both walkers)
  const depthOf = (v: unknown): number => (v !== null && typeof v === 'object' && !(v instanceof Uint8Array) ? 1 + Math.max(0, ...Object.values(v as object).map(depthOf)) : 0);
  const itemsOf = (v: unknown): number =>
    v !== null && typeof v === 'object' && !(v instanceof Uint8Array) ? 1 + (Array.isArray(v) ? 0 : Object.keys(v).length) + Object.values(v as object).reduce<number>((n, x) => n + itemsOf(x), 0) : 1;

  // byte arrays of any type as plain number arrays, -0 as 0 (MessagePack ints have no sign of zero)
  const plain = (v: unknown): unknown =>
    v instanceof Uint8Array ? { bin: [...v] } : Array.isArray(v) ? v.map(plain) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : Object.is(v, -0) ? 0 : v;

  const value = fc.letrec((tie) => ({
    v: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constantFrom(null, true, false, 0, -1, 127, 128, -33, 255, 256, 65535, 65536, -129, 2 ** 31, -(2 ** 31) - 1, 2 ** 40, 1.5, -0.25),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.array(tie('v'), { maxLength: 5 }),
      fc.dictionary(fc.string({ maxLength: 5 }), tie('v'), { maxKeys: 5 }),
    ),
  })).v;

  it('plain MessagePack within the limits is accepted and decodes to what was encoded; beyond them it is refused with the right reason', () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = plainEncode(v);
        const r = scanner.scan(bytes);
        const d = depthOf(v);
        const n = itemsOf(v);
        if (d > limits.maxDepth) expect(r).toMatchObject({ ok: false });
        else if (n > limits.maxItems) expect(r).toMatchObject({ ok: false, reason: 'items' });
        else {
          expect(r.ok).toBe(true);
          expect(plain(unpackr.unpack(bytes))).toEqual(plain(v));
        }
      }),
      RUNS,
    );
  });

  it('the JSON walker measures depth and items exactly as the reference, and refuses __proto__ keys and lone surrogates', () => {
    // the reference: anything that breaks no rule passes; a value that breaks only one rule gets that rule's reason
    const keysOf = (v: unknown): string[] => (v !== null && typeof v === 'object' ? [...(Array.isArray(v) ? [] : Object.keys(v)), ...Object.values(v as object).flatMap(keysOf)] : []);
    const stringsOf = (v: unknown): string[] => (typeof v === 'string' ? [v] : v !== null && typeof v === 'object' ? Object.values(v as object).flatMap(stringsOf) : []);
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), (v) => {
        const r = walker.check(v);
        const broken = {
          depth: depthOf(v) > limits.maxDepth,
          items: itemsOf(v) > limits.maxItems,
          'key-type': keysOf(v).includes('__proto__'),
          unicode: [...keysOf(v), ...stringsOf(v)].some((x) => !x.isWellFormed()),
        };
        const reasons = Object.entries(broken).filter(([, b]) => b).map(([k]) => k);
        if (reasons.length === 0) expect(r).toBeUndefined();
        else if (reasons.length === 1 && reasons[0] !== 'key-type' && reasons[0] !== 'unicode') expect(r).toBe(reasons[0]);
        else expect(r).toBeDefined();
      }),
      RUNS,
    );
  });

  it('any bytes: the decoder never throws and answers a request or a typed error; whatever the scanner passes, msgpackr reads whole', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const d = decoder.decode('msgpack', bytes, true);
        expect(d === 'wrong-frame-type' ? 'wrong' : d.ok || typeof d.error.code === 'string').toBe(true);
        if (scanner.scan(bytes).ok) expect(() => unpackr.unpack(bytes)).not.toThrow();
      }),
      { numRuns: 20_000 },
    );
  });

  it('any text: the JSON decoder never throws', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 64 }), fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null')), (text) => {
        const d = decoder.decode('json', new TextEncoder().encode(text), false);
        expect(d).not.toBe('wrong-frame-type');
      }),
      { numRuns: 10_000 },
    );
  });
});

// The fuzzer's generators (test/helpers/arbitraries.ts): byte-level MessagePack and JSON of every
// family, lying lengths, every extension type, deep trees, Unicode edge strings, permission lists.
describe('against the fuzzer\'s generators', () => {
  const decoder = new Decoder({ maxDepth: 32, maxItems: 10_000 });
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

  it('request frames of every MessagePack family: the decoder never throws; only plain MessagePack reaches msgpackr, and it reads it whole', () => {
    const scanner = new MsgpackScanner({ maxDepth: 32, maxItems: 10_000 });
    fc.assert(
      fc.property(fc.oneof(requestFrame(MSGPACK, { payload: MSGPACK.tree }), requestFrame(MSGPACK, { payload: MSGPACK.exotic }), requestFrame(MSGPACK, { payload: mpDeep(8000) })), (f) => {
        const bytes = f.bytes;
        expect(() => decoder.decode('msgpack', bytes, true)).not.toThrow();
        if (scanner.scan(bytes).ok) expect(() => unpackr.unpack(bytes)).not.toThrow();
      }),
      { numRuns: 5000 },
    );
  });

  it('JSON request frames of every family: the decoder never throws', () => {
    fc.assert(
      fc.property(fc.oneof(requestFrame(JSON_TEXT, { payload: JSON_TEXT.tree }), requestFrame(JSON_TEXT, { payload: JSON_TEXT.exotic }), requestFrame(JSON_TEXT, { payload: JSON_TEXT.deep(8000) })), (f) => {
        expect(() => decoder.decode('json', f.bytes, false)).not.toThrow();
      }),
      { numRuns: 5000 },
    );
  });

  it('claim strings: accepted exactly when well-formed, 1 to 256 characters and free of control characters', () => {
    fc.assert(
      fc.property(edgeString(400), (s) => {
        const expected = s.length > 0 && s.length <= 256 && s.isWellFormed() && !/[\u0000-\u001f\u007f-\u009f]/.test(s);
        expect(isClaimString(s)).toBe(expected);
      }),
      { numRuns: 5000 },
    );
  });

  it('keyOf is injective over Unicode edge strings too', () => {
    fc.assert(
      fc.property(fc.array(edgeString(40), { maxLength: 3 }), fc.array(edgeString(40), { maxLength: 3 }), (a, b) => {
        expect(keyOf(...a) === keyOf(...b)).toBe(JSON.stringify(a) === JSON.stringify(b));
      }),
      { numRuns: 3000 },
    );
  });

  it('permission lists with separator tricks match as the grammar says', () => {
    fc.assert(
      fc.property(permissionList, permissionList, roomName, fc.constantFrom('join', 'publish', 'presence') as fc.Arbitrary<'join' | 'publish' | 'presence'>, (l1, l2, room, action) => {
        compilePermissions(l2);
        expect(compilePermissions(l1).can(action, room)).toBe(refCan(l1, action, room));
      }),
      { numRuns: 3000 },
    );
  });
});
