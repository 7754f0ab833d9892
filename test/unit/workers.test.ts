// The pure parts of the workers: the host's /metrics from its workers' (supervisor/aggregate.ts),
// the cores `auto` means (supervisor/cores.ts), and the in-host link's frames (stores/host/frames.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observability/metrics.js';
import { aggregateMetrics, metricValue } from '../../src/supervisor/aggregate.js';
import { quotaCores, workerCount } from '../../src/supervisor/cores.js';
import { encodeBus, encodeEvent, encodeReply, encodeRequest, FrameError, FrameReader, Kind, type Frame } from '../../src/stores/host/frames.js';

function rendered(setup: (m: Metrics) => void, gauges: Record<string, number>): Promise<string> {
  const m = new Metrics();
  setup(m);
  for (const [name, v] of Object.entries(gauges)) m.gauge(name, name, () => v);
  return m.render();
}

describe('aggregateMetrics', () => {
  let text = '';
  beforeAll(async () => {
    const a = await rendered((m) => {
      m.upgradesAccepted = 3;
      m.count(m.refusals, 'NO_TOKEN');
      m.upgradeSeconds.sync.observe(0.0001);
    }, { connections: 2, event_loop_delay_p99_ms: 5, jwt_cache_hits: 1, jwt_cache_lookups: 4, jwt_cache_hit_ratio: 0.25, revocation_mirror_ready: 1 });
    const b = await rendered((m) => {
      m.upgradesAccepted = 4;
      m.count(m.refusals, 'AUTH_FAILED');
      m.upgradeSeconds.sync.observe(0.0001);
      m.upgradeSeconds.sync.observe(10);
    }, { connections: 5, event_loop_delay_p99_ms: 9, jwt_cache_hits: 3, jwt_cache_lookups: 4, jwt_cache_hit_ratio: 0.75, revocation_mirror_ready: 0 });
    text = aggregateMetrics([{ node: 'h.1', text: a }, { node: 'h.2', text: b }], 'wsgate_workers 2\n');
  });

  it('the host\'s series keep their names: counters and gauges summed, a worker without a labelled series counts 0', () => {
    expect(metricValue(text, 'upgrades_accepted_total')).toBe(7);
    expect(metricValue(text, 'connections')).toBe(7);
    expect(text).toMatch(/^wsgate_upgrades_refused_total\{code="NO_TOKEN"\} 1$/m);
    expect(text).toMatch(/^wsgate_upgrades_refused_total\{code="AUTH_FAILED"\} 1$/m);
    expect(metricValue(text, 'workers')).toBe(2);
  });

  it('histograms are summed bucket by bucket (prom-client\'s exposition)', () => {
    expect(text).toMatch(/^wsgate_upgrade_duration_seconds_count\{mode="sync"\} 3$/m);
    expect(text).toMatch(/^wsgate_upgrade_duration_seconds_bucket\{le="\+Inf",mode="sync"\} 3$/m);
    expect(text).toMatch(/^wsgate_upgrade_duration_seconds_bucket\{le="0\.001",mode="sync"\} 2$/m);
  });

  it('what a sum cannot say: the worst event-loop delay, the hit ratio from the summed counts, ready only if every worker is', () => {
    expect(metricValue(text, 'event_loop_delay_p99_ms')).toBe(9);
    expect(metricValue(text, 'jwt_cache_hit_ratio')).toBe(0.5);
    expect(metricValue(text, 'revocation_mirror_ready')).toBe(0);
  });

  it('each worker\'s own series under wsgate_worker_<name>{node}: a sum over them never double-counts the host\'s', () => {
    expect(text).toContain('wsgate_worker_connections{node="h.1"} 2');
    expect(text).toContain('wsgate_worker_connections{node="h.2"} 5');
    expect(text).toContain('wsgate_worker_upgrades_refused_total{node="h.2",code="AUTH_FAILED"} 1');
    expect(text).toContain('wsgate_worker_upgrades_refused_total{node="h.1",code="AUTH_FAILED"} 0');
    expect(text).toMatch(/^# TYPE wsgate_worker_upgrades_accepted_total counter$/m);
    // one HELP and one TYPE per family
    expect(text.match(/^# TYPE wsgate_connections gauge$/gm)).toHaveLength(1);
  });
});

describe('cores for WSGATE_WORKERS=auto', () => {
  it('a CFS quota caps the cores, rounded up; no quota leaves the affinity', () => {
    expect(quotaCores('200000 100000')).toBe(2);
    expect(quotaCores('150000 100000')).toBe(2);
    expect(quotaCores('50000 100000')).toBe(1);
    expect(quotaCores('max 100000')).toBeUndefined();
    expect(quotaCores(undefined, '300000', '100000')).toBe(3);
    expect(quotaCores(undefined, '-1', '100000')).toBeUndefined();
    expect(quotaCores(undefined)).toBeUndefined();
    expect(workerCount('auto', () => 6)).toBe(6);
    expect(workerCount(3, () => 6)).toBe(3);
  });
});

describe('in-host link frames', () => {
  it('every kind survives being split at every byte and joined with others', () => {
    const frames = [
      ...encodeRequest(7, { op: 'presence.apply', args: { batch: { added: new Map([['r', ['u']]]) } } }),
      ...encodeReply(7, true, { lost: false }),
      ...encodeReply(8, false, 'no'),
      ...encodeBus(Buffer.from('payload')),
      ...encodeEvent({ ev: 'revoked', jti: 'j', until: 1 }),
    ];
    const stream = Buffer.concat(frames);
    for (let cut = 1; cut < stream.length; cut++) {
      const got: Frame[] = [];
      const r = new FrameReader((f) => got.push(f));
      r.push(stream.subarray(0, cut));
      r.push(stream.subarray(cut));
      expect(got.map((f) => f.kind)).toEqual([Kind.REQ, Kind.RES, Kind.RES, Kind.BUS, Kind.EVENT]);
      expect((got[0] as { value: { args: { batch: { added: Map<string, string[]> } } } }).value.args.batch.added.get('r')).toEqual(['u']);
      expect(got[2]).toMatchObject({ ok: false, value: 'no' });
      expect((got[3] as { payload: Buffer }).payload.toString()).toBe('payload');
    }
  });

  it('a frame that cannot be read throws (the link is then closed)', () => {
    const r = new FrameReader(() => undefined);
    expect(() => r.push(Buffer.from([0, 0, 0, 0]))).toThrow(FrameError);
    expect(() => new FrameReader(() => undefined).push(Buffer.from([0, 0, 0, 1, 9]))).toThrow(/unknown frame kind/);
  });
});
