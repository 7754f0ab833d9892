// Starts the gateway in this process on a free port with test configuration.
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/config.js';
import { start, type Running, type StartOptions } from '../../src/main.js';
import { createLogger, logBindings } from '../../src/observability/logger.js';
import { SECRET } from './tokens.js';

export interface TestGateway extends Running {
  readonly url: string;
  readonly http: string;
  /** Everything the gateway logged, one JSON line each. */
  readonly logs: string[];
}

let seq = 0;

export async function startGateway(env: Record<string, string> = {}, options: StartOptions = {}): Promise<TestGateway> {
  const config = loadConfig({
    WSGATE_PORT: '0',
    WSGATE_HOST: '127.0.0.1',
    WSGATE_JWT_SECRET: SECRET,
    WSGATE_NODE_ID: `test-${process.pid}-${++seq}`,
    WSGATE_KEY_PREFIX: `t${process.pid}x${seq}:`,
    WSGATE_REGISTRY_FLUSH_MS: '50',
    WSGATE_PRESENCE_FLUSH_MS: '50',
    WSGATE_LOG_LEVEL: 'debug',
    // Every test client connects from 127.0.0.1: the per-address bound on pending sockets is
    // raised here and exercised by the tests that are about it (test/integration/pending.test.ts).
    WSGATE_MAX_PENDING_PER_ADDRESS: '100000',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const running = await start(config, { logger: createLogger(config.logLevel, sink, logBindings(config)), ...options });
  const tls = config.tlsCertFile !== undefined;
  return Object.assign(running, { url: `${tls ? 'wss' : 'ws'}://127.0.0.1:${running.port}/ws`, http: `${tls ? 'https' : 'http'}://127.0.0.1:${running.port}`, logs });
}

