// The logger (pino), created by the composition root and passed in. Token-bearing fields are
// redacted as a second line of defence; the code never logs a token in the first place
// (test/integration/logs.test.ts greps the output).
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'cookie', '*.cookie', 'headers'], censor: '[redacted]' },
    },
    destination as never,
  );
}
