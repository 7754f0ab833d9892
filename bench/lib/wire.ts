// The generator's wire layer: prebuilt HTTP upgrade requests, client frames masked with a zero
// key (valid per RFC 6455; payload bytes need no XOR), and a streaming parser for server frames.
// Pure: no sockets. Kept minimal so that the generator is never the bottleneck.

export const OP_TEXT = 1;
export const OP_BINARY = 2;
export const OP_CLOSE = 8;
export const OP_PING = 9;
export const OP_PONG = 10;

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

export function upgradeRequest(host: string, path: string, headers: Record<string, string>): Buffer {
  let s = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n`;
  for (const [k, v] of Object.entries(headers)) s += `${k}: ${v}\r\n`;
  return Buffer.from(s + '\r\n', 'latin1');
}

/** A masked client frame with mask key 0 (so the payload is sent as is). */
export function frame(opcode: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const n = body.length;
  const head = n < 126 ? 6 : n < 65536 ? 8 : 14;
  const out = Buffer.allocUnsafe(head + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  out.writeUInt32BE(0, head - 4);
  body.copy(out, head);
  return out;
}

export interface HttpHead {
  readonly status: number;
  readonly headers: string;
  /** bytes after the head: frames (101) or the body */
  readonly rest: Buffer;
}

/** Parses an HTTP response head once it is complete; undefined while incomplete. */
export function parseHead(buf: Buffer): HttpHead | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = buf.toString('latin1', 0, end);
  const status = Number(head.slice(9, 12));
  return { status, headers: head, rest: buf.subarray(end + 4) };
}

export function contentLength(headers: string): number {
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
  return m ? Number(m[1]) : 0;
}

/** Incremental parser of unmasked server frames. */
export class FrameParser {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (opcode: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let off = 0;
    for (;;) {
      if (buf.length - off < 2) break;
      const b1 = buf[off + 1]!;
      let len = b1 & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (buf.length - off < 4) break;
        len = buf.readUInt16BE(off + 2);
        hdr = 4;
      } else if (len === 127) {
        if (buf.length - off < 10) break;
        len = Number(buf.readBigUInt64BE(off + 2));
        hdr = 10;
      }
      if (buf.length - off < hdr + len) break;
      this.onFrame(buf[off]! & 0x0f, buf.subarray(off + hdr, off + hdr + len));
      off += hdr + len;
    }
    this.buf = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
    buf = this.buf;
  }
}
