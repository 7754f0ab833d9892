// Baseline: the naive gateway, what a careful first version on uWebSockets.js looks like: the
// uWS async upgrade done right (examples/UpgradeAsync.js), fast-jwt *without* a verifier cache,
// one Redis `GET revoked:<jti>` per upgrade (ioredis auto-pipelining), tenant-scoped topics, the
// bench's protocol subset. No registry, presence, caps or rate limits. wsgate / naive is what
// wsgate's design (cache, batched revocation lookups) buys over it.
import { createVerifier } from 'fast-jwt';
import { Redis } from 'ioredis';
import { loadUws } from '../../src/server/uws.js';
import { answer, type SubsetHooks } from './subset.js';

interface Claims { sub: string; tenant_id: string; jti: string }
interface Data { id: number; sub: string; tenant: string }

const { uws, info } = loadUws();
const verify = createVerifier({ key: process.env.WSGATE_JWT_SECRET!, algorithms: ['HS256'], requiredClaims: ['sub', 'tenant_id', 'jti', 'exp'] });
if (!process.env.WSGATE_REDIS_URL) throw new Error('the naive baseline needs WSGATE_REDIS_URL');
const redis = new Redis(process.env.WSGATE_REDIS_URL, { enableAutoPipelining: true });
const app = uws.App();
let seq = 0;
const hooks: SubsetHooks<Data> = {
  topic: (d, room) => `${d.tenant}:${room}`,
  from: (d) => d.sub,
  refresh: (d, token) => {
    try {
      return (verify(token) as Claims).sub === d.sub ? undefined : 'FORBIDDEN';
    } catch {
      return 'AUTH_FAILED';
    }
  },
};
const refusal = (code: string, error: string): string => JSON.stringify({ error, code });

app.ws<Data>('/ws', {
  compression: uws.DISABLED,
  maxPayloadLength: 64 * 1024,
  idleTimeout: 960,
  maxBackpressure: 64 * 1024 * 1024,
  upgrade: (res, req, context) => {
    // The request lives only during this call: copy what is needed, then attach onAborted before the await.
    const key = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const auth = req.getHeader('authorization');
    let aborted = false;
    res.onAborted(() => (aborted = true));
    let claims: Claims;
    try {
      claims = verify(auth.startsWith('Bearer ') ? auth.slice(7) : auth) as Claims;
    } catch {
      res.writeStatus('401 Unauthorized').end(refusal('AUTH_FAILED', 'Authentication failed'));
      return;
    }
    redis.get(`revoked:${claims.jti}`).then(
      (revoked) => {
        if (aborted) return;
        res.cork(() => {
          if (revoked !== null) res.writeStatus('401 Unauthorized').end(refusal('TOKEN_REVOKED', 'Token revoked'));
          else res.upgrade<Data>({ id: ++seq, sub: claims.sub, tenant: claims.tenant_id }, key, protocol === '' ? '' : 'wsgate.v1.json', extensions, context);
        });
      },
      () => {
        if (!aborted) res.cork(() => res.writeStatus('503 Service Unavailable').end(refusal('UNAVAILABLE', 'Service unavailable')));
      },
    );
  },
  // open runs inside the response's cork after the await: the first frame leaves with the 101
  // (docs/UWS-1928.md: deferring it costs a second send and saves nothing).
  open: (ws) => {
    ws.send(JSON.stringify({ type: 'connected', connectionId: String(ws.getUserData().id) }), false);
  },
  message: (ws, message) => answer(app, ws, message, hooks),
});
app.get('/healthz', (res) => {
  res.writeHeader('content-type', 'application/json').end('{"status":"ok"}');
});
app.listen(process.env.WSGATE_HOST ?? '127.0.0.1', Number(process.env.WSGATE_PORT ?? 0), (s) => {
  if (!s) process.exit(1);
  process.stdout.write(JSON.stringify({ msg: 'uWebSockets.js loaded', build: info.build, version: info.version }) + '\n');
  process.stdout.write(JSON.stringify({ msg: 'baseline naive listening', port: uws.us_socket_local_port(s) }) + '\n');
});
process.on('SIGTERM', () => {
  redis.disconnect();
  process.exit(0);
});
