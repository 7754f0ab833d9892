// Plain MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md) for the client SDK:
// the subset the protocol uses (docs/PROTOCOL.md: maps with string keys, no extension types
// except the standard timestamp), with no dependency.
//
// Why our own codec and not a library: measured with `node dist/scripts/build-client.js --measure`
// (esbuild, minified, gzip -9; the figures are in docs/CLIENT.md), the whole client with this codec
// weighs about as much as @msgpack/msgpack alone, and a third of the client with msgpackr's browser
// build. Both libraries are tested against it (test/client/msgpack.test.ts), in both directions.
//
// Encoding follows the server's msgpackr settings (useRecords: false, encodeUndefinedAsNil):
// integers take the smallest int form up to 32 bits and float64 beyond (as msgpackr does), bigint
// takes int64/uint64, Uint8Array/ArrayBuffer bin, Date the timestamp extension. Object properties
// whose value is undefined, a function or a symbol are left out, as JSON.stringify leaves them out,
// so both encodings carry the same data. Decoding gives plain objects, arrays, numbers (64-bit
// integers as numbers, like the server's int64AsType: 'number'), Uint8Array for bin, Date for
// timestamps, and { type, data } for any other extension.

/** An extension value other than the timestamp, as decoded. */
export interface MsgpackExt {
  readonly type: number;
  readonly data: Uint8Array;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

class Writer {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  /** A type byte followed by a big-endian unsigned integer of `bytes` (1, 2 or 4) bytes. */
  head(type: number, bytes: number, v: number): void {
    this.ensure(1 + bytes);
    this.buf[this.pos++] = type;
    if (bytes === 1) this.buf[this.pos] = v;
    else if (bytes === 2) this.view.setUint16(this.pos, v);
    else this.view.setUint32(this.pos, v);
    this.pos += bytes;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

// One writer, reused: encode() returns a copy of the bytes written (sockets may keep what they send).
const w = new Writer();

/** Encodes a value as plain MessagePack. Throws on a value it cannot encode (e.g. a bigint beyond 64 bits). */
export function encode(value: unknown): Uint8Array {
  w.pos = 0;
  write(value);
  return w.buf.slice(0, w.pos);
}

function write(v: unknown): void {
  switch (typeof v) {
    case 'string':
      return writeString(v);
    case 'number':
      return writeNumber(v);
    case 'boolean':
      return w.u8(v ? 0xc3 : 0xc2);
    case 'bigint':
      return writeBigInt(v);
    case 'object':
      if (v === null) return w.u8(0xc0);
      if (Array.isArray(v)) {
        writeLength(v.length, 0x90, 0xdc);
        for (const x of v) write(x);
        return;
      }
      if (v instanceof Uint8Array) return writeBin(v);
      if (v instanceof ArrayBuffer) return writeBin(new Uint8Array(v));
      if (ArrayBuffer.isView(v)) return writeBin(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      if (v instanceof Date) return writeDate(v);
      if (v instanceof Map) {
        writeLength(v.size, 0x80, 0xde);
        for (const [k, x] of v) {
          write(k);
          write(x);
        }
        return;
      }
      return writeObject(v as Record<string, unknown>);
    default:
      // undefined, functions and symbols: nil, as the server's encoder writes undefined.
      return w.u8(0xc0);
  }
}

const skipped = (x: unknown): boolean => x === undefined || typeof x === 'function' || typeof x === 'symbol';

function writeObject(o: Record<string, unknown>): void {
  const keys = Object.keys(o).filter((k) => !skipped(o[k]));
  writeLength(keys.length, 0x80, 0xde);
  for (const k of keys) {
    writeString(k);
    write(o[k]);
  }
}

/** fix form (< 16 entries) or 16/32-bit lengths for arrays (0x90, 0xdc) and maps (0x80, 0xde). */
function writeLength(n: number, fix: number, type16: number): void {
  if (n < 16) w.u8(fix | n);
  else if (n < 0x10000) w.head(type16, 2, n);
  else w.head(type16 + 1, 4, n);
}

function writeNumber(n: number): void {
  if (Number.isInteger(n) && !Object.is(n, -0)) {
    if (n >= 0) {
      if (n < 0x80) return w.u8(n);
      if (n < 0x100) return w.head(0xcc, 1, n);
      if (n < 0x10000) return w.head(0xcd, 2, n);
      if (n < 0x100000000) return w.head(0xce, 4, n);
    } else {
      if (n >= -0x20) return w.u8(n & 0xff);
      if (n >= -0x80) return w.head(0xd0, 1, n & 0xff);
      if (n >= -0x8000) return w.head(0xd1, 2, n & 0xffff);
      if (n >= -0x80000000) return w.head(0xd2, 4, n >>> 0);
    }
  }
  // Beyond 32 bits (exact up to 2^53) and non-integers: float64, as msgpackr writes them.
  w.ensure(9);
  w.buf[w.pos] = 0xcb;
  w.view.setFloat64(w.pos + 1, n);
  w.pos += 9;
}

function writeBigInt(n: bigint): void {
  w.ensure(9);
  if (n >= BigInt(0)) {
    if (n >= BigInt(2) ** BigInt(64)) throw new RangeError('bigint out of the 64-bit range');
    w.buf[w.pos] = 0xcf;
    w.view.setBigUint64(w.pos + 1, n);
  } else {
    if (n < -(BigInt(2) ** BigInt(63))) throw new RangeError('bigint out of the 64-bit range');
    w.buf[w.pos] = 0xd3;
    w.view.setBigInt64(w.pos + 1, n);
  }
  w.pos += 9;
}

function writeString(s: string): void {
  // Short strings (keys, types, room names) are written in place; a header of the largest size
  // the string could need is reserved first (3 bytes per UTF-16 unit at most).
  const max = s.length * 3;
  if (max < 0x100) {
    const start = w.pos;
    w.ensure(2 + max);
    w.pos += max < 32 ? 1 : 2;
    const n = max === 0 ? 0 : textEncoder.encodeInto(s, w.buf.subarray(w.pos, w.pos + max)).written;
    if (max < 32) w.buf[start] = 0xa0 | n;
    else if (n < 32) {
      // reserved two header bytes but one is enough: shift the bytes down by one
      w.buf[start] = 0xa0 | n;
      w.buf.copyWithin(start + 1, start + 2, start + 2 + n);
      w.pos--;
    } else {
      w.buf[start] = 0xd9;
      w.buf[start + 1] = n;
    }
    w.pos += n;
    return;
  }
  const b = textEncoder.encode(s);
  if (b.length < 32) w.u8(0xa0 | b.length);
  else if (b.length < 0x100) w.head(0xd9, 1, b.length);
  else if (b.length < 0x10000) w.head(0xda, 2, b.length);
  else w.head(0xdb, 4, b.length);
  w.bytes(b);
}

function writeBin(b: Uint8Array): void {
  if (b.length < 0x100) w.head(0xc4, 1, b.length);
  else if (b.length < 0x10000) w.head(0xc5, 2, b.length);
  else w.head(0xc6, 4, b.length);
  w.bytes(b);
}

/** The timestamp extension (type -1): 32-bit seconds, 64-bit (30-bit ns + 34-bit s), or 96-bit. */
function writeDate(d: Date): void {
  const ms = d.getTime();
  const sec = Math.floor(ms / 1000);
  const nsec = (ms - sec * 1000) * 1e6;
  if (nsec === 0 && sec >= 0 && sec < 0x100000000) {
    w.head(0xd6, 1, 0xff);
    w.ensure(4);
    w.view.setUint32(w.pos, sec);
    w.pos += 4;
  } else if (sec >= 0 && sec < 0x400000000) {
    w.head(0xd7, 1, 0xff);
    w.ensure(8);
    w.view.setUint32(w.pos, nsec * 4 + Math.floor(sec / 0x100000000));
    w.view.setUint32(w.pos + 4, sec >>> 0);
    w.pos += 8;
  } else {
    w.head(0xc7, 1, 12);
    w.u8(0xff);
    w.ensure(12);
    w.view.setUint32(w.pos, nsec);
    w.view.setBigInt64(w.pos + 4, BigInt(sec));
    w.pos += 12;
  }
}

// ---- decoding

interface Reader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos: number;
}

/** Decodes one MessagePack value that fills `bytes` exactly; throws on malformed or trailing input. */
export function decode(bytes: Uint8Array | ArrayBuffer): unknown {
  // A plain Uint8Array view (a Node Buffer's slice() would share memory rather than copy).
  const buf = bytes instanceof Uint8Array ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
  const r: Reader = { buf, view: new DataView(buf.buffer, buf.byteOffset, buf.byteLength), pos: 0 };
  const v = read(r);
  if (r.pos !== buf.length) throw new RangeError('trailing bytes after the MessagePack value');
  return v;
}

/** Advances past `n` bytes and returns where they start; throws when they are not there. */
function take(r: Reader, n: number): number {
  const at = r.pos;
  if (at + n > r.buf.length) throw new RangeError('truncated MessagePack value');
  r.pos += n;
  return at;
}

function read(r: Reader): unknown {
  const t = r.buf[take(r, 1)]!;
  if (t < 0x80) return t;
  if (t < 0x90) return readMap(r, t & 0x0f);
  if (t < 0xa0) return readArray(r, t & 0x0f);
  if (t < 0xc0) return readString(r, t & 0x1f);
  if (t >= 0xe0) return t - 0x100;
  const v = r.view;
  switch (t) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return readBin(r, v.getUint8(take(r, 1)));
    case 0xc5:
      return readBin(r, v.getUint16(take(r, 2)));
    case 0xc6:
      return readBin(r, v.getUint32(take(r, 4)));
    case 0xc7:
      return readExt(r, v.getUint8(take(r, 1)));
    case 0xc8:
      return readExt(r, v.getUint16(take(r, 2)));
    case 0xc9:
      return readExt(r, v.getUint32(take(r, 4)));
    case 0xca:
      return v.getFloat32(take(r, 4));
    case 0xcb:
      return v.getFloat64(take(r, 8));
    case 0xcc:
      return v.getUint8(take(r, 1));
    case 0xcd:
      return v.getUint16(take(r, 2));
    case 0xce:
      return v.getUint32(take(r, 4));
    case 0xcf: {
      const at = take(r, 8);
      return v.getUint32(at) * 0x100000000 + v.getUint32(at + 4);
    }
    case 0xd0:
      return v.getInt8(take(r, 1));
    case 0xd1:
      return v.getInt16(take(r, 2));
    case 0xd2:
      return v.getInt32(take(r, 4));
    case 0xd3: {
      const at = take(r, 8);
      return v.getInt32(at) * 0x100000000 + v.getUint32(at + 4);
    }
    case 0xd4:
      return readExt(r, 1);
    case 0xd5:
      return readExt(r, 2);
    case 0xd6:
      return readExt(r, 4);
    case 0xd7:
      return readExt(r, 8);
    case 0xd8:
      return readExt(r, 16);
    case 0xd9:
      return readString(r, v.getUint8(take(r, 1)));
    case 0xda:
      return readString(r, v.getUint16(take(r, 2)));
    case 0xdb:
      return readString(r, v.getUint32(take(r, 4)));
    case 0xdc:
      return readArray(r, v.getUint16(take(r, 2)));
    case 0xdd:
      return readArray(r, v.getUint32(take(r, 4)));
    case 0xde:
      return readMap(r, v.getUint16(take(r, 2)));
    case 0xdf:
      return readMap(r, v.getUint32(take(r, 4)));
    default:
      throw new RangeError(`invalid MessagePack type byte 0x${t.toString(16)}`);
  }
}

function readString(r: Reader, n: number): string {
  const at = take(r, n);
  // Short ASCII strings (keys, types, room names) without TextDecoder's per-call cost.
  if (n < 24) {
    let s = '';
    for (let i = at; i < at + n; i++) {
      const c = r.buf[i]!;
      if (c >= 0x80) return textDecoder.decode(r.buf.subarray(at, at + n));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return textDecoder.decode(r.buf.subarray(at, at + n));
}

function readBin(r: Reader, n: number): Uint8Array {
  const at = take(r, n);
  return r.buf.slice(at, at + n); // a copy: the frame's buffer is not kept alive
}

function readArray(r: Reader, n: number): unknown[] {
  if (n > r.buf.length - r.pos) throw new RangeError('truncated MessagePack array'); // each entry takes a byte at least
  const a = new Array<unknown>(n);
  for (let i = 0; i < n; i++) a[i] = read(r);
  return a;
}

function readMap(r: Reader, n: number): Record<string, unknown> {
  if (2 * n > r.buf.length - r.pos) throw new RangeError('truncated MessagePack map');
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const k = read(r);
    const key = typeof k === 'string' ? k : String(k);
    const v = read(r);
    // An own "__proto__" key, as JSON.parse makes it, never the object's prototype.
    if (key === '__proto__') Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
    else o[key] = v;
  }
  return o;
}

function readExt(r: Reader, n: number): Date | MsgpackExt {
  const type = r.view.getInt8(take(r, 1));
  const at = take(r, n);
  if (type !== -1) return { type, data: r.buf.slice(at, at + n) };
  const v = r.view;
  if (n === 4) return new Date(v.getUint32(at) * 1000);
  if (n === 8) {
    const hi = v.getUint32(at);
    return new Date(((hi & 0x3) * 0x100000000 + v.getUint32(at + 4)) * 1000 + Math.floor(hi / 4) / 1e6);
  }
  if (n === 12) return new Date(Number(v.getBigInt64(at + 4)) * 1000 + v.getUint32(at) / 1e6);
  throw new RangeError(`invalid timestamp length ${n}`);
}
