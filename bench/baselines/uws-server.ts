// Baseline: bare uWebSockets.js (the same build wsgate loads), no authentication, the same
// room topics, speaking the subset of wsgate's JSON protocol the bench uses. What wsgate costs
// on top of uWS is the ratio of the two.
import { loadUws } from '../../src/server/uws.js';

const { uws, info } = loadUws();
const app = uws.App();
let seq = 0;
interface Data { id: number }

app.ws<Data>('/ws', {
  compression: uws.DISABLED,
  maxPayloadLength: 64 * 1024,
  idleTimeout: 960,
  maxBackpressure: 64 * 1024 * 1024,
  upgrade: (res, req, context) => {
    res.upgrade({ id: ++seq }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol') === '' ? '' : 'wsgate.v1.json', req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => {
    ws.send(JSON.stringify({ type: 'connected', connectionId: String(ws.getUserData().id) }), false);
  },
  message: (ws, message) => {
    let m: { id?: number; type?: string; rooms?: string[]; room?: string; data?: unknown };
    try {
      m = JSON.parse(Buffer.from(message).toString()) as typeof m;
    } catch {
      return;
    }
    switch (m.type) {
      case 'join':
        for (const r of m.rooms ?? []) ws.subscribe(r);
        ws.send(JSON.stringify({ type: 'ack', ref: m.id, result: { rooms: m.rooms } }), false);
        return;
      case 'publish': {
        const ts = Date.now();
        const msg = JSON.stringify({ type: 'message', room: m.room, data: m.data, from: 'anon', ts });
        // As wsgate without echo: every member but the sender.
        if (ws.isSubscribed(m.room!)) ws.publish(m.room!, msg, false);
        else app.publish(m.room!, msg, false);
        ws.send(JSON.stringify({ type: 'ack', ref: m.id, result: { ts } }), false);
        return;
      }
      case 'token:refresh':
        ws.send(JSON.stringify({ type: 'token:refreshed', ref: m.id }), false);
        return;
      default:
        ws.send(JSON.stringify({ type: 'ack', ref: m.id, result: { ts: Date.now() } }), false);
    }
  },
});
app.get('/healthz', (res) => {
  res.writeHeader('content-type', 'application/json').end('{"status":"ok"}');
});
app.listen(process.env.WSGATE_HOST ?? '127.0.0.1', Number(process.env.WSGATE_PORT ?? 0), (s) => {
  if (!s) process.exit(1);
  process.stdout.write(JSON.stringify({ msg: 'uWebSockets.js loaded', build: info.build, version: info.version }) + '\n');
  process.stdout.write(JSON.stringify({ msg: 'baseline uws listening', port: uws.us_socket_local_port(s) }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
