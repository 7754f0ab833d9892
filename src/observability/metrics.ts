// Counters and gauges, rendered in the Prometheus text format at GET /metrics. Plain object
// fields: an increment on the hot path is one property write.
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
  /** Set by the composition root: copies counters kept elsewhere into this object at scrape time. */
  onCollect: () => void = () => undefined;
  /** Set by the composition root: extra gauges read at scrape time. */
  gauges: () => Record<string, number> = () => ({});

  count(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  render(): string {
    this.onCollect();
    const lines: string[] = [];
    const counter = (name: string, help: string, v: number): void => {
      lines.push(`# HELP wsgate_${name} ${help}`, `# TYPE wsgate_${name} counter`, `wsgate_${name} ${v}`);
    };
    const labelled = (name: string, help: string, label: string, m: Map<string, number>): void => {
      lines.push(`# HELP wsgate_${name} ${help}`, `# TYPE wsgate_${name} counter`);
      for (const [k, v] of m) lines.push(`wsgate_${name}{${label}="${k}"} ${v}`);
    };
    counter('upgrades_accepted_total', 'Upgrades accepted.', this.upgradesAccepted);
    labelled('upgrades_refused_total', 'Upgrades refused, by refusal code.', 'code', this.refusals);
    labelled('auth_failures_total', 'Token verification failures, by reason.', 'reason', this.authFailures);
    counter('upgrades_aborted_total', 'Upgrades aborted by the client during authentication.', this.upgradesAborted);
    counter('upgrades_closed_by_uws_total', 'Sockets uWS closed right after an async upgrade (uWebSockets #1928; the client sees 1006 after its connected frame and reconnects).', this.upgradesClosedByUws);
    counter('revocation_fail_open_total', 'Upgrades accepted because Redis could not answer (fail-open mode).', this.revocationFailOpen);
    counter('connections_opened_total', 'WebSocket connections opened.', this.connectionsOpen);
    counter('connections_closed_total', 'WebSocket connections closed.', this.connectionsClosed);
    counter('messages_in_total', 'Frames received.', this.messagesIn);
    counter('messages_out_total', 'Frames sent directly (replies, pushes).', this.messagesOut);
    counter('reply_errors_total', 'Reply errors sent.', this.replyErrors);
    counter('publishes_total', 'Messages published to rooms.', this.publishes);
    counter('backpressure_drops_total', 'Direct sends dropped by backpressure.', this.backpressureDrops);
    counter('slow_consumer_closes_total', 'Connections closed with 4501: more than half the backpressure limit buffered at a sweep.', this.slowConsumerCloses);
    counter('rate_limited_total', 'Requests answered RATE_LIMITED.', this.rateLimited);
    counter('rate_limit_closes_total', 'Connections closed with 4502 for flooding.', this.rateLimitCloses);
    counter('token_refreshes_total', 'Successful token refreshes.', this.tokenRefreshes);
    counter('token_expired_closes_total', 'Connections closed at token expiry.', this.tokenExpiredCloses);
    counter('revoked_closes_total', 'Open connections closed with 4003 because their token was revoked.', this.revokedCloses);
    counter('store_flush_failures_total', 'Registry/presence flushes that failed (retried).', this.flushFailures);
    labelled('internal_errors_total', 'Failures contained inside the gateway, by where they happened (each closed one socket with 1011, answered one upgrade with 500, or skipped one timer tick).', 'where', this.internalErrors);
    labelled('frames_rejected_total', 'Frames the decoder refused (BAD_REQUEST / UNKNOWN_TYPE), by reason.', 'reason', this.framesRejected);
    labelled('pending_sockets_refused_total', 'Sockets closed before completing an upgrade because a pending-socket bound was reached, by bound.', 'bound', this.pendingRefused);
    labelled('protocol_drops_total', 'Connections uWS dropped without a close frame (the client sees 1006), by reason: invalid-utf8, too-big, idle-timeout, bad-frame.', 'reason', this.protocolDrops);
    counter('bus_publish_failures_total', 'Cross-node publishes that could not be sent (Redis away).', this.busPublishFailures);
    counter('bus_malformed_total', 'Cross-node envelopes dropped as malformed.', this.busMalformed);
    counter('bus_received_bytes_total', 'Bytes of cross-node payloads this node received (its own echoes included).', this.busReceivedBytes);
    counter('bus_foreign_bytes_total', 'Bytes of cross-node payloads received for rooms without a member on this node (0 with WSGATE_BUS_CHANNELS=room).', this.busForeignBytes);
    counter('presence_overflows_total', 'Times the buffered presence changes exceeded WSGATE_PRESENCE_MAX_PENDING and were replaced by a full rewrite.', this.presenceOverflows);
    counter('registry_overflows_total', 'Times the buffered registry changes exceeded WSGATE_REGISTRY_MAX_PENDING and were replaced by a full rewrite.', this.registryOverflows);
    for (const [k, v] of Object.entries(this.gauges())) {
      lines.push(`# TYPE wsgate_${k} gauge`, `wsgate_${k} ${v}`);
    }
    return lines.join('\n') + '\n';
  }
}
