// 10k generated hostile frames over real sockets (npm run fuzz runs 1M): each gets one reply
// or a documented close; the gateway stays up and nothing leaks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFuzz } from '../../scripts/fuzz.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { hs } from '../helpers/tokens.js';
import { roomKey } from '../../src/rooms/rooms.js';

let redis: TestRedis;
let gw: TestGateway;
beforeAll(async () => {
  redis = await startRedis();
  gw = await startGateway({ WSGATE_REDIS_URL: redis.url, WSGATE_RATE_LIMIT: '0', WSGATE_LOG_LEVEL: 'warn' });
});
afterAll(async () => {
  await gw.stop();
  await redis.stop();
});

describe('frame fuzzing', () => {
  it('10k cases: every one answered by a typed reply or a documented close; the gateway survives', async () => {
    let n = 0;
    const res = await runFuzz({ url: gw.url, token: () => hs({ sub: `f${n++ % 50}` }), cases: 10_000, concurrency: 16, seed: 20261127, maxPayload: gw.config.maxPayloadBytes });
    const kinds = new Set(res.failures.map((f) => f.replace(/^case \d+ /, '')));
    expect([...kinds]).toEqual([]);
    expect(res.cases).toBe(10_000);
    for (const kind of ['random-bytes', 'truncated', 'huge-length', 'deep-nesting', 'wrong-field-type', 'unknown-type', 'wrong-frame-kind', 'oversize', 'valid']) {
      expect(res.kinds[kind], kind).toBeGreaterThan(300);
    }
    expect(res.outcomes['error BAD_REQUEST']).toBeGreaterThan(1000);
    expect(res.outcomes['error UNKNOWN_TYPE']).toBeGreaterThan(100);
    expect(res.outcomes['close 4401']).toBeGreaterThan(300);
    expect((res.outcomes['close 1006'] ?? 0) + (res.outcomes['close 1009'] ?? 0)).toBeGreaterThan(300); // oversize
    // Still serving, and every fuzz socket is gone from the hub, presence and the registry.
    expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);
    for (let i = 0; i < 50 && gw.hub.size > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(gw.hub.size).toBe(0);
    await new Promise((r) => setTimeout(r, 150));
    await gw.hub.registry.flush();
    expect((await gw.registryStore.list()).filter((e) => e.nodeId === gw.config.nodeId)).toEqual([]);
    await gw.hub.flushPresence();
    expect(await gw.presenceStore.members(roomKey('acme', 'fuzz/1'))).toEqual([]);
  }, 120_000);
});
