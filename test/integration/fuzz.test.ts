// Structure-aware fuzzing of the built gateway (dist/src/cli.js) as a child process: the crash
// oracle is the process. 10k generated cases of every family with every oracle (npm run fuzz
// runs 1M), then one focused test per known crash or collision family, each on a gateway that
// is restarted when a case kills it, so that every family reports on its own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAMILIES, Fuzzer, type FuzzResult } from '../../scripts/fuzz.js';
import type { CaseBody, FrameCase } from '../../scripts/fuzz/cases.js';
import { GatewayProcess } from '../../scripts/fuzz/gateway.js';
import { MSGPACKR_EXTENSIONS as X, encodeJs, encodeMp, ext, int, jobj, jstr, lit, obj, str, type Js, type Mp } from '../helpers/arbitraries.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { SECRET } from '../helpers/tokens.js';

const MAX_PAYLOAD = 65_536;

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

/** What a run says went wrong, one line per kind, with the case to replay. */
function problems(r: FuzzResult): string[] {
  const out: string[] = [];
  for (const c of r.crashes) out.push(`crash x${c.count}: ${c.signature}; ${c.culprit ? `case ${c.culprit.index} (${c.culprit.family}): ${c.culprit.input.slice(0, 200)}` : c.triage ?? ''}`);
  const seen = new Set<string>();
  for (const f of r.failures) {
    const k = `${f.family}/${f.kind}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(`${k} x${r.failureKinds[k]}: seed ${f.seed} case ${f.index}: ${f.detail.slice(0, 200)}`);
  }
  for (const h of r.healthFailures) out.push(`/healthz: ${h}`);
  return out;
}

describe('structure-aware fuzzing', () => {
  it('10k cases of every family: no crash, /healthz 200 throughout, one reply or a documented close per frame, tenants isolated, permissions held', async () => {
    const fuzzer = new Fuzzer({ cases: 10_000, concurrency: 24, seed: 20261202, secret: SECRET, env: { WSGATE_REDIS_URL: redis.url, WSGATE_LOG_LEVEL: 'info' }, maxCrashes: 3, triage: true });
    const r = await fuzzer.run();
    expect(problems(r)).toEqual([]);
    expect(r.cases).toBe(10_000);
    expect(r.gatewayAlive).toBe(true);
    expect(r.connectionsAtEnd).toBe(0);
    expect(r.finalExit).toEqual({ code: 0, signal: null });
    for (const f of FAMILIES) {
      const n = Object.values(r.outcomes[f.name] ?? {}).reduce((a, b) => a + b, 0);
      expect(n, f.name).toBeGreaterThan(f.weight * 10 * 0.7);
    }
    // the oracles had something to judge: acks, typed errors, documented closes, accepted edge claims, held isolation
    const all = (o: string): number => Object.values(r.outcomes).reduce((n, fam) => n + (fam[o] ?? 0), 0);
    expect(all('ack')).toBeGreaterThan(1000);
    expect(all('error BAD_REQUEST')).toBeGreaterThan(1000);
    expect(all('close 4401')).toBeGreaterThan(50);
    expect(r.outcomes.isolation?.isolated ?? 0).toBeGreaterThan(100);
    expect(r.outcomes.permission?.held ?? 0).toBeGreaterThan(100);
  }, 180_000);
});

// ---------------------------------------------------------------- focused families

/** A gateway process that is started again when a case killed it. */
class Target {
  private gw: GatewayProcess | undefined;
  private gen = 0;
  readonly fuzzer: Fuzzer;
  constructor(private readonly env: () => Record<string, string>) {
    this.fuzzer = new Fuzzer({ cases: 0, concurrency: 1, seed: 0, secret: SECRET, env: {} });
  }
  async fresh(): Promise<GatewayProcess> {
    await this.gw?.stop();
    this.gw = await GatewayProcess.start({ secret: SECRET, env: { WSGATE_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD), ...this.env() }, healthEveryMs: 0 }, ++this.gen);
    return this.gw;
  }
  /** Runs one case; returns 'alive' and its failures, or the crash the gateway printed. */
  async run(body: CaseBody, opts: { fresh?: boolean } = {}): Promise<{ crash: string | undefined; failures: string[]; outcome: string }> {
    const gw = opts.fresh || !this.gw?.alive ? await this.fresh() : this.gw;
    const v = await this.fuzzer.runAlone(gw, 0, body);
    const died = v.died || (await gw.diedWithin(100));
    const crash = died ? (gw.exit?.tail ?? '').split('\n').filter((l) => /Error|^\s+at /.test(l)).slice(0, 4).join('\n') || `exit ${gw.exit?.code}` : undefined;
    return { crash, failures: v.failures.map((f) => `${f.kind}: ${f.detail}`), outcome: v.outcome };
  }
  stop(): Promise<unknown> {
    return this.gw?.stop() ?? Promise.resolve();
  }
}

const mpPublish = (data: Mp): FrameCase => ({ type: 'frame', kind: 'focused', encoding: 'msgpack', binary: true, id: 1, bytes: encodeMp(obj([['id', int(1)], ['type', str('publish')], ['room', str('fuzz/1')], ['data', data], ['echo', { k: 'bool', v: true }]])) });
const jsPublish = (data: Js): FrameCase => ({ type: 'frame', kind: 'focused', encoding: 'json', binary: false, id: 1, bytes: encodeJs(jobj([['id', lit('1')], ['type', jstr('publish')], ['room', jstr('fuzz/1')], ['data', data], ['echo', lit('true')]])) });

describe('deep nesting in a publish', () => {
  const t = new Target(() => ({}));
  afterAll(() => t.stop());
  const depths = (perLevel: number): number[] => [1_000, 2_000, 10_000, Math.floor((MAX_PAYLOAD - 120) / perLevel)];
  const cases: Array<[string, string, number, FrameCase]> = [];
  for (const shape of ['array', 'map', 'mixed'] as const) {
    for (const d of depths(shape === 'array' ? 1 : shape === 'map' ? 3 : 2)) cases.push(['msgpack', shape, d, mpPublish({ k: 'deep', shape, depth: d, leaf: { k: 'nil' } })]);
    for (const d of depths(shape === 'array' ? 2 : shape === 'map' ? 6 : 4)) cases.push(['json', shape, d, jsPublish({ k: 'deep', shape, depth: d, leaf: lit('null') })]);
  }
  it.each(cases)('%s data: %s nested %i deep', async (_enc, _shape, _depth, body) => {
    expect(body.bytes.length).toBeLessThanOrEqual(MAX_PAYLOAD);
    const r = await t.run(body);
    expect(r.crash).toBeUndefined();
    expect(r.failures).toEqual([]);
  });

  // the same depth in every other field: a typed reply, nothing re-encoded
  it.each(['id', 'type', 'room', 'echo', 'x'])('msgpack and JSON: 2,000 levels in %s', async (field) => {
    const deepMp: Mp = { k: 'deep', shape: 'array', depth: 2_000, leaf: { k: 'nil' } };
    const deepJs: Js = { k: 'deep', shape: 'array', depth: 2_000, leaf: lit('null') };
    const mp = obj([['id', int(1)], ['type', str('publish')], ['room', str('fuzz/1')], ['data', int(1)]].map(([k, v]) => [k as string, k === field ? deepMp : (v as Mp)] as const).concat(field === 'x' ? [['x', deepMp] as const] : []));
    const js = jobj([['id', lit('1')], ['type', jstr('publish')], ['room', jstr('fuzz/1')], ['data', lit('1')]].map(([k, v]) => [k as string, k === field ? deepJs : (v as Js)] as const).concat(field === 'x' ? [['x', deepJs] as const] : []));
    for (const body of [{ type: 'frame', kind: 'focused', encoding: 'msgpack', binary: true, id: undefined, bytes: encodeMp(mp) }, { type: 'frame', kind: 'focused', encoding: 'json', binary: false, id: undefined, bytes: encodeJs(js) }] as FrameCase[]) {
      const r = await t.run(body);
      expect(r.crash).toBeUndefined();
      expect(r.failures).toEqual([]);
    }
  });
});

describe('msgpackr extension types in a publish', () => {
  const t = new Target(() => ({}));
  afterAll(() => t.stop());
  const u32 = (n: number): Uint8Array => Uint8Array.of(0, 0, 0, n);
  const bytes = (n: number, fill = 0x11): Uint8Array => new Uint8Array(n).fill(fill);
  const fixarr = (items: Mp[]): Mp => ({ k: 'arr', fmt: 'fix', items });
  const F = Uint8Array.of(0);
  const exts: Array<[string, Mp]> = [
    ['0x42 BigInt, 1 byte', ext(X.bigint, Uint8Array.of(5))],
    ['0x42 BigInt, 8 bytes', ext(X.bigint, bytes(8, 0x01))],
    ['0x42 BigInt, 9 bytes (beyond int64)', ext(X.bigint, bytes(9, 0x7f))],
    ['0x42 BigInt, 64 bytes', ext(X.bigint, bytes(64, 0x7f))],
    ['0x42 BigInt, negative', ext(X.bigint, bytes(8, 0xff))],
    ...['Int8', 'Uint8', 'Uint8Clamped', 'Int16', 'Uint16', 'Int32', 'Uint32', 'Float32', 'Float64', 'BigInt64', 'BigUint64'].map((name, code): [string, Mp] => [`0x74 ${name}Array`, ext(X.typedArray, Uint8Array.from([code, ...bytes(16, 0x40)]))]),
    ['0x74 ArrayBuffer (16)', ext(X.typedArray, Uint8Array.from([16, ...bytes(8)]))],
    ['0x74 DataView (17)', ext(X.typedArray, Uint8Array.from([17, ...bytes(8)]))],
    ['0x69 id around a plain value', ext(X.id, u32(1), str('v'))],
    ['0x69/0x70 array that contains itself', ext(X.id, u32(1), fixarr([ext(X.pointer, u32(1))]))],
    ['0x69/0x70 map that contains itself', ext(X.id, u32(2), { k: 'map', fmt: 'fix', entries: [[str('self'), ext(X.pointer, u32(2))]] })],
    ['0x69/0x70 set that contains itself', ext(X.id, u32(3), ext(X.set, F, fixarr([ext(X.pointer, u32(3))])))],
    ['0x70 pointer to nothing', ext(X.pointer, u32(9))],
    ['0x73 Set', ext(X.set, F, fixarr([int(1), str('a')]))],
    ['0x65 Error', ext(X.error, F, fixarr([str('RangeError'), str('boom'), { k: 'nil' }]))],
    ['0x65 Error with a cyclic cause', ext(X.id, u32(4), ext(X.error, F, fixarr([str('Error'), str('x'), ext(X.pointer, u32(4))])))],
    ['0x78 RegExp', ext(X.regexp, F, fixarr([str('(a+)+$'), str('g')]))],
    ['0x72 record definition (fixext1)', { k: 'ext', fmt: 'fe1', type: X.record, data: Uint8Array.of(0x40), tail: { k: 'raw', bytes: Uint8Array.from([...encodeMp(fixarr([str('a'), str('b')])), ...encodeMp(int(1)), ...encodeMp(int(2))]) } }],
    ['0x72 record definition (fixext2)', { k: 'ext', fmt: 'fe2', type: X.record, data: Uint8Array.of(0x41, 0x01), tail: { k: 'raw', bytes: Uint8Array.from([...encodeMp(fixarr([str('a')])), ...encodeMp(int(1))]) } }],
    ['0x62 bundled strings', ext(X.bundledStrings, Uint8Array.of(0, 0, 0, 4), str('ab'))],
    ['0x00 undefined', ext(X.undefined, F)],
    ['0x6d', ext(X.map, bytes(4))],
    ['0x64', ext(X.date, bytes(8))],
    ['timestamp -1, 32-bit', ext(X.timestamp, bytes(4, 0xff))],
    ['timestamp -1, 64-bit', ext(X.timestamp, bytes(8, 0xff))],
    ['timestamp -1, 96-bit', ext(X.timestamp, bytes(12, 0xff))],
    ['timestamp -1, 16 bytes (no such form)', ext(X.timestamp, bytes(16, 0xff))],
    ['0x42 BigInt inside a map inside an array', fixarr([{ k: 'map', fmt: 'fix', entries: [[str('n'), ext(X.bigint, bytes(9, 0x7f))]] }])],
  ];
  it.each(exts)('%s', async (_name, value) => {
    const r = await t.run(mpPublish(value));
    expect(r.crash).toBeUndefined();
    expect(r.failures).toEqual([]);
  });
});

describe('tenant collisions', () => {
  const pairs: Array<[string, [string, string], [string, string]]> = [
    ['two lone high surrogates', ['acme\uD800', 'acme\uDBFF'], ['chat/1', 'chat/1']],
    ['a lone high and a lone low surrogate', ['\uD800acme', '\uDC00acme'], ['chat/1', 'chat/1']],
    ['a lone surrogate and U+FFFD', ['acme\uD800', 'acme\uFFFD'], ['chat/1', 'chat/1']],
    ['a trailing NUL', ['acme', 'acme\u0000'], ['chat/1', 'chat/1']],
    ['length prefix: tenant a + room 1:b/x against tenant a/1:b + room x', ['a', 'a/1:b'], ['1:b/x', 'x']],
    ['combining accent against precomposed', ['\u00E9', 'e\u0301'], ['chat/1', 'chat/1']],
  ];
  for (const store of ['Redis', 'memory'] as const) {
    describe(`${store} store`, () => {
      const t = new Target((): Record<string, string> => (store === 'Redis' ? { WSGATE_REDIS_URL: redis.url } : {}));
      afterAll(() => t.stop());
      it.each(pairs)('%s: no publish and no presence crosses', async (_name, tenants, rooms) => {
        const r = await t.run({ type: 'isolation', kind: 'focused', pair: { tenants, rooms, trick: 'focused' } });
        expect(r.crash).toBeUndefined();
        expect(r.failures).toEqual([]);
        expect(['isolated', 'refused 401 AUTH_FAILED']).toContain(r.outcome);
      });
    });
  }
});

describe('permission lists that collide when joined with "\\n"', () => {
  const t = new Target(() => ({}));
  afterAll(() => t.stop());
  const probes = [['publish', 'x'], ['publish', 'lobby'], ['join', 'lobby'], ['join', 'x'], ['presence', 'x']] as const;
  it('the single entry "join:lobby\\npublish:**" never publishes to x, even after ["join:lobby","publish:**"] connected first', async () => {
    const r = await t.run({ type: 'permission', kind: 'focused', pair: { victim: ['join:lobby\npublish:**'], primer: ['join:lobby', 'publish:**'], probes } }, { fresh: true });
    expect(r.failures).toEqual([]);
  });
  it('["join:lobby","publish:**"] publishes to x, even after the single entry "join:lobby\\npublish:**" connected first', async () => {
    const r = await t.run({ type: 'permission', kind: 'focused', pair: { victim: ['join:lobby', 'publish:**'], primer: ['join:lobby\npublish:**'], probes } }, { fresh: true });
    expect(r.failures).toEqual([]);
  });
  it('"*:**\\n*:x" grants nothing after ["*:**","*:x"] connected first', async () => {
    const r = await t.run({ type: 'permission', kind: 'focused', pair: { victim: ['*:**\n*:x'], primer: ['*:**', '*:x'], probes } }, { fresh: true });
    expect(r.failures).toEqual([]);
  });
});
