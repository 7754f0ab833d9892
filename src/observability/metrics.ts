// The gateway's counters, gauges and histograms, exposed at GET /metrics through prom-client: the
// exposition format, escaping and HELP/TYPE lines are the library's. The hot path only writes plain
// fields: a counter is one property increment, a histogram observation a scan of a few bucket
// bounds (Buckets: ~5 ns; prom-client's own observe costs ~120 ns unlabelled and ~220 ns with a
// label, measured on this machine). prom-client reads them when /metrics is scraped.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricType, type MetricValueWithName } from 'prom-client';

/** A histogram on plain fields: per-bucket counts (the last one: above every bound), sum, count. */
export class Buckets {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

// Bucket bounds. Upgrades decided synchronously take tens of µs, async ones a Redis round trip or a
// JWKS fetch; flushes are one pipeline per interval.
const SECONDS_FAST = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const SECONDS_FLUSH = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SIZES = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 50_000, 100_000];

/**
 * A prom-client Histogram whose values are read from Buckets at scrape time (one Buckets per value
 * of its one label, or one without a label). The values have the shape prom-client's Histogram
 * gives (test/unit/metrics.test.ts compares the rendered text with a Histogram fed the same values).
 */
class BucketsHistogram extends Histogram<string> {
  constructor(
    registry: Registry,
    private readonly metricName: string,
    private readonly helpText: string,
    private readonly label: string | undefined,
    private readonly series: ReadonlyMap<string, Buckets>,
    bounds: readonly number[],
  ) {
    super({ name: metricName, help: helpText, labelNames: label === undefined ? [] : [label], buckets: [...bounds], registers: [registry] });
  }

  /**
   * The values as prom-client's Histogram gives them: `le` in the labels and the series' label apart
   * (`sharedLabels`, rendered after `le`) for the Registry; merged for get().
   */
  private values(merged: boolean): MetricObjectWithValues<MetricValueWithName<string>> {
    const name = this.metricName;
    const values: Array<MetricValueWithName<string> & { sharedLabels?: Record<string, string> }> = [];
    const value = (labels: Record<string, string | number>, shared: Record<string, string>, v: number, metricName: string): void => {
      values.push(merged ? { labels: { ...labels, ...shared }, value: v, metricName } : { labels, sharedLabels: shared, value: v, metricName });
    };
    for (const [key, b] of this.series) {
      const shared = this.label === undefined ? {} : { [this.label]: key };
      let acc = 0;
      b.bounds.forEach((le, i) => {
        acc += b.counts[i]!;
        value({ le }, shared, acc, `${name}_bucket`);
      });
      value({ le: '+Inf' }, shared, b.count, `${name}_bucket`);
      value({}, shared, b.sum, `${name}_sum`);
      value({}, shared, b.count, `${name}_count`);
    }
    return { name, help: this.helpText, type: 'histogram' as unknown as MetricType /* the declarations say an enum; the Registry writes this string */, values, aggregator: 'sum', collect: () => undefined };
  }

  override get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    return Promise.resolve(this.values(true));
  }

  /** What the Registry renders. */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    return Promise.resolve(this.values(false));
  }
}

/** A histogram with one label of a fixed set of values: one Buckets per value. */
const byLabel = <K extends string>(keys: readonly K[], bounds: readonly number[]): Record<K, Buckets> =>
  Object.fromEntries(keys.map((k) => [k, new Buckets(bounds)])) as Record<K, Buckets>;

export class Metrics {
  upgradesAccepted = 0;
  /** refusal code -> count */
  readonly refusals = new Map<string, number>();
  /** verification failure reason -> count (never sent to clients) */
  readonly authFailures = new Map<string, number>();
  upgradesAborted = 0;
  /** Sockets uWS closed inside res.cork right after an async upgrade (uWebSockets #1928, docs/UWS-1928.md). */
  upgradesClosedByUws = 0;
  revocationFailOpen = 0;
  connectionsOpen = 0;
  connectionsClosed = 0;
  messagesIn = 0;
  messagesOut = 0;
  replyErrors = 0;
  publishes = 0;
  backpressureDrops = 0;
  slowConsumerCloses = 0;
  rateLimited = 0;
  rateLimitCloses = 0;
  tokenRefreshes = 0;
  tokenExpiredCloses = 0;
  /** open sockets closed with 4003 because their token was revoked */
  revokedCloses = 0;
  /** open sockets closed through the server API's disconnect (4009 / 4509) */
  disconnectCloses = 0;
  /** server API requests by answer code (OK or an AdminError code) */
  readonly adminRequests = new Map<string, number>();
  flushFailures = 0;
  /** where -> failures contained there (a socket closed with 1011, an upgrade answered 500, a timer tick skipped) */
  readonly internalErrors = new Map<string, number>();
  /** reason -> frames refused by the decoder (malformed, extension, key-type, depth, items, shape, unknown-type) */
  readonly framesRejected = new Map<string, number>();
  /** sockets closed before completing an upgrade because a pending-socket bound was reached: reason -> count */
  readonly pendingRefused = new Map<string, number>();
  /** connections uWS dropped without a close frame, by reason (invalid-utf8, too-big, idle-timeout, bad-frame) */
  readonly protocolDrops = new Map<string, number>();
  busPublishFailures = 0;
  busMalformed = 0;
  /** bytes of bus payloads received, and of those for rooms without a local member */
  busReceivedBytes = 0;
  busForeignBytes = 0;
  presenceOverflows = 0;
  registryOverflows = 0;
  /** TLS certificate reloads (SIGHUP): result -> count */
  readonly tlsReloads = new Map<string, number>();

  /** From the upgrade handler's entry to the socket's open, by how the upgrade was decided (sync: in the handler; async: after an await). */
  readonly upgradeSeconds = byLabel(['sync', 'async'], SECONDS_FAST);
  /** One revocation lookup batch (MGET) to Redis and back. */
  readonly revocationBatchSeconds = new Buckets(SECONDS_FAST);
  readonly revocationBatchSize = new Buckets(SIZES);
  /** One flush of the batched presence or registry writes, and the entries it wrote. */
  readonly flushSeconds = byLabel(['presence', 'registry'], SECONDS_FLUSH);
  readonly flushBatchSize = byLabel(['presence', 'registry'], SIZES);
  /** Sockets on this node one publish reaches: published here (local) or on another node (bus). */
  readonly fanoutSize = byLabel(['local', 'bus'], SIZES);

  /** Set by the composition root: copies counters kept elsewhere into this object at scrape time. */
  onCollect: () => void = () => undefined;

  readonly registry = new Registry();
  private readonly gaugeReads = new Map<string, () => number>();

  constructor(options: { readonly processMetrics?: boolean } = {}) {
    const r = this.registry;
    const counter = (name: string, help: string, read: () => number): void => {
      new Counter({
        name: `wsgate_${name}`,
        help,
        registers: [r],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    const labelled = (name: string, help: string, label: string, m: ReadonlyMap<string, number>): void => {
      new Counter({
        name: `wsgate_${name}`,
        help,
        labelNames: [label],
        registers: [r],
        collect() {
          this.reset();
          for (const [k, v] of m) this.inc({ [label]: k }, v);
        },
      });
    };
    const histogram = (name: string, help: string, label: string | undefined, series: Record<string, Buckets> | Buckets, bounds: readonly number[]): void => {
      const map = new Map(series instanceof Buckets ? [['', series]] : Object.entries(series));
      new BucketsHistogram(r, `wsgate_${name}`, help, label, map, bounds);
    };
    counter('upgrades_accepted_total', 'Upgrades accepted.', () => this.upgradesAccepted);
    labelled('upgrades_refused_total', 'Upgrades refused, by refusal code.', 'code', this.refusals);
    labelled('auth_failures_total', 'Token verification failures, by reason.', 'reason', this.authFailures);
    counter('upgrades_aborted_total', 'Upgrades aborted by the client during authentication.', () => this.upgradesAborted);
    counter('upgrades_closed_by_uws_total', 'Sockets uWS closed right after an async upgrade (uWebSockets #1928; the client sees 1006 after its connected frame and reconnects).', () => this.upgradesClosedByUws);
    counter('revocation_fail_open_total', 'Upgrades accepted because Redis could not answer (fail-open mode).', () => this.revocationFailOpen);
    counter('connections_opened_total', 'WebSocket connections opened.', () => this.connectionsOpen);
    counter('connections_closed_total', 'WebSocket connections closed.', () => this.connectionsClosed);
    counter('messages_in_total', 'Frames received.', () => this.messagesIn);
    counter('messages_out_total', 'Frames sent directly (replies, pushes).', () => this.messagesOut);
    counter('reply_errors_total', 'Reply errors sent.', () => this.replyErrors);
    counter('publishes_total', 'Messages published to rooms.', () => this.publishes);
    counter('backpressure_drops_total', 'Direct sends dropped by backpressure.', () => this.backpressureDrops);
    counter('slow_consumer_closes_total', 'Connections closed with 4501: more than half the backpressure limit buffered at a sweep.', () => this.slowConsumerCloses);
    counter('rate_limited_total', 'Requests answered RATE_LIMITED.', () => this.rateLimited);
    counter('rate_limit_closes_total', 'Connections closed with 4502 for flooding.', () => this.rateLimitCloses);
    counter('token_refreshes_total', 'Successful token refreshes.', () => this.tokenRefreshes);
    counter('token_expired_closes_total', 'Connections closed at token expiry.', () => this.tokenExpiredCloses);
    counter('revoked_closes_total', 'Open connections closed with 4003 because their token (or every token of their user) was revoked.', () => this.revokedCloses);
    counter('disconnect_closes_total', 'Open connections closed through the server API (4009, or 4509 with reconnect).', () => this.disconnectCloses);
    labelled('admin_requests_total', 'Server API requests, by answer code (OK, or the error code).', 'code', this.adminRequests);
    counter('store_flush_failures_total', 'Registry/presence flushes that failed (retried).', () => this.flushFailures);
    labelled('internal_errors_total', 'Failures contained inside the gateway, by where they happened (each closed one socket with 1011, answered one upgrade with 500, or skipped one timer tick).', 'where', this.internalErrors);
    labelled('frames_rejected_total', 'Frames the decoder refused (BAD_REQUEST / UNKNOWN_TYPE), by reason.', 'reason', this.framesRejected);
    labelled('pending_sockets_refused_total', 'Sockets closed before completing an upgrade because a pending-socket bound was reached, by bound.', 'bound', this.pendingRefused);
    labelled('protocol_drops_total', 'Connections uWS dropped without a close frame (the client sees 1006), by reason: invalid-utf8, too-big, idle-timeout, bad-frame.', 'reason', this.protocolDrops);
    counter('bus_publish_failures_total', 'Cross-node publishes that could not be sent (Redis away).', () => this.busPublishFailures);
    counter('bus_malformed_total', 'Cross-node envelopes dropped as malformed.', () => this.busMalformed);
    counter('bus_received_bytes_total', 'Bytes of cross-node payloads this node received (its own echoes included).', () => this.busReceivedBytes);
    counter('bus_foreign_bytes_total', 'Bytes of cross-node payloads received for rooms without a member on this node (0 with WSGATE_BUS_CHANNELS=room).', () => this.busForeignBytes);
    counter('presence_overflows_total', 'Times the buffered presence changes exceeded WSGATE_PRESENCE_MAX_PENDING and were replaced by a full rewrite.', () => this.presenceOverflows);
    counter('registry_overflows_total', 'Times the buffered registry changes exceeded WSGATE_REGISTRY_MAX_PENDING and were replaced by a full rewrite.', () => this.registryOverflows);
    labelled('tls_reloads_total', 'TLS certificate reloads (SIGHUP), by result: ok, failed (the old certificate stays).', 'result', this.tlsReloads);
    histogram('upgrade_duration_seconds', 'Accepted upgrades, from the upgrade handler\'s entry to the socket\'s open, by how they were decided: sync (in the handler) or async (after a Redis round trip or a JWKS fetch).', 'mode', this.upgradeSeconds, SECONDS_FAST);
    histogram('revocation_batch_duration_seconds', 'Revocation lookup batches (one MGET for the upgrades of one event-loop turn), Redis round trip (lookup mode; mirror mode while the mirror is not ready).', undefined, this.revocationBatchSeconds, SECONDS_FAST);
    histogram('revocation_batch_size', 'Keys per revocation lookup batch (one MGET): each upgrade reads its token id and its user.', undefined, this.revocationBatchSize, SIZES);
    histogram('store_flush_duration_seconds', 'Flushes of the batched presence and registry writes (one pipeline each), by store.', 'store', this.flushSeconds, SECONDS_FLUSH);
    histogram('store_flush_batch_size', 'Entries one flush wrote: rooms whose presence changed, connections registered or removed (a full rewrite: all of them), by store.', 'store', this.flushBatchSize, SIZES);
    histogram('publish_fanout_size', 'Sockets on this node one publish reaches, by where it was published: local (here) or bus (another node).', 'origin', this.fanoutSize, SIZES);
    if (options.processMetrics) collectDefaultMetrics({ register: r });
  }

  count(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  /** A gauge read at scrape time: `wsgate_<name>`. */
  gauge(name: string, help: string, read: () => number): void {
    this.gaugeReads.set(name, read);
    new Gauge({
      name: `wsgate_${name}`,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** A gauge of value 1 whose labels describe the process (wsgate_<name>{...} 1). */
  info(name: string, help: string, labels: Readonly<Record<string, string>>): void {
    const g = new Gauge({ name: `wsgate_${name}`, help, labelNames: Object.keys(labels), registers: [this.registry] });
    g.set(labels, 1);
  }

  /** The gauges' values now, by name (without the wsgate_ prefix). */
  gauges(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, read] of this.gaugeReads) out[name] = read();
    return out;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    this.onCollect();
    return this.registry.metrics();
  }
}
