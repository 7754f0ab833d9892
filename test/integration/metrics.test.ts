// GET /metrics: who may read it (WSGATE_METRICS), the histograms it carries after real traffic
// (upgrades, revocation batches, flushes, fan-out here and across nodes), and the Grafana
// dashboard in docs/grafana/: every metric and label it queries exists in /metrics.
import { readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, type TestCa } from '../../bench/lib/certs.js';
import { connect, refused, type Client } from '../helpers/client.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { hs } from '../helpers/tokens.js';
import { until } from '../helpers/wait.js';

const scrape = async (g: { http: string }, headers: Record<string, string> = {}): Promise<Response> => fetch(`${g.http}/metrics`, { headers });
const text = async (g: { http: string }): Promise<string> => (await scrape(g)).text();
/** The value of one sample line (name with its labels as rendered), NaN when absent. */
const sample = (exposition: string, series: string): number => {
  const line = exposition.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
};

describe('who may read /metrics', () => {
  it('public by default: Prometheus text from prom-client', async () => {
    const g = await startGateway();
    try {
      const res = await scrape(g);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(await res.text()).toContain('# TYPE wsgate_upgrades_accepted_total counter');
    } finally {
      await g.stop();
    }
  });

  it('token: a bearer token is required; /healthz stays open', async () => {
    const token = 'scrape-0123456789-abcdef';
    const g = await startGateway({ WSGATE_METRICS: 'token', WSGATE_METRICS_TOKEN: token });
    try {
      const wrong: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: `Basic ${token}` }, { authorization: `Bearer ${token}x` }];
      for (const headers of wrong) {
        const res = await scrape(g, headers);
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
        expect(await res.json()).toEqual({ error: 'Unauthorized', code: 'UNAUTHORIZED' });
      }
      const ok = await scrape(g, { authorization: `Bearer ${token}` });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('wsgate_connections 0');
      expect((await scrape(g, { authorization: `bearer  ${token} ` })).status).toBe(200);
      expect((await fetch(`${g.http}/healthz`)).status).toBe(200);
      // the pending-socket count is released by the 401 answers too
      await until(() => g.pending.size === 0);
    } finally {
      await g.stop();
    }
  });

  it('off: 404, like any unknown path', async () => {
    const g = await startGateway({ WSGATE_METRICS: 'off' });
    try {
      const res = await scrape(g);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: 'Not found', code: 'NOT_FOUND' });
    } finally {
      await g.stop();
    }
  });
});

describe('histograms after real traffic', () => {
  let redis: TestRedis;
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    redis = await startRedis();
    // lookup mode: every upgrade waits for one MGET (async); two nodes on one Redis: publishes cross the bus
    a = await startGateway({ WSGATE_REDIS_URL: redis.url, WSGATE_REVOCATION_MODE: 'lookup', WSGATE_KEY_PREFIX: 'm:' });
    b = await startGateway({ WSGATE_REDIS_URL: redis.url, WSGATE_REVOCATION_MODE: 'lookup', WSGATE_KEY_PREFIX: 'm:' });
  });
  afterAll(async () => {
    await a.stop();
    await b.stop();
    await redis.stop();
  });

  it('upgrade latency, revocation batches, flushes and fan-out sizes are observed', async () => {
    const here: Client[] = [];
    for (let i = 0; i < 3; i++) here.push((await connect(a.url, hs({ sub: `a${i}` }), { json: true })).client);
    const there = (await connect(b.url, hs({ sub: 'b0' }), { json: true })).client;
    for (const c of [...here, there]) await c.request({ type: 'join', rooms: ['fan'] });
    // one publish on a without echo: 2 sockets here, 1 on b
    await here[0]!.request({ type: 'publish', room: 'fan', data: 1 });
    await there.type('message');
    // the first registry flush may have run before the connections (an empty full write): wait for theirs
    await until(async () => sample(await text(a), 'wsgate_store_flush_batch_size_count{store="presence"}') >= 1 && sample(await text(a), 'wsgate_store_flush_batch_size_sum{store="registry"}') >= 3);
    const ta = await text(a);
    expect(sample(ta, 'wsgate_upgrade_duration_seconds_count{mode="async"}')).toBe(3);
    expect(sample(ta, 'wsgate_upgrade_duration_seconds_count{mode="sync"}')).toBe(0);
    expect(sample(ta, 'wsgate_upgrade_duration_seconds_sum{mode="async"}')).toBeGreaterThan(0);
    expect(sample(ta, 'wsgate_upgrade_duration_seconds_bucket{le="+Inf",mode="async"}')).toBe(3);
    expect(sample(ta, 'wsgate_revocation_batch_size_sum')).toBe(6); // 3 upgrades, each reads revoked:<jti> and revoked-user:<user>
    expect(sample(ta, 'wsgate_revocation_batch_duration_seconds_count')).toBe(sample(ta, 'wsgate_revocation_batch_size_count'));
    expect(sample(ta, 'wsgate_publish_fanout_size_count{origin="local"}')).toBe(1);
    expect(sample(ta, 'wsgate_publish_fanout_size_sum{origin="local"}')).toBe(2);
    expect(sample(ta, 'wsgate_store_flush_duration_seconds_count{store="registry"}')).toBeGreaterThanOrEqual(1);
    expect(sample(ta, 'wsgate_store_flush_batch_size_sum{store="registry"}')).toBeGreaterThanOrEqual(3);
    const tb = await text(b);
    expect(sample(tb, 'wsgate_publish_fanout_size_count{origin="bus"}')).toBe(1);
    expect(sample(tb, 'wsgate_publish_fanout_size_sum{origin="bus"}')).toBe(1);
    expect(sample(tb, 'wsgate_publish_fanout_size_count{origin="local"}')).toBe(0);
    // an echoed publish reaches the publisher too
    await here[1]!.request({ type: 'publish', room: 'fan', data: 2, echo: true });
    expect(sample(await text(a), 'wsgate_publish_fanout_size_sum{origin="local"}')).toBe(2 + 3);
    for (const c of [...here, there]) await c.close();
  });

  it('a refused upgrade is counted by code and logged; never observed as an upgrade', async () => {
    await refused(connect(a.url, 'not.a.token'));
    const ta = await text(a);
    expect(sample(ta, 'wsgate_upgrades_refused_total{code="AUTH_FAILED"}')).toBe(1);
    expect(sample(ta, 'wsgate_upgrade_duration_seconds_count{mode="async"}')).toBe(3);
    expect(a.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'upgrade refused')).toMatchObject({ code: 'AUTH_FAILED', source: 'header', node: a.config.nodeId });
  });
});

describe('the Grafana dashboard (docs/grafana/wsgate.json)', () => {
  const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana/wsgate.json', import.meta.url), 'utf8')) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    templating: { list: Array<{ query?: unknown }> };
  };
  const exprs = [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr }))),
    ...dashboard.templating.list.flatMap((v) => (typeof v.query === 'object' && v.query !== null && 'query' in v.query ? [{ panel: 'variable', expr: String((v.query as { query: string }).query) }] : [])),
  ];
  // PromQL words that are not metric names
  const WORDS = new Set(['sum', 'min', 'max', 'avg', 'count', 'rate', 'increase', 'histogram_quantile', 'time', 'by', 'without', 'label_values', 'on', 'ignoring', 'bool', 'and', 'or', 'unless']);
  // labels Prometheus adds at scrape time
  const TARGET_LABELS = new Set(['instance', 'job']);

  let ca: TestCa;
  let g: TestGateway;
  beforeAll(async () => {
    // TLS on: the certificate's gauge exists only then
    ca = makeCa();
    const leaf = ca.issue('dash');
    g = await startGateway({ WSGATE_TLS_CERT_FILE: leaf.certFile, WSGATE_TLS_KEY_FILE: leaf.keyFile });
  });
  afterAll(async () => {
    await g.stop();
    rmSync(ca.dir, { recursive: true, force: true });
  });

  /** metric name (as queried: _bucket, _sum and _count included) -> the labels it can carry */
  async function families(): Promise<Map<string, Set<string>>> {
    const body = await new Promise<string>((resolve, reject) => {
      request(`${g.http}/metrics`, { ca: ca.ca }, (res) => {
        let s = '';
        res.on('data', (c: Buffer) => (s += c.toString()));
        res.on('end', () => resolve(s));
      })
        .once('error', reject)
        .end();
    });
    const out = new Map<string, Set<string>>();
    const declared = new Map<string, string[]>();
    for (const m of g.metrics.registry.getMetricsAsArray()) {
      const { name, labelNames } = m as unknown as { name: string; labelNames: string[] };
      declared.set(name, labelNames);
    }
    for (const line of body.split('\n')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) {
        const [, name, kind] = type;
        const names = kind === 'histogram' || kind === 'summary' ? [name!, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!];
        for (const n of names) out.set(n, new Set([...(declared.get(name!) ?? []), ...(n.endsWith('_bucket') ? ['le'] : [])]));
        continue;
      }
      const s = /^([a-zA-Z_:][\w:]*)\{([^}]*)\}/.exec(line);
      if (s) for (const [, label] of s[2]!.matchAll(/(\w+)="/g)) out.get(s[1]!)?.add(label!);
    }
    return out;
  }

  it('queries only metrics that /metrics has, with labels they carry', async () => {
    expect(exprs.length).toBeGreaterThan(40);
    // some traffic first, so that labelled families have series too
    const { client } = await connect(g.url, hs(), { ca: ca.ca });
    await client.close();
    await refused(connect(g.url, undefined, { ca: ca.ca }));
    const known = await families();
    const queried = new Set<string>();
    for (const { panel, expr } of exprs) {
      let e = expr.replace(/"[^"]*"/g, '""').replace(/\[[^\]]*\]/g, '');
      const metrics: string[] = [];
      const labels: string[] = [];
      e = e.replace(/\{([^}]*)\}/g, (_m, inner: string) => {
        for (const [, l] of inner.matchAll(/(\w+)\s*[=!]~?/g)) labels.push(l!);
        return ' ';
      });
      e = e.replace(/\b(by|without)\s*\(([^)]*)\)/g, (_m, _w, inner: string) => {
        labels.push(...inner.split(',').map((x) => x.trim()).filter(Boolean));
        return ' ';
      });
      e = e.replace(/label_values\(\s*([\w:]+)\s*,\s*(\w+)\s*\)/g, (_m, metric: string, label: string) => {
        metrics.push(metric);
        labels.push(label);
        return ' ';
      });
      for (const [word] of e.matchAll(/[a-zA-Z_:][\w:]*/g)) if (!WORDS.has(word!) && !word!.startsWith('$')) metrics.push(word!);
      expect(metrics.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const m of metrics) {
        expect(known.has(m), `${panel}: ${m} is not in /metrics`).toBe(true);
        queried.add(m);
      }
      for (const l of labels) {
        if (TARGET_LABELS.has(l)) continue;
        expect(metrics.some((m) => known.get(m)?.has(l)), `${panel}: no metric of "${expr}" has the label ${l}`).toBe(true);
      }
    }
    // docs/OPERATIONS.md lists exactly the wsgate_ families /metrics has
    const doc = readFileSync(new URL('../../docs/OPERATIONS.md', import.meta.url), 'utf8');
    const documented = new Set([...doc.matchAll(/^\| `(wsgate_\w+)` \|/gm)].map((m) => m[1]!));
    const served = new Set(g.metrics.registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name).filter((n) => n.startsWith('wsgate_')));
    expect([...documented].sort()).toEqual([...served].sort());
    for (const m of g.metrics.registry.getMetricsAsArray()) {
      const n = (m as unknown as { name: string }).name;
      if (!n.startsWith('wsgate_')) expect(doc, n).toContain(`\`${n}`);
    }
    // the dashboard shows the histograms this gateway added
    for (const h of ['wsgate_upgrade_duration_seconds', 'wsgate_revocation_batch_duration_seconds', 'wsgate_store_flush_duration_seconds', 'wsgate_store_flush_batch_size', 'wsgate_publish_fanout_size', 'nodejs_gc_duration_seconds']) {
      expect([...queried].some((q) => q.startsWith(h)), h).toBe(true);
    }
  });
});
