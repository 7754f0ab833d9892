// The metrics module: plain fields on the hot path, prom-client's exposition at scrape time.
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Buckets, Metrics } from '../../src/observability/metrics.js';

/** The lines of one metric family (HELP, TYPE and its samples) in a text exposition. */
function family(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l === `# HELP ${name} ${l.slice(`# HELP ${name} `.length)}` || l.startsWith(`# TYPE ${name} `) || new RegExp(`^${name}(_bucket|_sum|_count)?[{ ]`).test(l));
}

describe('Metrics', () => {
  it('histograms on plain buckets render exactly as a prom-client Histogram fed the same values', async () => {
    const m = new Metrics();
    const reg = new Registry();
    const reference = new Histogram({
      name: 'wsgate_upgrade_duration_seconds',
      help: (await m.registry.getSingleMetric('wsgate_upgrade_duration_seconds')!.get()).help,
      labelNames: ['mode'],
      buckets: [...m.upgradeSeconds.sync.bounds],
      registers: [reg],
    });
    // on a bound, between bounds, above every bound, zero
    const values = [0.0001, 0.00017, 0.003, 0.0025, 7, 0, 2.5, 0.04];
    for (const v of values) {
      m.upgradeSeconds.sync.observe(v);
      reference.observe({ mode: 'sync' }, v);
    }
    reference.zero({ mode: 'async' }); // a series with no observation yet
    const ours = family(await m.render(), 'wsgate_upgrade_duration_seconds');
    const theirs = family(await reg.metrics(), 'wsgate_upgrade_duration_seconds');
    expect(ours.length).toBe(2 + 2 * (m.upgradeSeconds.sync.bounds.length + 3));
    expect(ours).toEqual(theirs);
  });

  it('an unlabelled histogram too', async () => {
    const m = new Metrics();
    const reg = new Registry();
    const h = new Histogram({ name: 'wsgate_revocation_batch_size', help: (await m.registry.getSingleMetric('wsgate_revocation_batch_size')!.get()).help, buckets: [...m.revocationBatchSize.bounds], registers: [reg] });
    for (const v of [1, 1, 3, 1000, 123_456]) {
      m.revocationBatchSize.observe(v);
      h.observe(v);
    }
    expect(family(await m.render(), 'wsgate_revocation_batch_size')).toEqual(family(await reg.metrics(), 'wsgate_revocation_batch_size'));
  });

  it('Buckets: a value on a bound counts in that bucket, as prom-client does', () => {
    const b = new Buckets([1, 2, 5]);
    for (const v of [0, 1, 1.5, 2, 5, 6]) b.observe(v);
    expect([...b.counts]).toEqual([2, 2, 1, 1]);
    expect(b.count).toBe(6);
    expect(b.sum).toBe(15.5);
  });

  it('counters and gauges are read from the plain fields at scrape time; label values are escaped by the library', async () => {
    const m = new Metrics();
    m.upgradesAccepted = 7;
    m.count(m.refusals, 'NO_TOKEN');
    m.count(m.refusals, 'NO_TOKEN');
    m.count(m.internalErrors, 'we"ird\\place\nhere');
    let n = 1;
    m.gauge('connections', 'Open WebSocket sessions.', () => n);
    m.onCollect = () => void (m.presenceOverflows = 3);
    let text = await m.render();
    expect(text).toContain('# TYPE wsgate_upgrades_accepted_total counter\nwsgate_upgrades_accepted_total 7');
    expect(text).toContain('wsgate_upgrades_refused_total{code="NO_TOKEN"} 2');
    expect(text).toContain('wsgate_internal_errors_total{where="we\\"ird\\\\place\\nhere"} 1');
    expect(text).toContain('# HELP wsgate_connections Open WebSocket sessions.\n# TYPE wsgate_connections gauge\nwsgate_connections 1');
    expect(text).toContain('wsgate_presence_overflows_total 3');
    m.upgradesAccepted++;
    n = 5;
    text = await m.render();
    expect(text).toContain('wsgate_upgrades_accepted_total 8');
    expect(text).toContain('wsgate_connections 5');
    expect(m.gauges()).toEqual({ connections: 5 });
    expect(m.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('process metrics only when asked for', async () => {
    expect(await new Metrics().render()).not.toContain('nodejs_eventloop_lag_seconds');
    const text = await new Metrics({ processMetrics: true }).render();
    for (const name of ['nodejs_eventloop_lag_p99_seconds', 'nodejs_gc_duration_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_active_handles_total', 'process_resident_memory_bytes']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });
});
