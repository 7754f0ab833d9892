// Bounds on what a frame may contain, checked without recursion. Pure.
//
// scanMsgpack walks MessagePack bytes once, with an explicit stack, before any decoder sees them:
// only plain MessagePack passes (nil, bool, int, float, str, bin, array, map with string keys, and
// the standard timestamp extension -1); every other extension type (msgpackr's records, BigInt,
// typed arrays, structured clones, ...) is refused, as are truncated values, trailing bytes, the
// never-used byte 0xc1, and frames nested deeper or holding more items than the limits. The walk is
// O(frame bytes): a declared length is checked against the bytes left before anything is counted.
//
// walkJson does the same for a value JSON.parse returned (V8's JSON.parse itself is iterative; the
// re-encoding of a deep value is what overflowed the stack).
import { isUtf8 } from 'node:buffer';
import type { RequestId } from './messages.js';

// The key `__proto__`: msgpackr renames it, JSON.parse keeps it, and some MessagePack libraries
// refuse to decode a map that has it: refused in both encodings, so every subscriber can read
// what it is sent.
const PROTO_KEY = Buffer.from('__proto__');

export interface FrameLimits {
  /** Containers nested in one frame; the request map itself is level 1. */
  readonly maxDepth: number;
  /** Values and map keys in one frame. */
  readonly maxItems: number;
}

export type BoundsFailure = 'malformed' | 'extension' | 'key-type' | 'depth' | 'items' | 'unicode';

export type ScanResult =
  | { readonly ok: true; /** the frame holds bin values */ readonly binary: boolean }
  | { readonly ok: false; readonly reason: BoundsFailure; readonly id: RequestId | undefined };

const OK: ScanResult = Object.freeze({ ok: true, binary: false });
const OK_BINARY: ScanResult = Object.freeze({ ok: true, binary: true });

/** Timestamp extension (type -1) payload lengths: 32-bit seconds; 64-bit ns+s; 96-bit ns+s. */
function validTimestamp(b: Uint8Array, at: number, len: number): boolean {
  if (len === 4) return true;
  const view = new DataView(b.buffer, b.byteOffset + at, len);
  if (len === 8) return view.getUint32(0) >>> 2 <= 999_999_999;
  if (len === 12) {
    if (view.getUint32(0) > 999_999_999) return false;
    // within the Date range (±8.64e15 ms): anything else decodes to an Invalid Date
    const s = view.getBigInt64(4);
    return s >= -8_640_000_000_000n && s <= 8_640_000_000_000n;
  }
  return false;
}

/**
 * A reusable scanner for one set of limits (its stack is allocated once: the scan allocates
 * nothing on the success path). Not reentrant; the gateway is single-threaded.
 */
export class MsgpackScanner {
  private readonly remaining: Int32Array;
  private readonly isMap: Uint8Array;

  constructor(private readonly limits: FrameLimits) {
    this.remaining = new Int32Array(limits.maxDepth + 1);
    this.isMap = new Uint8Array(limits.maxDepth + 1);
  }

  scan(b: Uint8Array): ScanResult {
    const { maxDepth, maxItems } = this.limits;
    const remaining = this.remaining;
    const isMap = this.isMap;
    const len = b.length;
    let depth = 0;
    let pos = 0;
    let items = 0;
    // The request's id, read on the way so that a refused frame can still be answered with its ref.
    let id: RequestId | undefined;
    let idNext = false;
    let binary = false;
    const fail = (reason: BoundsFailure): ScanResult => ({ ok: false, reason, id });

    for (;;) {
      if (pos >= len) return fail('malformed');
      if (++items > maxItems) return fail('items');
      const atKey = depth > 0 && isMap[depth] === 1 && (remaining[depth]! & 1) === 0;
      const readingId = idNext;
      idNext = false;
      const t = b[pos]!;
      let children = -1; // >= 0: a container with that many items follows
      let map = false;
      let size = 0; // bytes of the value after its head
      let head = 1;
      if (t <= 0x7f || t >= 0xe0) {
        if (readingId) id = t <= 0x7f ? t : t - 256;
      } else if (t <= 0x8f) {
        children = t & 0x0f;
        map = true;
      } else if (t <= 0x9f) {
        children = t & 0x0f;
      } else if (t <= 0xbf) {
        size = t & 0x1f;
      } else {
        switch (t) {
          case 0xc0: case 0xc2: case 0xc3: break;
          case 0xc4: case 0xd9: binary ||= t === 0xc4; head = 2; if (pos + 2 > len) return fail('malformed'); size = b[pos + 1]!; break;
          case 0xc5: case 0xda: binary ||= t === 0xc5; head = 3; if (pos + 3 > len) return fail('malformed'); size = (b[pos + 1]! << 8) | b[pos + 2]!; break;
          case 0xc6: case 0xdb: binary ||= t === 0xc6; head = 5; if (pos + 5 > len) return fail('malformed'); size = ((b[pos + 1]! << 24) >>> 0) + ((b[pos + 2]! << 16) | (b[pos + 3]! << 8) | b[pos + 4]!); break;
          case 0xc7: case 0xc8: case 0xc9: {
            // ext 8/16/32: length, type, data; only the 96-bit timestamp (ext8, 12 bytes) is plain MessagePack
            const lb = t === 0xc7 ? 1 : t === 0xc8 ? 2 : 4;
            if (pos + 1 + lb + 1 > len) return fail('malformed');
            let n = 0;
            for (let i = 1; i <= lb; i++) n = n * 256 + b[pos + i]!;
            const type = b[pos + 1 + lb]!;
            head = 2 + lb;
            size = n;
            if (type !== 0xff || t !== 0xc7 || n !== 12) return fail('extension');
            if (pos + head + 12 > len || !validTimestamp(b, pos + head, 12)) return fail('malformed');
            break;
          }
          case 0xca: size = 4; break;
          case 0xcb: size = 8; break;
          case 0xcc: case 0xd0: size = 1; break;
          case 0xcd: case 0xd1: size = 2; break;
          case 0xce: case 0xd2: size = 4; break;
          case 0xcf: case 0xd3: size = 8; break;
          case 0xd4: case 0xd5: case 0xd8: return fail('extension');
          case 0xd6: case 0xd7: {
            // fixext 4/8: the 32- and 64-bit timestamps when the type is -1
            head = 2;
            size = t === 0xd6 ? 4 : 8;
            if (pos + 2 + size > len) return fail('malformed');
            if (b[pos + 1] !== 0xff) return fail('extension');
            if (!validTimestamp(b, pos + 2, size)) return fail('malformed');
            break;
          }
          case 0xdc: case 0xde: head = 3; if (pos + 3 > len) return fail('malformed'); children = (b[pos + 1]! << 8) | b[pos + 2]!; map = t === 0xde; break;
          case 0xdd: case 0xdf: head = 5; if (pos + 5 > len) return fail('malformed'); children = ((b[pos + 1]! << 24) >>> 0) + ((b[pos + 2]! << 16) | (b[pos + 3]! << 8) | b[pos + 4]!); map = t === 0xdf; break;
          default: return fail('malformed'); // 0xc1: never used
        }
      }
      const isString = (t >= 0xa0 && t <= 0xbf) || t === 0xd9 || t === 0xda || t === 0xdb;
      if (atKey && !isString) return fail('key-type');
      if (children >= 0) {
        if (map) children *= 2;
        // Every item needs at least one byte, and counts against maxItems: checked before pushing,
        // so a declared length of 2^32 costs nothing.
        if (children > len - pos - head || items + children > maxItems) return fail(children > len - pos - head ? 'malformed' : 'items');
        pos += head;
        if (children > 0) {
          if (depth + 1 > maxDepth) return fail('depth');
          depth++;
          remaining[depth] = children;
          isMap[depth] = map ? 1 : 0;
          continue;
        }
      } else {
        if (pos + head + size > len) return fail('malformed');
        if (isString && size > 0) {
          // every string is UTF-8, so that it reaches JSON subscribers as the same characters
          // (ASCII, the common case, is checked here without a view of the bytes)
          const start = pos + head;
          const end = start + size;
          let i = start;
          while (i < end && b[i]! < 0x80) i++;
          if (i < end && !isUtf8(b.subarray(start, end))) return fail('unicode');
          if (atKey && size === 9 && PROTO_KEY.equals(b.subarray(start, end))) return fail('key-type');
        }
        if (readingId && isString && size > 0 && size <= 64) id = decodeUtf8(b, pos + head, size);
        else if (readingId && t >= 0xcc && t <= 0xd3 && t !== 0xcf && t !== 0xd3) id = readInt(b, pos, t);
        if (atKey && depth === 1 && size === 2 && b[pos + head] === 0x69 && b[pos + head + 1] === 0x64) idNext = true;
        pos += head + size;
      }
      // One value is complete: close every container it completes.
      while (depth > 0) {
        if (--remaining[depth]! > 0) break;
        depth--;
      }
      if (depth === 0) return pos !== len ? fail('malformed') : binary ? OK_BINARY : OK;
    }
  }
}

function readInt(b: Uint8Array, pos: number, t: number): number {
  const v = new DataView(b.buffer, b.byteOffset + pos + 1);
  switch (t) {
    case 0xcc: return v.getUint8(0);
    case 0xcd: return v.getUint16(0);
    case 0xce: return v.getUint32(0);
    case 0xd0: return v.getInt8(0);
    case 0xd1: return v.getInt16(0);
    default: return v.getInt32(0);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
function decodeUtf8(b: Uint8Array, at: number, n: number): string {
  return utf8.decode(b.subarray(at, at + n));
}

/**
 * Depth and item count of a parsed JSON value, iteratively. Returns undefined when within the
 * limits, else the failure.
 */
export class JsonWalker {
  private readonly stack: unknown[] = [];
  private readonly depths: number[] = [];

  constructor(private readonly limits: FrameLimits) {}

  check(root: unknown): 'depth' | 'items' | 'unicode' | 'key-type' | undefined {
    const { maxDepth, maxItems } = this.limits;
    const stack = this.stack;
    const depths = this.depths;
    stack.length = 0;
    depths.length = 0;
    let items = 0;
    stack.push(root);
    depths.push(0);
    let failure: 'depth' | 'items' | 'unicode' | 'key-type' | undefined;
    while (stack.length > 0) {
      const v = stack.pop();
      const d = depths.pop()!;
      if (++items > maxItems) { failure = 'items'; break; }
      // JSON's \u escapes can spell a lone surrogate, which no UTF-8 encoder can carry to a MessagePack subscriber
      if (typeof v === 'string') {
        if (!v.isWellFormed()) { failure = 'unicode'; break; }
        continue;
      }
      if (v === null || typeof v !== 'object') continue;
      if (d + 1 > maxDepth) { failure = 'depth'; break; }
      if (Array.isArray(v)) {
        if (items + v.length > maxItems) { failure = 'items'; break; }
        for (let i = 0; i < v.length; i++) {
          stack.push(v[i]);
          depths.push(d + 1);
        }
      } else {
        for (const k in v) {
          if (++items > maxItems) { failure = 'items'; break; }
          if (k === '__proto__') { failure = 'key-type'; break; }
          if (!k.isWellFormed()) { failure = 'unicode'; break; }
          stack.push((v as Record<string, unknown>)[k]);
          depths.push(d + 1);
        }
        if (failure) break;
      }
    }
    stack.length = 0;
    depths.length = 0;
    return failure;
  }
}
