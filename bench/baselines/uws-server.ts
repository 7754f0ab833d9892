// Baseline: bare uWebSockets.js (the same build wsgate loads), no authentication, the same
// room topics, speaking the subset of wsgate's JSON protocol the bench uses. What wsgate costs
// on top of uWS is the ratio of the two. It also answers the server API paths the http scenario
// drives (docs/API.md) with the JSON wsgate gives on a fresh node, from a constant: no auth, no bus.
import { hostname } from 'node:os';
import { loadUws } from '../../src/server/uws.js';
import { answer, type SubsetHooks } from './subset.js';

const { uws, info } = loadUws();
// --tls runs: the same certificate files wsgate gets
const cert = process.env.WSGATE_TLS_CERT_FILE;
const key = process.env.WSGATE_TLS_KEY_FILE;
const app = cert && key ? uws.SSLApp({ cert_file_name: cert, key_file_name: key }) : uws.App();
let seq = 0;
interface Data { id: number }
const hooks: SubsetHooks<Data> = { topic: (_d, room) => room, from: () => 'anon', refresh: () => undefined };

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
  message: (ws, message) => answer(app, ws, message, hooks),
});
app.get('/healthz', (res) => {
  res.writeHeader('content-type', 'application/json').end('{"status":"ok"}');
});
// A node id as long as wsgate's default (hostname-pid-6 hex digits), so the bodies have the same size.
const counts = JSON.stringify({ total: 0, nodes: { [`${hostname()}-${process.pid}-000000`]: 0 }, tenants: {}, truncated: false, missing: [], complete: true });
const presence = JSON.stringify({ tenant: 'bench', room: 'r/0', users: [] });
app.get('/v1/connections/counts', (res) => {
  res.writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(counts);
});
app.get('/v1/rooms/presence', (res) => {
  res.writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(presence);
});
app.listen(process.env.WSGATE_HOST ?? '127.0.0.1', Number(process.env.WSGATE_PORT ?? 0), (s) => {
  if (!s) process.exit(1);
  process.stdout.write(JSON.stringify({ msg: 'uWebSockets.js loaded', build: info.build, version: info.version }) + '\n');
  process.stdout.write(JSON.stringify({ msg: 'baseline uws listening', port: uws.us_socket_local_port(s) }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
