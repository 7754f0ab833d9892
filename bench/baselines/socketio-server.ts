// Baseline: the seed flow (../shared/seed/socket-authentication-flow.md) as written, on
// Socket.IO 4 with its middleware, fast-jwt and ioredis: verify the token, GET revoked:<jti>,
// attach the user context, rooms per tenant, token:refresh with the seed's callbacks.
import { createServer } from 'node:http';
import { createVerifier } from 'fast-jwt';
import { Redis } from 'ioredis';
import { Server, type Socket } from 'socket.io';

const secret = process.env.WSGATE_JWT_SECRET!;
const redisUrl = process.env.WSGATE_REDIS_URL;
const redis = redisUrl ? new Redis(redisUrl) : undefined;
const verifyToken = createVerifier({ key: secret, algorithms: ['HS256'], cache: 100_000, requiredClaims: ['sub', 'tenant_id', 'jti', 'exp'] });

interface Ctx { userId: string; tenantId: string; permissions: string[]; tokenExp: number }
const ctx = (s: Socket): Ctx => s.data as Ctx;

const http = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.setHeader('content-type', 'application/json');
    res.end('{"status":"ok"}');
  }
});
const io = new Server(http, { transports: ['websocket'], serveClient: false, maxHttpBufferSize: 64 * 1024 });

io.use(async (socket, next) => {
  try {
    const token = (socket.handshake.auth as { token?: string }).token;
    if (!token) return next(new Error('No token provided'));
    const decoded = verifyToken(token) as { sub: string; tenant_id: string; jti: string; permissions: string[]; exp: number };
    const isRevoked = redis ? await redis.get(`revoked:${decoded.jti}`) : null;
    if (isRevoked) return next(new Error('Token revoked'));
    socket.data = { userId: decoded.sub, tenantId: decoded.tenant_id, permissions: decoded.permissions, tokenExp: decoded.exp } satisfies Ctx;
    next();
  } catch {
    next(new Error('Authentication failed'));
  }
});

io.on('connection', (socket) => {
  const room = (name: string): string => `${ctx(socket).tenantId}:${name}`;
  socket.on('join', (name: string, cb?: (r: unknown) => void) => {
    void socket.join(room(name));
    cb?.({ rooms: [name] });
  });
  socket.on('publish', (m: { room: string; data: unknown }, cb?: (r: unknown) => void) => {
    const ts = Date.now();
    socket.to(room(m.room)).emit('message', { room: m.room, data: m.data, from: ctx(socket).userId, ts });
    cb?.({ ts });
  });
  socket.on('ping', (cb?: (r: unknown) => void) => cb?.({ ts: Date.now() }));
  socket.on('token:refresh', async (newToken: string, callback: (r: unknown) => void) => {
    try {
      const decoded = verifyToken(newToken) as { sub: string; permissions: string[]; exp: number };
      if (decoded.sub !== ctx(socket).userId) return callback({ error: 'User mismatch' });
      ctx(socket).permissions = decoded.permissions;
      ctx(socket).tokenExp = decoded.exp;
      callback({ success: true });
    } catch {
      callback({ error: 'Invalid token' });
      socket.disconnect();
    }
  });
});

http.listen(Number(process.env.WSGATE_PORT ?? 0), process.env.WSGATE_HOST ?? '127.0.0.1', () => {
  const addr = http.address() as { port: number };
  process.stdout.write(JSON.stringify({ msg: 'baseline socketio listening', port: addr.port }) + '\n');
});
process.on('SIGTERM', () => {
  redis?.disconnect();
  process.exit(0);
});
