// The fuzz case families, their proportions, and how case `index` of run `seed` is made: the
// family is drawn from the case's own seed, then one value of the family's arbitrary is sampled
// with that seed (fast-check), so `--seed S --replay I` rebuilds case I exactly, and fast-check
// can shrink it (--minimize) from the same seed.
import fc from 'fast-check';
import {
  JSON_TEXT, MSGPACK, edgeClaims, edgeString, identifierClaim, jsTree, mpExt, mpTree, permissionPair, requestFrame, roomLike, tenantPair, transport, validRoom,
  type Arb, type Encoding, type PermissionPair, type RequestFrame, type TenantPair, type Transport,
} from './arbitraries.js';
import { isUtf8 } from './json.js';

/** One frame sent on an authenticated socket of its encoding. */
export interface FrameCase {
  readonly type: 'frame';
  readonly kind: string;
  readonly encoding: 'json' | 'msgpack';
  readonly bytes: Buffer;
  /** the WebSocket frame kind (binary or text), which may not be the encoding's */
  readonly binary: boolean;
  readonly id: number | string | undefined;
}

/** A token with edge-case claims: the upgrade, a few requests, a refresh with a second token. */
export interface ClaimsCase {
  readonly type: 'claims';
  readonly kind: string;
  readonly claims: Record<string, unknown>;
  readonly refresh: Record<string, unknown>;
  readonly room: string;
  readonly protocol: 'wsgate.v1.json' | 'wsgate.v1.msgpack';
}

/** Tokens of up to three identities in several transports at once. */
export interface TransportCase {
  readonly type: 'transport';
  readonly kind: string;
  readonly transport: Transport;
}

export interface PermissionCase {
  readonly type: 'permission';
  readonly kind: string;
  readonly pair: PermissionPair;
}

export interface IsolationCase {
  readonly type: 'isolation';
  readonly kind: string;
  readonly pair: TenantPair;
}

export type CaseBody = FrameCase | ClaimsCase | TransportCase | PermissionCase | IsolationCase;
export interface Case {
  readonly seed: number;
  readonly index: number;
  readonly family: string;
  readonly body: CaseBody;
}

export interface CaseConfig {
  /** WSGATE_MAX_PAYLOAD_BYTES of the gateway under test */
  readonly maxPayload: number;
}

function frameOf(f: RequestFrame, kind: string): FrameCase {
  return { type: 'frame', kind: `${f.encoding}:${kind}:${f.target}`, encoding: f.encoding, bytes: f.bytes, binary: f.binary, id: f.id };
}

function bothEncodings(make: <N>(enc: Encoding<N>) => Arb<RequestFrame>, kind: string): Arb<FrameCase> {
  return fc.oneof(make(MSGPACK), make(JSON_TEXT)).map((f) => frameOf(f, kind));
}

/** Valid requests whose rooms are room-shaped strings with every separator; up to 101 rooms. */
function protocolFrames(): Arb<FrameCase> {
  const rooms = fc.oneof({ weight: 4, arbitrary: fc.array(roomLike, { minLength: 1, maxLength: 3 }) }, { weight: 1, arbitrary: fc.array(validRoom(), { minLength: 99, maxLength: 101 }) });
  return fc
    .tuple(fc.constantFrom('join', 'leave', 'publish', 'presence', 'ping', 'join'), rooms, fc.boolean(), fc.integer({ min: 0, max: 2 ** 31 }), fc.constantFrom('json', 'msgpack'))
    .map(([type, rs, echo, id, e]) => {
      const msg: Record<string, unknown> = { id, type };
      if (type === 'join' || type === 'leave') msg.rooms = rs;
      else if (type !== 'ping') msg.room = rs[0];
      if (type === 'publish') Object.assign(msg, { data: { n: id, s: rs[0] }, echo });
      const enc = e === 'json' ? JSON_TEXT : MSGPACK;
      const toNode = <N>(en: Encoding<N>, v: unknown): N => (Array.isArray(v) ? en.arr(v.map((x) => toNode(en, x))) : typeof v === 'object' && v !== null ? en.map(Object.entries(v).map(([k, x]) => [en.str(k), toNode(en, x)] as const)) : typeof v === 'number' ? en.num(v) : typeof v === 'boolean' ? en.bool(v) : en.str(String(v)));
      const bytes = e === 'json' ? JSON_TEXT.encode(toNode(JSON_TEXT, msg)) : MSGPACK.encode(toNode(MSGPACK, msg));
      return { type: 'frame', kind: `${enc.name}:protocol:${type}`, encoding: enc.name, bytes, binary: enc.binary, id } satisfies FrameCase;
    });
}

// ---- the old generator's kinds (random bytes, truncated, huge declared lengths, wrong frame kind, oversize)

// mulberry32: the old fuzzer's PRNG, seeded per case here.
function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function legacyFrame(seed: number, maxPayload: number): FrameCase {
  const r = mulberry(seed);
  const json = r() < 0.5;
  const encoding = json ? 'json' : 'msgpack';
  const valid = { id: Math.floor(r() * 1e6), type: 'ping' };
  const enc = (v: unknown): Buffer => (json ? Buffer.from(JSON.stringify(v)) : MSGPACK.encode(MSGPACK.map(Object.entries(v as object).map(([k, x]) => [MSGPACK.str(k), typeof x === 'number' ? MSGPACK.num(x) : MSGPACK.str(String(x))] as const))));
  const frame = (kind: string, bytes: Buffer, binary = !json): FrameCase => ({ type: 'frame', kind: `${encoding}:legacy:${kind}`, encoding, bytes, binary, id: undefined });
  switch (Math.floor(r() * 5)) {
    case 0: {
      const b = Buffer.alloc(1 + Math.floor(r() * 200));
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
      return frame('random-bytes', b);
    }
    case 1: {
      const full = enc(valid);
      return frame('truncated', full.subarray(0, Math.max(1, Math.floor(r() * (full.length - 1)))));
    }
    case 2: {
      const heads = [[0xdd, 0xff, 0xff, 0xff, 0xff], [0xdf, 0xff, 0xff, 0xff, 0xff], [0xdb, 0x7f, 0xff, 0xff, 0xff], [0xc6, 0xff, 0xff, 0xff, 0xff], [0xdc, 0xff, 0xff], [0xde, 0xff, 0xff], [0xc9, 0xff, 0xff, 0xff, 0xff, 0x01]];
      if (json) return frame('huge-length', Buffer.from(`{"id":1,"type":"join","rooms":[${'"a",'.repeat(Math.floor(r() * 50))}"a"`));
      return frame('huge-length', Buffer.concat([Buffer.from([0x82, 0xa2, 0x69, 0x64, 0x01, 0xa5, 0x72, 0x6f, 0x6f, 0x6d, 0x73]), Buffer.from(heads[Math.floor(r() * heads.length)]!)]));
    }
    case 3:
      return frame('wrong-frame-kind', enc(valid), json);
    default:
      return frame('oversize', json ? Buffer.from(JSON.stringify({ id: 1, type: 'publish', room: 'a', data: 'x'.repeat(maxPayload + 10) })) : Buffer.alloc(maxPayload + 10, 0xc0));
  }
}

// ---- families

export interface Family {
  readonly name: string;
  /** cases per 1000 */
  readonly weight: number;
  readonly what: string;
  readonly arb: (cfg: CaseConfig) => Arb<CaseBody>;
}

/** The families and their proportions (per 1000 cases); docs/SECURITY.md#fuzzing lists them. */
export const FAMILIES: readonly Family[] = [
  { name: 'nesting', weight: 150, what: 'arrays, maps and both, 1 to the frame limit deep, in data and every other field, both encodings', arb: (c) => bothEncodings((enc) => requestFrame(enc as Encoding<unknown>, { payload: enc.deep(c.maxPayload) as Arb<unknown> }), 'nesting') },
  { name: 'msgpack-ext', weight: 120, what: 'every extension type (msgpackr\'s BigInt, typed arrays, 0x69/0x70 references and cycles, Set, Error, RegExp, records, timestamps; any id -128..127)', arb: () => requestFrame(MSGPACK, { payload: fc.oneof({ weight: 3, arbitrary: mpExt(mpTree) }, { weight: 1, arbitrary: mpTree }) }).map((f) => frameOf(f, 'ext')) },
  { name: 'msgpack-format', weight: 110, what: 'every format family, non-minimal encodings, lying lengths, non-string/duplicate/__proto__ keys', arb: () => requestFrame(MSGPACK, { payload: mpTree, dataWeight: 3 }).map((f) => frameOf(f, 'format')) },
  { name: 'json-edge', weight: 110, what: '-0, exponents, huge numbers, duplicate and __proto__ keys, escapes, long strings, invalid UTF-8', arb: () => requestFrame(JSON_TEXT, { payload: jsTree, dataWeight: 3 }).map((f) => frameOf(f, 'json')) },
  { name: 'unicode', weight: 100, what: 'edge strings (lone surrogates, NUL, C0/C1, U+2028, RTL, BOM, non-characters, combining, very long) and separator rooms in every string field', arb: (c) => bothEncodings((enc) => requestFrame(enc as Encoding<unknown>, { payload: enc.strArb(fc.oneof(edgeString(Math.floor(c.maxPayload / 4)), roomLike)) as Arb<unknown>, dataWeight: 1 }), 'unicode') },
  { name: 'protocol', weight: 90, what: 'valid requests naming separator rooms, 99-101 rooms', arb: () => protocolFrames() },
  { name: 'legacy', weight: 110, what: 'the first fuzzer: random bytes, truncated, huge declared lengths, wrong frame kind, oversize', arb: (c) => fc.integer().map((s) => legacyFrame(s, c.maxPayload)) },
  {
    name: 'claims', weight: 90, what: 'tokens signed with the gateway secret whose claims are edge cases; then requests and a refresh',
    arb: () => fc.record({ claims: edgeClaims(), refresh: fc.oneof(edgeClaims(), fc.constant({})), room: fc.oneof(validRoom(), roomLike), protocol: fc.constantFrom<'wsgate.v1.json' | 'wsgate.v1.msgpack'>('wsgate.v1.json', 'wsgate.v1.msgpack'), same: fc.boolean(), jti: identifierClaim })
      .map(({ claims, refresh, room, protocol, same, jti }): ClaimsCase => {
        // half the refreshes keep the identity (sub, tenant) and change the rest
        const r = same ? { ...claims, ...refresh, sub: claims.sub, tenant_id: claims.tenant_id, jti } : refresh;
        return { type: 'claims', kind: `claims:${typeof claims.sub === 'string' && typeof claims.tenant_id === 'string' ? 'strings' : 'mistyped'}`, claims, refresh: r, room, protocol };
      }),
  },
  { name: 'transport', weight: 30, what: 'one to three tokens in the header, several bearer.* entries, the query and the cookie at once', arb: () => transport.map((t): TransportCase => ({ type: 'transport', kind: `transport:${[t.header !== undefined && 'header', t.bearerEntries.length > 0 && `bearer${t.bearerEntries.length}`, t.query !== undefined && 'query', t.cookie !== undefined && 'cookie'].filter(Boolean).join('+') || 'none'}`, transport: t })) },
  { name: 'permission', weight: 45, what: 'permission lists with separator tricks, and lists whose entries join with "\\n" into another list\'s, connected first', arb: () => permissionPair.map((p): PermissionCase => ({ type: 'permission', kind: `permission:${p.primer ? (p.victim.length === 1 ? 'joined-after-split' : 'split-after-joined') : p.victim.length === 1 && p.victim[0]!.includes('\n') ? 'joined-alone' : 'random'}`, pair: p })) },
  { name: 'isolation', weight: 45, what: 'two tenants that differ in edge ways (lone surrogates, U+FFFD, NUL, length prefixes) in the same room name', arb: () => tenantPair.map((p): IsolationCase => ({ type: 'isolation', kind: `isolation:${p.trick}`, pair: p })) },
];

/** A 32-bit seed of case `index` of run `seed` (splitmix-style mixing). */
export function caseSeed(seed: number, index: number): number {
  let h = Math.imul((seed ^ 0x9e3779b9) >>> 0, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h | 0;
}

export class CaseMaker {
  private readonly arbs = new Map<string, Arb<CaseBody>>();
  private readonly families: readonly Family[];
  private readonly total: number;

  constructor(
    readonly cfg: CaseConfig,
    /** restrict to these families (their relative weights kept) */
    only?: readonly string[],
  ) {
    this.families = only && only.length > 0 ? FAMILIES.filter((f) => only.includes(f.name)) : FAMILIES;
    if (this.families.length === 0) throw new Error(`no such family: ${only?.join(', ')}; families: ${FAMILIES.map((f) => f.name).join(', ')}`);
    this.total = this.families.reduce((n, f) => n + f.weight, 0);
  }

  family(seed: number, index: number): Family {
    let x = ((caseSeed(seed, index) >>> 0) % this.total);
    for (const f of this.families) {
      if (x < f.weight) return f;
      x -= f.weight;
    }
    return this.families[this.families.length - 1]!;
  }

  arb(family: Family): Arb<CaseBody> {
    let a = this.arbs.get(family.name);
    if (!a) this.arbs.set(family.name, (a = family.arb(this.cfg)));
    return a;
  }

  make(seed: number, index: number): Case {
    const family = this.family(seed, index);
    const body = fc.sample(this.arb(family), { seed: caseSeed(seed, index), numRuns: 1 })[0]!;
    return { seed, index, family: family.name, body };
  }
}

/** Frame traits the oracle needs. */
export function frameTraits(f: FrameCase, maxPayload: number): { oversize: boolean; invalidUtf8: boolean; wrongKind: boolean } {
  return { oversize: f.bytes.length > maxPayload, invalidUtf8: !f.binary && !isUtf8(f.bytes), wrongKind: f.binary !== (f.encoding === 'msgpack') };
}

