// A byte-level MessagePack writer for the fuzzer. Unlike msgpackr it writes what it is told:
// any format family for any value (non-minimal integers, str32 for "a"), length fields that
// disagree with the data, every extension type with any payload, maps with any keys. Pure.
//
// Deep nesting is a node of its own ('deep') written by a loop, so that neither this writer nor
// a generator recurses once per level (the gateway must survive depths that would overflow us).

export type IntFmt = 'pfix' | 'nfix' | 'u8' | 'u16' | 'u32' | 'u64' | 'i8' | 'i16' | 'i32' | 'i64';
export type StrFmt = 'fix' | 's8' | 's16' | 's32';
export type BinFmt = 'b8' | 'b16' | 'b32';
export type ArrFmt = 'fix' | 'a16' | 'a32';
export type MapFmt = 'fix' | 'm16' | 'm32';
export type ExtFmt = 'fe1' | 'fe2' | 'fe4' | 'fe8' | 'fe16' | 'e8' | 'e16' | 'e32';
export type DeepShape = 'array' | 'map' | 'mixed';

/** A MessagePack item as written on the wire. `declared` overrides the length field only. */
export type Mp =
  | { readonly k: 'nil' }
  | { readonly k: 'bool'; readonly v: boolean }
  | { readonly k: 'int'; readonly fmt: IntFmt; readonly v: number | bigint }
  | { readonly k: 'float'; readonly fmt: 'f32' | 'f64'; readonly v: number }
  | { readonly k: 'str'; readonly fmt: StrFmt; readonly bytes: Uint8Array; readonly declared?: number }
  | { readonly k: 'bin'; readonly fmt: BinFmt; readonly bytes: Uint8Array; readonly declared?: number }
  | { readonly k: 'arr'; readonly fmt: ArrFmt; readonly items: readonly Mp[]; readonly declared?: number }
  | { readonly k: 'map'; readonly fmt: MapFmt; readonly entries: ReadonlyArray<readonly [Mp, Mp]>; readonly declared?: number }
  /** ext header + data, then `tail` (msgpackr's Set, Error, RegExp, 0x69 and record extensions read the value after it) */
  | { readonly k: 'ext'; readonly fmt: ExtFmt; readonly type: number; readonly data: Uint8Array; readonly declared?: number; readonly tail?: Mp }
  /** `depth` single-child containers around `leaf`, written by a loop */
  | { readonly k: 'deep'; readonly shape: DeepShape; readonly depth: number; readonly leaf: Mp }
  | { readonly k: 'raw'; readonly bytes: Uint8Array };

class Writer {
  buf = new Uint8Array(256);
  n = 0;
  private view = new DataView(this.buf.buffer);
  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
    this.view = new DataView(b.buffer);
  }
  u8(x: number): void {
    this.room(1);
    this.buf[this.n++] = x & 0xff;
  }
  u16(x: number): void {
    this.room(2);
    this.view.setUint16(this.n, x & 0xffff);
    this.n += 2;
  }
  u32(x: number): void {
    this.room(4);
    this.view.setUint32(this.n, x >>> 0);
    this.n += 4;
  }
  u64(x: bigint): void {
    this.room(8);
    this.view.setBigUint64(this.n, BigInt.asUintN(64, x));
    this.n += 8;
  }
  f32(x: number): void {
    this.room(4);
    this.view.setFloat32(this.n, x);
    this.n += 4;
  }
  f64(x: number): void {
    this.room(8);
    this.view.setFloat64(this.n, x);
    this.n += 8;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }
  /** The same byte `count` times (deep nesting). */
  fill(x: number, count: number): void {
    this.room(count);
    this.buf.fill(x, this.n, this.n + count);
    this.n += count;
  }
}

const big = (v: number | bigint): bigint => (typeof v === 'bigint' ? v : BigInt(Math.trunc(v)));

function writeLen(w: Writer, fixBase: number, fmt: string, len: number, codes: readonly [number, number, number]): void {
  // codes: 8-bit, 16-bit, 32-bit variants (0 = family has none)
  switch (fmt) {
    case 'fix':
      return w.u8(fixBase | (len & (fixBase === 0xa0 ? 0x1f : 0x0f)));
    case 's8': case 'b8': case 'e8':
      w.u8(codes[0]);
      return w.u8(len);
    case 's16': case 'b16': case 'a16': case 'm16': case 'e16':
      w.u8(codes[1]);
      return w.u16(len);
    default:
      w.u8(codes[2]);
      return w.u32(len);
  }
}

function write(w: Writer, m: Mp): void {
  switch (m.k) {
    case 'nil':
      return w.u8(0xc0);
    case 'bool':
      return w.u8(m.v ? 0xc3 : 0xc2);
    case 'int': {
      const v = m.v;
      switch (m.fmt) {
        case 'pfix': return w.u8(Number(big(v) & 0x7fn));
        case 'nfix': return w.u8(0xe0 | Number(big(v) & 0x1fn));
        case 'u8': w.u8(0xcc); return w.u8(Number(BigInt.asUintN(8, big(v))));
        case 'u16': w.u8(0xcd); return w.u16(Number(BigInt.asUintN(16, big(v))));
        case 'u32': w.u8(0xce); return w.u32(Number(BigInt.asUintN(32, big(v))));
        case 'u64': w.u8(0xcf); return w.u64(big(v));
        case 'i8': w.u8(0xd0); return w.u8(Number(BigInt.asUintN(8, big(v))));
        case 'i16': w.u8(0xd1); return w.u16(Number(BigInt.asUintN(16, big(v))));
        case 'i32': w.u8(0xd2); return w.u32(Number(BigInt.asUintN(32, big(v))));
        case 'i64': w.u8(0xd3); return w.u64(big(v));
      }
      return;
    }
    case 'float':
      if (m.fmt === 'f32') {
        w.u8(0xca);
        return w.f32(m.v);
      }
      w.u8(0xcb);
      return w.f64(m.v);
    case 'str':
      writeLen(w, 0xa0, m.fmt, m.declared ?? m.bytes.length, [0xd9, 0xda, 0xdb]);
      return w.bytes(m.bytes);
    case 'bin':
      writeLen(w, 0, m.fmt, m.declared ?? m.bytes.length, [0xc4, 0xc5, 0xc6]);
      return w.bytes(m.bytes);
    case 'arr':
      writeLen(w, 0x90, m.fmt, m.declared ?? m.items.length, [0, 0xdc, 0xdd]);
      for (const it of m.items) write(w, it);
      return;
    case 'map':
      writeLen(w, 0x80, m.fmt, m.declared ?? m.entries.length, [0, 0xde, 0xdf]);
      for (const [k, v] of m.entries) {
        write(w, k);
        write(w, v);
      }
      return;
    case 'ext': {
      const fixed: Record<string, number> = { fe1: 0xd4, fe2: 0xd5, fe4: 0xd6, fe8: 0xd7, fe16: 0xd8 };
      const code = fixed[m.fmt];
      if (code !== undefined) {
        w.u8(code);
        w.u8(m.type);
      } else {
        writeLen(w, 0, m.fmt, m.declared ?? m.data.length, [0xc7, 0xc8, 0xc9]);
        w.u8(m.type);
      }
      w.bytes(m.data);
      if (m.tail) write(w, m.tail);
      return;
    }
    case 'deep':
      return writeDeep(w, m.shape, m.depth, () => write(w, m.leaf));
    case 'raw':
      return w.bytes(m.bytes);
  }
}

// One level of each shape: fixarray of 1; fixmap of 1 with key "a"; mixed alternates them.
const MAP_LEVEL = Uint8Array.of(0x81, 0xa1, 0x61);

function writeDeep(w: Writer, shape: DeepShape, depth: number, leaf: () => void): void {
  if (shape === 'array') w.fill(0x91, depth);
  else {
    for (let i = 0; i < depth; i++) {
      if (shape === 'map' || i % 2 === 1) w.bytes(MAP_LEVEL);
      else w.u8(0x91);
    }
  }
  leaf();
}

/** Bytes of one MessagePack item. */
export function encodeMp(m: Mp): Buffer {
  const w = new Writer();
  write(w, m);
  return Buffer.from(w.buf.buffer, 0, w.n);
}

/** Bytes one level of a deep node takes (to fit a depth to the frame limit). */
export function mpLevelBytes(shape: DeepShape): number {
  return shape === 'array' ? 1 : shape === 'map' ? 3 : 2;
}

// msgpackr extensions that read past their own data (the next value, or a record's values) or
// move the read position (bundled strings)
const READS_ON = new Set([0x62, 0x65, 0x69, 0x72, 0x73, 0x78]);
const FIXED_SIZE: Record<string, number> = { fe1: 1, fe2: 2, fe4: 4, fe8: 8, fe16: 16 };

/**
 * True when the bytes may not read back as the items written: a length field that disagrees
 * with the data, raw bytes, or an extension that reads beyond itself. What follows such an item
 * (say, the next key of a request) may be read as something else.
 */
export function mpLies(m: Mp): boolean {
  switch (m.k) {
    case 'str': case 'bin': return m.declared !== undefined;
    case 'arr': return m.declared !== undefined || m.items.some(mpLies);
    case 'map': return m.declared !== undefined || m.entries.some(([k, v]) => mpLies(k) || mpLies(v));
    case 'ext': return m.declared !== undefined || READS_ON.has(m.type) || (FIXED_SIZE[m.fmt] !== undefined && FIXED_SIZE[m.fmt] !== m.data.length) || (m.tail !== undefined && mpLies(m.tail));
    case 'deep': return mpLies(m.leaf);
    case 'raw': return true;
    default: return false;
  }
}

// ---- small constructors (minimal encodings), used by the generators and the focused tests

export const nil: Mp = { k: 'nil' };

/** UTF-8 bytes of a string, lone surrogates written as their 3-byte (WTF-8) form, not U+FFFD. */
export function wtf8(s: string): Uint8Array {
  if (!/[\uD800-\uDFFF]/.test(s)) return Buffer.from(s, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

export function strFmtFor(len: number): StrFmt {
  return len < 32 ? 'fix' : len < 256 ? 's8' : len < 65536 ? 's16' : 's32';
}

export function str(s: string): Mp {
  const bytes = wtf8(s);
  return { k: 'str', fmt: strFmtFor(bytes.length), bytes };
}

export function int(v: number): Mp {
  if (v >= 0 && v < 128) return { k: 'int', fmt: 'pfix', v };
  if (v < 0 && v >= -32) return { k: 'int', fmt: 'nfix', v };
  if (v >= 0) return { k: 'int', fmt: v < 256 ? 'u8' : v < 65536 ? 'u16' : v < 2 ** 32 ? 'u32' : 'u64', v };
  return { k: 'int', fmt: v >= -128 ? 'i8' : v >= -32768 ? 'i16' : v >= -(2 ** 31) ? 'i32' : 'i64', v };
}

export function arr(items: readonly Mp[]): Mp {
  return { k: 'arr', fmt: items.length < 16 ? 'fix' : items.length < 65536 ? 'a16' : 'a32', items };
}

export function map(entries: ReadonlyArray<readonly [Mp, Mp]>): Mp {
  return { k: 'map', fmt: entries.length < 16 ? 'fix' : entries.length < 65536 ? 'm16' : 'm32', entries };
}

/** A map with string keys, in order (duplicates allowed: pass the same key twice). */
export function obj(entries: ReadonlyArray<readonly [string, Mp]>): Mp {
  return map(entries.map(([k, v]) => [str(k), v] as const));
}

export function ext(type: number, data: Uint8Array, tail?: Mp): Mp {
  const fixed: Record<number, ExtFmt> = { 1: 'fe1', 2: 'fe2', 4: 'fe4', 8: 'fe8', 16: 'fe16' };
  const fmt = fixed[data.length] ?? (data.length < 256 ? 'e8' : data.length < 65536 ? 'e16' : 'e32');
  return tail === undefined ? { k: 'ext', fmt, type: type & 0xff, data } : { k: 'ext', fmt, type: type & 0xff, data, tail };
}

export function hex(b: Uint8Array | string, max = 96): string {
  const buf = typeof b === 'string' ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const h = buf.subarray(0, max).toString('hex').replace(/(..)(?!$)/g, '$1 ');
  return buf.length > max ? `${h} … (${buf.length} bytes)` : h;
}
