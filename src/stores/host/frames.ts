// The in-host link's wire format (docs/WORKERS.md#the-in-host-store): the workers of one host and
// their supervisor talk over a Unix socket in length-prefixed frames. Pure: no sockets here.
//
//   [u32 length of what follows][u8 kind][body]
//   REQ   body = [u32 id][v8-serialized { op, args }]       worker -> host, answered by one RES
//   RES   body = [u32 id][u8 0 ok | 1 failed][v8 value]     host -> worker
//   BUS   body = the Bus payload, as is                      both ways (the host relays it)
//   EVENT body = [v8 value]                                  one-way, both ways (revocations, casts)
//
// Bus payloads are the hot path (one per publish): they are copied once into the frame and never
// serialized again. v8 serialization carries Maps, Sets and Buffers (the store batches) as they are.
import { deserialize, serialize } from 'node:v8';

export const Kind = { REQ: 1, RES: 2, BUS: 3, EVENT: 4 } as const;
export type KindCode = (typeof Kind)[keyof typeof Kind];

/** One frame larger than this is a broken peer, not a message: the link is closed. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

export type Frame =
  | { readonly kind: typeof Kind.REQ; readonly id: number; readonly value: unknown }
  | { readonly kind: typeof Kind.RES; readonly id: number; readonly ok: boolean; readonly value: unknown }
  | { readonly kind: typeof Kind.BUS; readonly payload: Buffer }
  | { readonly kind: typeof Kind.EVENT; readonly value: unknown };

function head(kind: KindCode, bodyBytes: number, extra: number): Buffer {
  const b = Buffer.allocUnsafe(5 + extra);
  b.writeUInt32BE(1 + extra + bodyBytes, 0);
  b[4] = kind;
  return b;
}

export function encodeRequest(id: number, value: unknown): Buffer[] {
  const body = serialize(value);
  const h = head(Kind.REQ, body.length, 4);
  h.writeUInt32BE(id, 5);
  return [h, body];
}

export function encodeReply(id: number, ok: boolean, value: unknown): Buffer[] {
  const body = serialize(value);
  const h = head(Kind.RES, body.length, 5);
  h.writeUInt32BE(id, 5);
  h[9] = ok ? 0 : 1;
  return [h, body];
}

export function encodeBus(payload: Buffer): Buffer[] {
  return [head(Kind.BUS, payload.length, 0), payload];
}

export function encodeEvent(value: unknown): Buffer[] {
  const body = serialize(value);
  return [head(Kind.EVENT, body.length, 0), body];
}

export class FrameError extends Error {}

/**
 * Splits a byte stream into frames. Chunks are kept as they arrive and joined only when a frame
 * spans them (a Bus payload of a few hundred bytes usually sits inside one chunk).
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly onFrame: (f: Frame) => void) {}

  /** Throws FrameError on a frame that cannot be read: the caller closes the link. */
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < 4) return;
      const first = this.chunks[0]!;
      const len = first.length >= 4 ? first.readUInt32BE(0) : this.join().readUInt32BE(0);
      if (len < 1 || len > MAX_FRAME_BYTES) throw new FrameError(`frame of ${len} bytes`);
      if (this.buffered < 4 + len) return;
      const all = this.chunks[0]!.length >= 4 + len ? this.chunks[0]! : this.join();
      const frame = all.subarray(4, 4 + len);
      const rest = all.subarray(4 + len);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.onFrame(decodeFrame(frame));
    }
  }

  private join(): Buffer {
    const b = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [b];
    return b;
  }
}

function decodeFrame(f: Buffer): Frame {
  const kind = f[0];
  try {
    switch (kind) {
      case Kind.REQ:
        return { kind, id: f.readUInt32BE(1), value: deserialize(f.subarray(5)) };
      case Kind.RES:
        return { kind, id: f.readUInt32BE(1), ok: f[5] === 0, value: deserialize(f.subarray(6)) };
      case Kind.BUS:
        // No copy: Node gives each socket read a buffer of its own, and the handler is done with the
        // payload before it returns (the fan-out copies it into the sockets).
        return { kind, payload: f.subarray(1) };
      case Kind.EVENT:
        return { kind, value: deserialize(f.subarray(1)) };
    }
  } catch (e) {
    throw new FrameError(`unreadable frame of kind ${kind}: ${(e as Error).message}`);
  }
  throw new FrameError(`unknown frame kind ${kind}`);
}
