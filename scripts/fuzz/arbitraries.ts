// fast-check arbitraries that reach the edges of the wsgate protocol: nesting to the frame
// limit, every MessagePack format family and extension type (written byte by byte, see
// msgpack.ts), JSON text edge cases, Unicode edge strings, room and permission strings with
// every separator, edge-case claims and token transports, and the tenant and permission
// collision pairs. test/helpers/arbitraries.ts re-exports this module for property tests; the
// fuzzer (scripts/fuzz.ts) samples it with a per-case seed so that any case replays from
// --seed and its index.
import fc from 'fast-check';
import { encodeJs, jsLevelBytes, jstr, lit, type Js, type StrStyle } from './json.js';
import { encodeMp, ext, int, mpLevelBytes, mpLies, str, wtf8, type ArrFmt, type BinFmt, type DeepShape, type ExtFmt, type IntFmt, type MapFmt, type Mp, type StrFmt } from './msgpack.js';

export type Arb<T> = fc.Arbitrary<T>;

// ---------------------------------------------------------------- strings

/** Code units and short sequences that break naive string handling. */
export const EDGE_UNITS: readonly string[] = [
  '\uD800', '\uDBFF', '\uDC00', '\uDFFF', '\uDC00\uD800', // lone and reversed surrogates
  '\u0000', '\u0001', '\u0008', '\u001B', '\u001F', '\u007F', // NUL, C0, DEL
  '\u0080', '\u0085', '\u009B', '\u009F', // C1 (NEL, CSI)
  '\u2028', '\u2029', '\u202E', '\u202D', '\u2066', '\u200B', '\u200D', '\u00AD', // separators, bidi, zero-width
  '\uFEFF', '\uFFFE', '\uFFFF', '\uFDD0', '\u{1FFFE}', '\u{10FFFF}', // BOM, non-characters
  '\u0301', '\u0301\u0301\u0301\u0301', 'e\u0301', '\u00E9', '\u0130', '\u212A', // combining, normalization, case
  '\uFFFD', '\u{1F4A5}', '\u{1F469}\u200D\u{1F4BB}', // replacement char, astral, ZWJ sequence
  '\n', '\r', '\t', '"', '\\', '/', ':', '*', '#', '%00', '%2F', ' ',
];

const asciiWord = fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,8}$/);
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const controlChar = fc.integer({ min: 0, max: 0x9f }).filter((c) => c < 0x20 || c >= 0x7f).map((c) => String.fromCharCode(c));

export const edgeChar: Arb<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...EDGE_UNITS) },
  { weight: 2, arbitrary: loneSurrogate },
  { weight: 1, arbitrary: controlChar },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 2 }) },
);

/** Unicode edge strings; `maxLong` bounds the occasional very long one (code units). */
export function edgeString(maxLong = 20_000): Arb<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.array(fc.oneof(edgeChar, asciiWord), { maxLength: 10 }).map((xs) => xs.join('')) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', '__proto__', 'constructor', 'prototype', 'toString', 'null', 'undefined', 'NaN') },
    { weight: 1, arbitrary: fc.tuple(fc.oneof(edgeChar, asciiWord), fc.integer({ min: 64, max: Math.max(64, maxLong) })).map(([c, n]) => c.repeat(Math.ceil(n / c.length)).slice(0, n)) },
  );
}

// ---------------------------------------------------------------- rooms and permissions

/** Valid room names (docs/PROTOCOL.md#rooms), including ones at the length limit. */
export function validRoom(maxLength = 128): Arb<string> {
  const seg = fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,10}$/);
  return fc.oneof(
    { weight: 6, arbitrary: fc.array(seg, { minLength: 1, maxLength: 4 }).map((s) => s.join('/')).filter((r) => r.length <= maxLength) },
    { weight: 1, arbitrary: fc.constantFrom('fuzz/1', 'lobby', 'x', 'chat/42', 'a:b', '.', '..', '...', '@', '-', '_', 'a/..', '../a', ':', '1:b/x') },
    { weight: 1, arbitrary: fc.integer({ min: maxLength - 2, max: maxLength + 2 }).map((n) => ('ab/'.repeat(n).slice(0, n - 1) + 'z').replace(/\/$/, 'z')) },
  );
}

const SEGMENTS = ['a', 'lobby', 'chat', '42', 'x', '', '*', '**', '***', '#', '.', '..', ':', '@', '-', '_', 'a:b', 'chat#m', 'x#j', '\n', ' ', '%2F', '\\', '\u0000', '\uD800', '\u202E'];
const SEPARATORS = ['/', '/', '/', '//', ':', '*', '**', '#', '\n', '.', '..', '/./', '/../', '\u0000', '\\', ' ', '\r\n'];

/** Room-shaped strings with every separator, empty segments, leading/trailing separators. */
export const roomLike: Arb<string> = fc.oneof(
  { weight: 3, arbitrary: validRoom() },
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.array(fc.oneof(fc.constantFrom(...SEGMENTS), asciiWord), { minLength: 1, maxLength: 5 }), fc.array(fc.constantFrom(...SEPARATORS), { minLength: 5, maxLength: 5 }), fc.constantFrom('', '/', ':', '\n', '*'), fc.constantFrom('', '/', ':', '\n', '**'))
      .map(([segs, seps, lead, trail]) => lead + segs.map((s, i) => (i === 0 ? s : seps[i % seps.length]! + s)).join('') + trail),
  },
  { weight: 1, arbitrary: edgeString(300) },
);

const ACTIONS = ['join', 'publish', 'presence', '*'];
const ODD_ACTIONS = ['', 'JOIN', 'join ', ' join', 'joins', '**', 'publish\n', 'read', '\u0000join', 'jоin' /* Cyrillic o */];

/** Patterns of the permission grammar, valid and not. */
export const patternLike: Arb<string> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.array(fc.oneof({ weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,6}$/) }, { weight: 1, arbitrary: fc.constant('*') }), { minLength: 0, maxLength: 3 }), fc.boolean()).map(([segs, tail]) => [...segs, ...(tail || segs.length === 0 ? ['**'] : [])].join('/')) },
  { weight: 3, arbitrary: roomLike },
);

/** One permission entry: action ":" pattern, odd actions, and entries with embedded newlines. */
export const permissionLike: Arb<string> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...ACTIONS), patternLike).map(([a, p]) => `${a}:${p}`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...ODD_ACTIONS), patternLike).map(([a, p]) => `${a}:${p}`) },
  { weight: 2, arbitrary: fc.array(fc.tuple(fc.constantFrom(...ACTIONS), patternLike).map(([a, p]) => `${a}:${p}`), { minLength: 2, maxLength: 3 }).map((xs) => xs.join('\n')) },
  { weight: 1, arbitrary: fc.constantFrom('join:lobby\npublish:**', '*:**', '*:*', ':**', 'join:', 'join', '*', 'join:lobby\n', '\njoin:lobby', 'join:**/x', 'join:a/**/b', 'join:a//b', 'join:/a', 'join:a/') },
  { weight: 1, arbitrary: edgeString(200) },
);

/** Permission lists: empty, typical, edge entries, and very many entries. */
export const permissionList: Arb<string[]> = fc.oneof(
  { weight: 6, arbitrary: fc.array(permissionLike, { maxLength: 6 }) },
  { weight: 1, arbitrary: fc.tuple(permissionLike, fc.constantFrom(999, 1000, 1001, 5000)).map(([p, n]) => Array.from({ length: n }, (_, i) => (i === 0 ? p : `join:r${i}`))) },
);

// ---------------------------------------------------------------- nesting

/** Depths spread over every scale up to `max`: shallow, thousands, and at the limit. */
export function depth(max: number): Arb<number> {
  const m = Math.max(2, max);
  return fc.oneof(
    { weight: 2, arbitrary: fc.integer({ min: 1, max: Math.min(64, m) }) },
    { weight: 3, arbitrary: fc.integer({ min: Math.min(65, m), max: Math.min(5000, m) }) },
    { weight: 3, arbitrary: fc.integer({ min: Math.min(5000, m), max: m }) },
    { weight: 1, arbitrary: fc.constant(m) },
  );
}

export const deepShape: Arb<DeepShape> = fc.constantFrom('array', 'map', 'mixed');

// ---------------------------------------------------------------- MessagePack values

const INT_EDGES: ReadonlyArray<readonly [IntFmt, number | bigint]> = [
  ['pfix', 0], ['pfix', 127], ['nfix', -1], ['nfix', -32],
  ['u8', 0], ['u8', 1], ['u8', 255], ['u16', 0], ['u16', 65535], ['u32', 0], ['u32', 2 ** 32 - 1],
  ['u64', 0n], ['u64', 1n], ['u64', 2n ** 53n - 1n], ['u64', 2n ** 53n + 1n], ['u64', 2n ** 63n], ['u64', 2n ** 64n - 1n],
  ['i8', -128], ['i8', 127], ['i8', 0], ['i16', -32768], ['i16', 32767], ['i32', -(2 ** 31)], ['i32', 2 ** 31 - 1],
  ['i64', -(2n ** 63n)], ['i64', 2n ** 63n - 1n], ['i64', -1n], ['i64', 0n], ['i64', -(2n ** 53n) - 1n],
];
const INT_FMTS: readonly IntFmt[] = ['pfix', 'nfix', 'u8', 'u16', 'u32', 'u64', 'i8', 'i16', 'i32', 'i64'];

export const mpInt: Arb<Mp> = fc.oneof(
  fc.constantFrom(...INT_EDGES).map(([fmt, v]): Mp => ({ k: 'int', fmt, v })),
  fc.tuple(fc.constantFrom(...INT_FMTS), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n })).map(([fmt, v]): Mp => ({ k: 'int', fmt, v })),
  fc.integer({ min: -1000, max: 100_000 }).map(int),
);

const FLOAT_EDGES = [0, -0, NaN, Infinity, -Infinity, 1e308, 5e-324, 1.5, 2 ** 53, -(2 ** 53), 3.4028234663852886e38, 1.1754943508222875e-38];
export const mpFloat: Arb<Mp> = fc.tuple(fc.constantFrom<'f32' | 'f64'>('f32', 'f64'), fc.oneof(fc.constantFrom(...FLOAT_EDGES), fc.double())).map(([fmt, v]): Mp => ({ k: 'float', fmt, v }));

/** Bytes that are not UTF-8: overlong, surrogates, beyond U+10FFFF, truncated, stray continuations. */
export const INVALID_UTF8: readonly Uint8Array[] = [[0xff], [0xfe], [0xc0, 0x80], [0xc1, 0xbf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xbf], [0xe2, 0x82], [0xf0, 0x9f, 0x92], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe0, 0x80, 0xaf]].map((b) => Uint8Array.from(b));

const strBytes = (s: Arb<string>): Arb<Uint8Array> =>
  fc.oneof(
    { weight: 6, arbitrary: s.map(wtf8) },
    { weight: 1, arbitrary: s.map((x) => Uint8Array.from(Buffer.from(x, 'utf8'))) },
    { weight: 1, arbitrary: fc.tuple(s, fc.constantFrom(...INVALID_UTF8), s).map(([a, b, c]) => Uint8Array.from([...wtf8(a), ...b, ...wtf8(c)])) },
  );

/** A declared length: usually the true one; sometimes 0, longer than the data, or the format's maximum. */
const declaredLen = fc.oneof(
  { weight: 12, arbitrary: fc.constant<undefined | 'zero' | 'plus1' | 'minus1' | 'max' | 'huge'>(undefined) },
  { weight: 1, arbitrary: fc.constantFrom<'zero' | 'plus1' | 'minus1' | 'max' | 'huge'>('zero', 'plus1', 'minus1', 'max', 'huge') },
);

function applyDeclared(len: number, fmtMax: number, d: undefined | 'zero' | 'plus1' | 'minus1' | 'max' | 'huge'): number | undefined {
  switch (d) {
    case undefined: return undefined;
    case 'zero': return 0;
    case 'plus1': return Math.min(fmtMax, len + 1);
    case 'minus1': return Math.max(0, len - 1);
    case 'max': return fmtMax;
    case 'huge': return Math.min(fmtMax, len + 1_000_000);
  }
}

const LEN_MAX: Record<string, number> = { fix: 31, s8: 255, s16: 65535, s32: 2 ** 32 - 1, b8: 255, b16: 65535, b32: 2 ** 32 - 1, a16: 65535, a32: 2 ** 32 - 1, m16: 65535, m32: 2 ** 32 - 1, e8: 255, e16: 65535, e32: 2 ** 32 - 1 };

function fitStr(len: number, want: StrFmt): StrFmt {
  const order: StrFmt[] = ['fix', 's8', 's16', 's32'];
  for (let i = order.indexOf(want); i < order.length; i++) if (len <= LEN_MAX[order[i]!]!) return order[i]!;
  return 's32';
}

/** A msgpack str of `s`, in any format wide enough (non-minimal too), sometimes with invalid bytes or a lying length. */
export function mpStrOf(s: Arb<string>): Arb<Mp> {
  return fc.tuple(strBytes(s), fc.constantFrom<StrFmt>('fix', 'fix', 's8', 's16', 's32'), declaredLen).map(([bytes, want, d]): Mp => {
    const fmt = fitStr(bytes.length, want);
    const declared = applyDeclared(bytes.length, LEN_MAX[fmt]!, d);
    return declared === undefined ? { k: 'str', fmt, bytes } : { k: 'str', fmt, bytes, declared };
  });
}

export const mpBin: Arb<Mp> = fc.tuple(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 256, max: 70_000 }).map((n) => new Uint8Array(n))), fc.constantFrom<BinFmt>('b8', 'b16', 'b32'), declaredLen).map(([bytes, want, d]): Mp => {
  const order: BinFmt[] = ['b8', 'b16', 'b32'];
  let fmt = want;
  while (bytes.length > LEN_MAX[fmt]! && fmt !== 'b32') fmt = order[order.indexOf(fmt) + 1]!;
  const declared = applyDeclared(bytes.length, LEN_MAX[fmt]!, d);
  return declared === undefined ? { k: 'bin', fmt, bytes } : { k: 'bin', fmt, bytes, declared };
});

const mpLeaf: Arb<Mp> = fc.oneof(
  fc.constant<Mp>({ k: 'nil' }),
  fc.boolean().map((v): Mp => ({ k: 'bool', v })),
  mpInt,
  mpFloat,
  mpStrOf(edgeString(2000)),
  mpBin,
  fc.constantFrom(0xc1).map((b): Mp => ({ k: 'raw', bytes: Uint8Array.of(b) })), // the never-used byte
);

/** msgpackr's extension ids (and the standard timestamp, -1): decoded by msgpackr whatever the options. */
export const MSGPACKR_EXTENSIONS = {
  undefined: 0x00,
  bigint: 0x42,
  bundledStrings: 0x62,
  date: 0x64,
  error: 0x65,
  id: 0x69,
  map: 0x6d,
  pointer: 0x70,
  record: 0x72,
  set: 0x73,
  typedArray: 0x74,
  regexp: 0x78,
  timestamp: 0xff,
} as const;

const u32be = (n: number): Uint8Array => Uint8Array.of((n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
const FILLER = Uint8Array.of(0);

/**
 * Extension values: every msgpackr extension with a payload it decodes (BigInt of any length,
 * each typed array, 0x69/0x70 references including cycles, Set, Error, RegExp, records,
 * timestamps in their 3 lengths) and any type id -128..127 with any payload and format.
 */
export function mpExt(tree: Arb<Mp>): Arb<Mp> {
  const X = MSGPACKR_EXTENSIONS;
  const id = fc.integer({ min: 0, max: 3 });
  const anyData = fc.oneof(fc.constantFrom(0, 1, 2, 4, 8, 16).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })), fc.uint8Array({ maxLength: 300 }));
  const known: Arb<Mp> = fc.oneof(
    // BigInt: any length, including 8/9 and 16/17 boundaries; sign from the first byte
    fc.oneof(fc.constantFrom(1, 2, 7, 8, 9, 15, 16, 17, 24, 40, 41, 64, 200), fc.integer({ min: 1, max: 64 })).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })).map((d) => ext(X.bigint, d)),
    // typed arrays: type code 0..10 (Int8..BigUint64), 16 ArrayBuffer, 17 DataView, or unknown; 8-byte multiples fit every element size
    fc.tuple(fc.oneof(fc.integer({ min: 0, max: 17 }), fc.integer({ min: 0, max: 255 })), fc.integer({ min: 0, max: 6 }), fc.boolean()).chain(([code, words, odd]) => fc.uint8Array({ minLength: words * 8 + (odd ? 3 : 0), maxLength: words * 8 + (odd ? 3 : 0) }).map((d) => ext(X.typedArray, Uint8Array.from([code, ...d])))),
    // 0x69 (id) wrapping a value that points back at itself (0x70): a cycle; or a plain value; or a dangling pointer
    fc.tuple(id, fc.constantFrom('array', 'map', 'set', 'plain', 'nested'), tree).map(([n, shape, v]): Mp => {
      const ptr = ext(X.pointer, u32be(n));
      const target: Mp =
        shape === 'array' ? { k: 'arr', fmt: 'fix', items: [v, ptr] }
        : shape === 'map' ? { k: 'map', fmt: 'fix', entries: [[str('self'), ptr], [str('v'), v]] }
        : shape === 'set' ? ext(X.set, FILLER, { k: 'arr', fmt: 'fix', items: [ptr, v] })
        : shape === 'nested' ? ext(X.id, u32be(n + 1), { k: 'arr', fmt: 'fix', items: [ext(X.pointer, u32be(n)), ext(X.pointer, u32be(n + 1))] })
        : v;
      return ext(X.id, u32be(n), target);
    }),
    id.map((n) => ext(X.pointer, u32be(n))),
    fc.array(tree, { maxLength: 4 }).map((items) => ext(X.set, FILLER, { k: 'arr', fmt: 'fix', items })),
    fc.tuple(fc.constantFrom('Error', 'RangeError', 'AggregateError', 'Custom', '__proto__', 'constructor'), edgeString(200), tree).map(([name, msg, cause]) => ext(X.error, FILLER, { k: 'arr', fmt: 'fix', items: [str(name), str(msg), cause] })),
    fc.tuple(fc.constantFrom('(a+)+$', '^(a|aa)+$', '[', '.*', '\\', '(?<n>x)\\k<n>', 'a{1,99999}', ''), fc.constantFrom('', 'g', 'gimsuy', 'x', 'v', 'gg')).map(([p, f]) => ext(X.regexp, FILLER, { k: 'arr', fmt: 'fix', items: [str(p), str(f)] })),
    // record definition (d4 72 id | d5 72 id high): a key list, then the record's values
    fc.tuple(fc.integer({ min: 0, max: 63 }), fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }), fc.array(fc.oneof(fc.constantFrom('a', 'type', '__proto__', 'constructor'), edgeString(20)), { maxLength: 4 }), fc.array(tree, { maxLength: 4 })).map(([rid, high, keys, vals]): Mp => {
      const body: Mp = { k: 'raw', bytes: Uint8Array.from(Buffer.concat([encodeMp({ k: 'arr', fmt: 'fix', items: keys.map(str) }), ...vals.map(encodeMp)])) };
      return high === undefined ? { k: 'ext', fmt: 'fe1', type: X.record, data: Uint8Array.of(rid | 0x40), tail: body } : { k: 'ext', fmt: 'fe2', type: X.record, data: Uint8Array.of(rid | 0x40, high), tail: body };
    }),
    fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), tree).map(([d, t]) => ext(X.bundledStrings, d, t)),
    // timestamp: 32, 64 and 96-bit forms (valid), and invalid lengths
    fc.oneof(fc.constantFrom(4, 8, 12), fc.constantFrom(0, 1, 2, 16)).chain((n) => fc.oneof(fc.uint8Array({ minLength: n, maxLength: n }), fc.constant(new Uint8Array(n).fill(0xff)))).map((d) => ext(X.timestamp, d)),
    fc.constant(ext(X.undefined, FILLER)),
    fc.tuple(fc.constantFrom(X.map, X.date), anyData, tree).map(([t, d, v]) => ext(t, d, v)),
  );
  const anyType: Arb<Mp> = fc.tuple(fc.integer({ min: -128, max: 127 }), anyData).map(([t, d]) => ext(t, d));
  // the format disagreeing with the payload (fixext4 header over 2 bytes of data, ext8 with a lying length)
  const wrongFmt: Arb<Mp> = fc.tuple(fc.constantFrom<ExtFmt>('fe1', 'fe2', 'fe4', 'fe8', 'fe16', 'e8', 'e16', 'e32'), fc.integer({ min: -128, max: 127 }), anyData, declaredLen).map(([fmt, type, data, d]): Mp => {
    const declared = applyDeclared(data.length, LEN_MAX[fmt] ?? 0, d);
    return declared === undefined ? { k: 'ext', fmt, type: type & 0xff, data } : { k: 'ext', fmt, type: type & 0xff, data, declared };
  });
  return fc.oneof({ weight: 6, arbitrary: known }, { weight: 2, arbitrary: anyType }, { weight: 1, arbitrary: wrongFmt });
}

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'type', 'id', 'data', 'room'];

/** MessagePack values of every format family: containers in every width, maps with any keys and duplicates, extensions. */
export const mpTree: Arb<Mp> = fc.letrec<{ tree: Mp; key: Mp; container: Mp }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, { weight: 5, arbitrary: mpLeaf }, { weight: 3, arbitrary: tie('container') }, { weight: 2, arbitrary: mpExt(mpLeaf) }),
  key: fc.oneof({ weight: 5, arbitrary: mpStrOf(fc.oneof(fc.constantFrom(...PROTO_KEYS), edgeString(100))) }, { weight: 2, arbitrary: mpLeaf }, { weight: 1, arbitrary: tie('container') }, { weight: 1, arbitrary: mpExt(mpLeaf) }),
  container: fc.oneof(
    fc.tuple(fc.array(tie('tree'), { maxLength: 5 }), fc.constantFrom<ArrFmt>('fix', 'fix', 'a16', 'a32'), declaredLen).map(([items, fmt, d]): Mp => {
      const declared = applyDeclared(items.length, LEN_MAX[fmt]!, d);
      return declared === undefined ? { k: 'arr', fmt, items } : { k: 'arr', fmt, items, declared };
    }),
    fc.tuple(fc.array(fc.tuple(tie('key'), tie('tree')), { maxLength: 5 }), fc.constantFrom<MapFmt>('fix', 'fix', 'm16', 'm32'), declaredLen, fc.boolean()).map(([entries, fmt, d, dup]): Mp => {
      const es = dup && entries.length > 0 ? [...entries, [entries[0]![0], { k: 'nil' } as Mp] as const] : entries;
      const declared = applyDeclared(es.length, LEN_MAX[fmt]!, d);
      return declared === undefined ? { k: 'map', fmt, entries: es } : { k: 'map', fmt, entries: es, declared };
    }),
  ),
})).tree;

/** Deep nesting that fits in `maxBytes` (arrays, maps or both alternating) around a small leaf. */
export function mpDeep(maxBytes: number, leaf: Arb<Mp> = mpLeaf.filter((m) => m.k !== 'bin')): Arb<Mp> {
  return deepShape.chain((shape) => fc.tuple(depth(Math.floor((maxBytes - 300) / mpLevelBytes(shape))), leaf).map(([d, l]): Mp => ({ k: 'deep', shape, depth: d, leaf: l })));
}

// ---------------------------------------------------------------- JSON values

/** Number literals as written: -0, exponents, beyond double range, beyond 2^53, and a few that are not JSON. */
export const NUMBER_TEXTS: readonly string[] = ['0', '-0', '-0.0', '0e0', '1', '-1', '1.0', '1E+2', '1e-2', '1e308', '1.7976931348623157e308', '1e309', '-1e309', '4.9e-324', '1e-400', '123456789012345678901234567890', '9007199254740991', '9007199254740993', '-9007199254740993', '18446744073709551616', '0.1', '1.5e300'];
const NOT_JSON_NUMBERS = ['01', '+1', '.5', '1.', '-', 'NaN', 'Infinity', '0x10', '1e', '--1'];

export const jsNumber: Arb<Js> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NUMBER_TEXTS).map(lit) },
  { weight: 3, arbitrary: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })).map((n) => lit(JSON.stringify(n))) },
  { weight: 1, arbitrary: fc.constantFrom(...NOT_JSON_NUMBERS).map(lit) },
);

/** A JSON string of `s` in any escape style (raw style writes lone surrogates as invalid UTF-8). */
export function jsStrOf(s: Arb<string>): Arb<Js> {
  return fc.tuple(s, fc.constantFrom<StrStyle>('json', 'json', 'json', 'ascii', 'raw')).map(([x, style]) => jstr(x, style));
}

const jsLeaf: Arb<Js> = fc.oneof(
  fc.constantFrom('true', 'false', 'null').map(lit),
  jsNumber,
  jsStrOf(edgeString(2000)),
  // a string holding bytes that are not UTF-8 (the text frame itself is then invalid)
  { weight: 1, arbitrary: fc.constantFrom(...INVALID_UTF8).map((b): Js => ({ k: 'raw', bytes: Uint8Array.from([0x22, ...b, 0x22]) })) },
);

/** JSON values: duplicate keys, __proto__/constructor keys, escapes, number edges. */
export const jsTree: Arb<Js> = fc.letrec<{ tree: Js; container: Js }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, { weight: 5, arbitrary: jsLeaf }, { weight: 3, arbitrary: tie('container') }),
  container: fc.oneof(
    fc.array(tie('tree'), { maxLength: 5 }).map((items): Js => ({ k: 'arr', items })),
    fc.tuple(fc.array(fc.tuple(jsStrOf(fc.oneof(fc.constantFrom(...PROTO_KEYS), edgeString(60))), tie('tree')), { maxLength: 5 }), fc.boolean()).map(([entries, dup]): Js => ({ k: 'obj', entries: dup && entries.length > 0 ? [...entries, [entries[0]![0], lit('null')] as const] : entries })),
  ),
})).tree;

export function jsDeep(maxBytes: number, leaf: Arb<Js> = jsLeaf): Arb<Js> {
  return deepShape.chain((shape) => fc.tuple(depth(Math.floor((maxBytes - 300) / jsLevelBytes(shape))), leaf).map(([d, l]): Js => ({ k: 'deep', shape, depth: d, leaf: l })));
}

// ---------------------------------------------------------------- request frames

/** One encoding's building blocks, so that one request generator serves both. */
export interface Encoding<N> {
  readonly name: 'json' | 'msgpack';
  readonly binary: boolean;
  str(s: string): N;
  num(n: number): N;
  bool(b: boolean): N;
  arr(items: readonly N[]): N;
  map(entries: ReadonlyArray<readonly [N, N]>): N;
  /** strings in every representation the encoding has */
  strArb(s: Arb<string>): Arb<N>;
  /** arbitrary values (trees of every kind the encoding has) */
  readonly tree: Arb<N>;
  deep(maxBytes: number): Arb<N>;
  /** what only this encoding has: extension types, or number literals */
  readonly exotic: Arb<N>;
  encode(n: N): Buffer;
  /** true when `n` may swallow or expose the bytes after it (then the frame's id is unknowable) */
  lies(n: N): boolean;
}

export const MSGPACK: Encoding<Mp> = {
  name: 'msgpack',
  binary: true,
  str,
  num: (n) => (Number.isInteger(n) ? int(n) : { k: 'float', fmt: 'f64', v: n }),
  bool: (v) => ({ k: 'bool', v }),
  arr: (items) => ({ k: 'arr', fmt: items.length < 16 ? 'fix' : 'a16', items }),
  map: (entries) => ({ k: 'map', fmt: entries.length < 16 ? 'fix' : 'm16', entries }),
  strArb: mpStrOf,
  tree: mpTree,
  deep: (maxBytes) => mpDeep(maxBytes),
  exotic: mpExt(mpTree),
  encode: encodeMp,
  lies: mpLies,
};

export const JSON_TEXT: Encoding<Js> = {
  name: 'json',
  binary: false,
  str: (s) => jstr(s),
  num: (n) => lit(JSON.stringify(n)),
  bool: (b) => lit(String(b)),
  arr: (items) => ({ k: 'arr', items }),
  map: (entries) => ({ k: 'obj', entries }),
  strArb: jsStrOf,
  tree: jsTree,
  deep: (maxBytes) => jsDeep(maxBytes),
  exotic: jsNumber,
  encode: encodeJs,
  lies: () => false,
};

export const REQUEST_TYPES = ['publish', 'join', 'leave', 'presence', 'ping', 'token:refresh'] as const;
const FIELDS = ['id', 'type', 'room', 'rooms', 'data', 'echo', 'token'] as const;
type Field = (typeof FIELDS)[number];

/** A request frame and what the oracle may expect of its reply. */
export interface RequestFrame {
  readonly encoding: 'json' | 'msgpack';
  readonly bytes: Buffer;
  readonly binary: boolean;
  /** the id the reply's ref must carry, or null (no usable id); undefined: ref may be null or this id */
  readonly id: number | string | undefined;
  /** where the payload went: "data", "room", "key", "frame", ... */
  readonly target: string;
}

export interface RequestOptions {
  /** what goes into the targeted slot */
  readonly payload: Arb<unknown>;
  /** weight of `data` (of a publish) among the slots; the other fields share 1 each */
  readonly dataWeight?: number;
  /** the room valid requests name (granted by the fuzz tokens) */
  readonly room?: string;
}

/**
 * Request frames of one encoding: a well-formed envelope of a random type whose `data` (mostly)
 * or another field, a map key, or the whole frame is the payload; sometimes with a duplicated
 * field, a __proto__/constructor entry, or a field left out.
 */
export function requestFrame<N>(enc: Encoding<N>, opts: RequestOptions): Arb<RequestFrame> {
  const payload = opts.payload as Arb<N>;
  const room = opts.room ?? 'fuzz/1';
  const dataWeight = opts.dataWeight ?? 6;
  const target = fc.oneof(
    { weight: dataWeight, arbitrary: fc.constant('data') },
    { weight: 1, arbitrary: fc.constantFrom<string>('id', 'type', 'room', 'rooms', 'echo', 'token', 'key', 'extra', 'frame', 'rooms[]') },
  );
  const idArb = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 2 ** 31 }) }, { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9-]{1,64}$/) });
  const mutation = fc.constantFrom<'none' | 'dup-before' | 'dup-after' | 'proto' | 'drop'>('none', 'none', 'none', 'none', 'none', 'dup-before', 'dup-after', 'proto', 'drop');
  return fc
    .record({
      type: fc.constantFrom('publish', 'publish', 'publish', 'publish', 'join', 'leave', 'presence', 'ping', 'token:refresh'),
      id: idArb,
      target,
      payload,
      echo: fc.boolean(),
      mutation,
      dropField: fc.constantFrom<Field>(...FIELDS),
    })
    .map(({ type, id, target, payload: p, echo, mutation: mut, dropField }): RequestFrame => {
      const t = target === 'data' && type !== 'publish' ? 'data' : target;
      const fields: Array<[Field | string, N]> = [['id', typeof id === 'number' ? enc.num(id) : enc.str(id)], ['type', enc.str(type)]];
      if (type === 'join' || type === 'leave') fields.push(['rooms', enc.arr([enc.str(room)])]);
      if (type === 'publish' || type === 'presence') fields.push(['room', enc.str(room)]);
      if (type === 'publish') fields.push(['data', enc.map([[enc.str('n'), enc.num(1)]])], ['echo', enc.bool(echo)]);
      if (type === 'token:refresh') fields.push(['token', enc.str('x.y.z')]);
      let keyNode: N | undefined;
      if (t === 'frame') return { encoding: enc.name, bytes: enc.encode(p), binary: enc.binary, id: undefined, target: t };
      if (t === 'key') keyNode = p;
      else if (t === 'rooms[]') {
        const i = fields.findIndex(([k]) => k === 'rooms');
        fields.splice(i < 0 ? fields.length : i, i < 0 ? 0 : 1, ['rooms', enc.arr([enc.str(room), p])]);
      } else if (t === 'extra') fields.push([`x${Math.abs(Number(id)) % 7}`, p]);
      else {
        const i = fields.findIndex(([k]) => k === t);
        if (i >= 0) fields[i] = [t, p];
        else fields.push([t, p]);
      }
      // a payload as the id, or as a key (which may decode as "id"), makes the reply's ref unknowable
      let idKnown = t !== 'id' && t !== 'key' && !enc.lies(p);
      if (mut === 'drop' && dropField !== t) {
        const j = fields.findIndex(([f]) => f === dropField);
        if (j >= 0) fields.splice(j, 1);
        if (dropField === 'id') idKnown = false;
      }
      const entries: Array<readonly [N, N]> = fields.map(([k, v]) => [enc.str(k), v] as const);
      if (keyNode !== undefined) entries.push([keyNode, enc.num(1)]);
      if (mut === 'dup-before' || mut === 'dup-after') {
        // the same key twice: the gateway must act on one of the two values consistently
        const [k] = fields[Math.abs(Number(id) || 0) % fields.length] ?? ['id'];
        if (k === 'id') idKnown = false;
        const e = [enc.str(k), p] as const;
        if (mut === 'dup-before') entries.unshift(e);
        else entries.push(e);
      } else if (mut === 'proto') entries.push([enc.str(Number(id) % 2 === 0 ? '__proto__' : 'constructor'), enc.map([[enc.str('type'), enc.str('ping')], [enc.str('id'), enc.num(0)]])]);
      return { encoding: enc.name, bytes: enc.encode(enc.map(entries)), binary: enc.binary, id: idKnown ? id : undefined, target: t };
    });
}

// ---------------------------------------------------------------- claims and transports

export const now = (): number => Math.floor(Date.now() / 1000);

const nonString = fc.oneof(fc.integer(), fc.double(), fc.constant(null), fc.boolean(), fc.array(fc.string(), { maxLength: 2 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }));

/** A claim that should be an identifier: edge strings, very long, or not a string at all. */
export const identifierClaim: Arb<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9_-]{1,16}$/) },
  { weight: 4, arbitrary: edgeString(12_000) },
  { weight: 1, arbitrary: nonString },
);

/** exp/iat/nbf edge values (seconds): far future, 1e308, fractional, negative, in the past. */
export function timeClaim(base: number): Arb<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(base + 3600) },
    { weight: 3, arbitrary: fc.constantFrom(1e308, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, base + 0.5, base + 3600.999, base + 1e9, 253402300800, -1, 0, base - 10, base + 61, 1.5, -1e308, 5e-324) },
    { weight: 1, arbitrary: fc.oneof(fc.constant('9999999999'), fc.constant(null), fc.constant([base + 3600]), fc.constant({ $gt: 0 })) },
  );
}

/** Claim sets whose every field may be an edge case (sign them with the gateway's secret). */
export function edgeClaims(base = now()): Arb<Record<string, unknown>> {
  return fc
    .record(
      {
        sub: identifierClaim,
        tenant_id: identifierClaim,
        jti: identifierClaim,
        exp: timeClaim(base),
        iat: fc.oneof(fc.constant(undefined), fc.constantFrom(base, base + 1e6, -1, 1e308, base + 0.5)),
        nbf: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(base - 10, base + 3600, 1e308, -1e308) }),
        permissions: fc.oneof({ weight: 6, arbitrary: permissionList }, { weight: 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: nonString }, { weight: 1, arbitrary: fc.array(nonString, { minLength: 1, maxLength: 3 }) }),
        extra: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'tenantId', 'tenant', 'user') }),
      },
      { requiredKeys: ['sub', 'tenant_id', 'jti', 'exp'] },
    )
    .map((r) => {
      const c: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(r)) if (v !== undefined && k !== 'extra') c[k] = v;
      if (typeof r.extra === 'string') Object.defineProperty(c, r.extra, { value: { tenant_id: 'other', sub: 'root' }, enumerable: true, configurable: true, writable: true });
      return c;
    });
}

/** Where the token goes; several at once, agreeing or not. Tokens are indexes into a list of 1..3. */
export interface Transport {
  readonly header?: number;
  readonly bearerEntries: readonly number[];
  readonly query?: number;
  readonly cookie?: number;
  readonly protocol: 'wsgate.v1.json' | 'wsgate.v1.msgpack' | undefined;
}

export const transport: Arb<Transport> = fc
  .record({
    header: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
    bearerEntries: fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 3 }),
    query: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
    cookie: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
    protocol: fc.constantFrom<'wsgate.v1.json' | 'wsgate.v1.msgpack' | undefined>('wsgate.v1.json', 'wsgate.v1.msgpack', undefined),
  })
  .map((t) => {
    const out: { -readonly [K in keyof Transport]: Transport[K] } = { bearerEntries: t.bearerEntries, protocol: t.protocol };
    if (t.header !== undefined) out.header = t.header;
    if (t.query !== undefined) out.query = t.query;
    if (t.cookie !== undefined) out.cookie = t.cookie;
    return out;
  });

// ---------------------------------------------------------------- collision pairs

/** Two tenants that differ only in edge ways, and the room each joins. */
export interface TenantPair {
  readonly tenants: readonly [string, string];
  readonly rooms: readonly [string, string];
  readonly trick: string;
}

const highSurrogate = fc.integer({ min: 0xd800, max: 0xdbff }).map((c) => String.fromCharCode(c));
const lowSurrogate = fc.integer({ min: 0xdc00, max: 0xdfff }).map((c) => String.fromCharCode(c));

/**
 * Tenant pairs whose names may collide after a lossy step: lone surrogates (both become U+FFFD
 * in UTF-8), a lone surrogate against U+FFFD itself, NUL, normalization, case, BOM, and
 * length-prefix tricks (tenant "a" + room "1:b/x" against tenant "a/1:b" + room "x").
 */
export const tenantPair: Arb<TenantPair> = fc.oneof(
  fc.tuple(fc.oneof(highSurrogate, lowSurrogate), fc.oneof(highSurrogate, lowSurrogate), asciiWord, validRoom()).filter(([a, b]) => a !== b).map(([a, b, w, r]) => ({ tenants: [w + a, w + b] as const, rooms: [r, r] as const, trick: 'lone-surrogates' })),
  fc.tuple(fc.oneof(highSurrogate, lowSurrogate), asciiWord, validRoom()).map(([a, w, r]) => ({ tenants: [a + w, '\uFFFD' + w] as const, rooms: [r, r] as const, trick: 'surrogate-vs-fffd' })),
  fc.tuple(asciiWord, validRoom()).map(([w, r]) => ({ tenants: [w, w + '\u0000'] as const, rooms: [r, r] as const, trick: 'nul' })),
  fc.tuple(asciiWord, asciiWord, validRoom()).map(([a, b, r]) => ({ tenants: [a, `${a}/${b.length}:${b}`] as const, rooms: [`${b.length}:${b}/${r}`, r] as const, trick: 'length-prefix' })),
  fc.tuple(asciiWord, asciiWord, validRoom()).map(([a, b, r]) => ({ tenants: [`${a.length + 1 + b.length}:${a}`, a] as const, rooms: [r, `${b}/${r}`] as const, trick: 'length-prefix-2' })),
  fc.tuple(fc.constantFrom<[string, string]>(['\u00E9', 'e\u0301'], ['Acme', 'acme'], ['acme', '\uFEFFacme'], ['acme', 'acme '], ['\u212A', 'K'], ['a#m', 'a'], ['a/b', 'a'], ['a', 'a\n']), validRoom()).map(([[a, b], r]) => ({ tenants: [a, b] as const, rooms: [r, r] as const, trick: 'lookalike' })),
);

/** A permission list that must not inherit another list's grants, and the list that connects first. */
export interface PermissionPair {
  /** the victim's permissions (what it must be held to) */
  readonly victim: readonly string[];
  /** connected first, if any (e.g. the entries the victim's single entry joins with "\n") */
  readonly primer: readonly string[] | undefined;
  /** requests to try: each must be allowed exactly when the victim's permissions allow it */
  readonly probes: ReadonlyArray<readonly ['join' | 'publish' | 'presence', string]>;
}

const simplePerm = fc.tuple(fc.constantFrom(...ACTIONS), fc.oneof(fc.constantFrom('**', 'lobby', 'x', 'chat/*', 'a/**'), validRoom())).map(([a, p]) => `${a}:${p}`);

export const permissionPair: Arb<PermissionPair> = fc
  .tuple(
    fc.oneof(
      { weight: 1, arbitrary: fc.constant(['join:lobby', 'publish:**']) },
      { weight: 4, arbitrary: fc.array(simplePerm, { minLength: 2, maxLength: 4 }) },
    ),
    fc.constantFrom('joined-first', 'joined-first', 'split-first', 'alone', 'random'),
    permissionList,
    fc.array(fc.tuple(fc.constantFrom<'join' | 'publish' | 'presence'>('join', 'publish', 'presence'), fc.oneof(fc.constantFrom('x', 'lobby', 'chat/1', 'a/b', 'fuzz/1'), validRoom(), roomLike)), { minLength: 1, maxLength: 5 }),
  )
  .map(([entries, order, random, probes]) => {
    const joined = [entries.join('\n')];
    if (order === 'joined-first') return { victim: joined, primer: entries, probes };
    if (order === 'split-first') return { victim: entries, primer: joined, probes };
    if (order === 'alone') return { victim: joined, primer: undefined, probes };
    return { victim: random, primer: undefined, probes };
  });
