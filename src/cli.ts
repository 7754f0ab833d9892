#!/usr/bin/env node
// Process entry: configuration from the environment and flags, a generated development
// secret when no key is configured, signals for graceful shutdown.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError, helpText, loadConfig, wantsHelp, type Config } from './config/config.js';
import { start } from './main.js';
import { createLogger } from './observability/logger.js';
import type { DrainPlan } from './server/drain.js';
import { TlsError } from './server/tls.js';
import { UwsLoadError } from './server/uws.js';
import { workerCount } from './supervisor/cores.js';
import { Supervisor } from './supervisor/supervisor.js';

const argv = process.argv.slice(2);
if (wantsHelp(argv)) {
  process.stdout.write(helpText());
  process.exit(0);
}

let config: Config;
try {
  config = loadConfig(process.env, argv, { nodeId: `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}` });
} catch (e) {
  if (e instanceof ConfigError) {
    process.stderr.write(`wsgate: ${e.message}\nRun with --help for every option.\n`);
    process.exit(2);
  }
  throw e;
}

if (config.jwtSecrets.length === 0 && config.jwtPublicKeyFiles.length === 0 && !config.jwksUrl) {
  // Never run with a guessable secret: generate one for this process only.
  const secret = randomBytes(32).toString('base64url');
  config = Object.freeze({ ...config, jwtSecrets: [secret] });
  process.stderr.write(
    'wsgate: no token key configured (WSGATE_JWT_SECRET, WSGATE_JWT_PUBLIC_KEY_FILE or WSGATE_JWKS_URL);\n' +
      '        generated a random HS256 secret for this process. Mint a development token with:\n\n' +
      `    WSGATE_JWT_SECRET=${secret} npm run token -- --sub alice --tenant acme\n\n`,
  );
}

const workers = workerCount(config.workers);
if (workers > 1) await supervise(config, workers);
else await single(config);

/**
 * WSGATE_WORKERS > 1: this process supervises the workers (docs/WORKERS.md). SIGTERM drains them all;
 * SIGINT stops them at once; SIGHUP restarts them one at a time; a second SIGTERM/SIGINT hurries,
 * a third exits. Exit status 0 after a drain; 1 when the workers cannot be kept alive.
 */
async function supervise(config: Config, workers: number): Promise<void> {
  const logger = createLogger(config.logLevel).child({ node: config.nodeId, role: 'supervisor' });
  let fatal = false;
  let signals = 0;
  const supervisor: Supervisor = new Supervisor({
    config,
    workers,
    logger,
    onFatal: (reason) => {
      fatal = true;
      process.stderr.write(`wsgate: ${reason}; stopping\n`);
      void supervisor.drain().finally(() => process.exit(1));
    },
    // POST /v1/drain reached a worker: the whole host drains, as on SIGTERM, with the plan asked for
    onDrainRequest: (plan) => {
      if (++signals > 1) return;
      logger.info({ ...plan }, 'drain asked through the server API: draining every worker');
      setTimeout(() => process.exit(1), (plan.graceSec + plan.spreadSec) * 1000 + 15_000).unref();
      supervisor.drain(plan).then(
        () => process.exit(fatal ? 1 : 0),
        () => process.exit(1),
      );
    },
  });
  try {
    await supervisor.start();
  } catch (e) {
    process.stderr.write(`wsgate: failed to start: ${(e as Error).message}\n`);
    process.exit(1);
  }
  const onSignal = (sig: string): void => {
    signals++;
    if (signals > 2) process.exit(1);
    const graceful = sig === 'SIGTERM' && signals === 1;
    process.stderr.write(`wsgate: ${sig}, ${graceful ? `draining ${workers} workers (grace ${config.drainGraceSec} s, spread ${config.drainSec} s)` : 'stopping'}\n`);
    setTimeout(() => {
      process.stderr.write('wsgate: shutdown timed out\n');
      process.exit(1);
    }, (graceful ? config.drainGraceSec + config.drainSec : 0) * 1000 + 15_000).unref();
    (graceful ? supervisor.drain() : supervisor.stop()).then(
      () => process.exit(fatal ? 1 : 0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  // SIGHUP: the workers are restarted one at a time; each new one reads the TLS files again.
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: restarting the workers one at a time');
    void supervisor.rollingRestart();
  });
}

/** WSGATE_WORKERS=1: one process, no supervisor. */
async function single(config: Config): Promise<void> {
  try {
    let onDrainRequest: (plan: DrainPlan) => void = () => undefined;
    const running = await start(config, { onDrainRequest: (plan) => onDrainRequest(plan) });
    let signals = 0;
    // SIGTERM drains (docs/WORKERS.md#drain): readyz 503, the grace, then the connections closed
    // over WSGATE_DRAIN_SEC. SIGINT (Ctrl-C) stops without waiting. A second signal exits at once.
    const end = (graceful: boolean, plan: DrainPlan): void => {
      // Draining must not hang on a store that is gone: give up 10 s after the drain's own time.
      setTimeout(() => {
        running.logger.error('shutdown timed out');
        process.exit(1);
      }, (graceful ? plan.graceSec + plan.spreadSec : 0) * 1000 + 10_000).unref();
      (graceful ? running.drain(plan) : running.stop()).then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    const onSignal = (sig: string): void => {
      if (++signals > 1) process.exit(1);
      const graceful = sig === 'SIGTERM';
      running.logger.info({ signal: sig, ...(graceful ? { graceSec: config.drainGraceSec, drainSec: config.drainSec } : {}) }, graceful ? 'draining' : 'shutting down');
      end(graceful, { graceSec: config.drainGraceSec, spreadSec: config.drainSec });
    };
    // POST /v1/drain on the server API: as SIGTERM, with the plan asked for (a drain under way goes on)
    onDrainRequest = (plan) => {
      if (++signals > 1) return;
      end(true, plan);
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
    // SIGHUP: the TLS certificate and key files are read again; open connections keep theirs. A
    // failure is logged and counted, and the previous certificate stays.
    process.on('SIGHUP', () => {
      try {
        running.reloadTls();
      } catch {
        // logged by reloadTls
      }
    });
    // The process-level policy for what the containment inside the gateway did not catch
    // (docs/SECURITY.md#containment). Every uWS callback, timer, bus message and store continuation
    // is contained where it runs, so these fire only for a failure outside all of them (a library's
    // event emitter, say):
    // - a rejected promise nobody handles: counted and logged; the process goes on (no state was
    //   half-changed by a promise nobody waited for);
    // - an exception that unwound the stack to the event loop: counted and logged, then a graceful
    //   stop (sockets closed with 4500, reconnect) and exit status 1, so that the supervisor or the
    //   container runtime restarts a process whose state can no longer be trusted.
    process.on('unhandledRejection', (reason) => running.faults.report('unhandled-rejection', reason));
    process.on('uncaughtException', (err) => {
      running.faults.report('uncaught-exception', err);
      if (++signals > 1) process.exit(1);
      running.logger.error('uncaught exception: stopping');
      setTimeout(() => process.exit(1), 10_000).unref();
      running.stop().finally(() => process.exit(1));
    });
  } catch (e) {
    if (e instanceof UwsLoadError || e instanceof TlsError) {
      process.stderr.write(`wsgate: ${e.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`wsgate: failed to start: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  }
}
