// The logger (pino), created by the composition root and passed in. Every line carries the node id
// (and the worker, when the configuration has one) as pino base bindings. Token-bearing fields are
// redacted as a second line of defence; the code never logs a token in the first place
// (test/integration/attacks.test.ts greps the output).
import { pino, type Logger } from 'pino';

export type { Logger };

/** What every log line of a process carries. */
export interface LogBindings {
  readonly node: string;
  readonly worker?: number | string;
}

/** The bindings of a configuration: its node id, and its worker when it has one. */
export function logBindings(config: { readonly nodeId: string; readonly worker?: number | string }): LogBindings {
  return config.worker === undefined ? { node: config.nodeId } : { node: config.nodeId, worker: config.worker };
}

export function createLogger(level: string, destination?: NodeJS.WritableStream, bindings?: LogBindings): Logger {
  return pino(
    {
      level,
      // pino's default base (pid, hostname) is replaced: the node id names the process.
      base: bindings === undefined ? undefined : { ...bindings },
      redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'cookie', '*.cookie', 'headers'], censor: '[redacted]' },
    },
    destination as never,
  );
}
