// The node-to-node envelope on the Bus (stores/ports.ts): what one gateway node tells the others.
// Plain MessagePack maps with one-letter keys and a kind. Pure. Envelopes come from other nodes
// of the same deployment, but are still validated field by field: a malformed one is dropped.
import { Packr, Unpackr } from 'msgpackr';

export type Envelope =
  /** Frames for a room's members, already encoded for both subprotocols (receivers only copy bytes). */
  { readonly kind: 'room'; readonly node: string; readonly room: string; readonly bin: Uint8Array; readonly json: string };

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export function encodeEnvelope(e: Envelope): Buffer {
  return packr.pack({ k: 'r', n: e.node, r: e.room, b: e.bin, j: e.json });
}

export function decodeEnvelope(payload: Uint8Array): Envelope | undefined {
  let m: Record<string, unknown>;
  try {
    m = unpackr.unpack(payload) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (m === null || typeof m !== 'object') return undefined;
  if (m.k === 'r' && typeof m.n === 'string' && typeof m.r === 'string' && m.b instanceof Uint8Array && typeof m.j === 'string') {
    return { kind: 'room', node: m.n, room: m.r, bin: m.b, json: m.j };
  }
  return undefined;
}
