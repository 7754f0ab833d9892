// The tests start their own redis-server per file (bench/lib/redis-server.ts), never the machine's.
import { startRedisServer, type RedisServer } from '../../bench/lib/redis-server.js';

export { freePort } from '../../bench/lib/redis-server.js';
export type TestRedis = RedisServer;
export const startRedis = startRedisServer;
