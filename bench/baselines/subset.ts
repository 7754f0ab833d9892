// The subset of wsgate's JSON protocol the bench speaks (join, publish, token:refresh, ping), as the
// uWS-based baselines answer it: one implementation, so the bare and the naive baseline answer alike.
// Per-server choices come through one hooks object taking the socket's user data (no per-socket
// closures: they would add to the memory per connection that `hold` compares).
import type { TemplatedApp, WebSocket } from '../../src/server/uws.js';

export interface SubsetHooks<D> {
  /** uWS topic of a room for this socket */
  topic(data: D, room: string): string;
  /** `from` of the messages this socket publishes */
  from(data: D): string;
  /** token:refresh: undefined when accepted, else the reply error code */
  refresh(data: D, token: string): string | undefined;
}

export function answer<D>(app: TemplatedApp, ws: WebSocket<D>, message: ArrayBuffer, hooks: SubsetHooks<D>): void {
  let m: { id?: number; type?: string; rooms?: string[]; room?: string; data?: unknown; token?: string };
  try {
    m = JSON.parse(Buffer.from(message).toString()) as typeof m;
  } catch {
    return;
  }
  const data = ws.getUserData();
  switch (m.type) {
    case 'join':
      for (const r of m.rooms ?? []) ws.subscribe(hooks.topic(data, r));
      ws.send(JSON.stringify({ type: 'ack', ref: m.id, result: { rooms: m.rooms } }), false);
      return;
    case 'publish': {
      const ts = Date.now();
      const topic = hooks.topic(data, m.room ?? '');
      const msg = JSON.stringify({ type: 'message', room: m.room, data: m.data, from: hooks.from(data), ts });
      // As wsgate without echo: every member but the sender.
      if (ws.isSubscribed(topic)) ws.publish(topic, msg, false);
      else app.publish(topic, msg, false);
      ws.send(JSON.stringify({ type: 'ack', ref: m.id, result: { ts } }), false);
      return;
    }
    case 'token:refresh': {
      const code = hooks.refresh(data, m.token ?? '');
      ws.send(JSON.stringify(code ? { type: 'error', ref: m.id, code, message: code } : { type: 'token:refreshed', ref: m.id }), false);
      return;
    }
    default:
      ws.send(JSON.stringify({ type: 'ack', ref: m.id, result: { ts: Date.now() } }), false);
  }
}
