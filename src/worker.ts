// Process entry of one worker (started by src/supervisor/supervisor.ts over an IPC channel): a whole
// gateway with the configuration the supervisor sends (its node id, the shared port), linked to the
// supervisor's in-host store. Signals are the supervisor's to handle: SIGINT (Ctrl-C reaches every
// process of the terminal's group) and SIGHUP are ignored here; SIGTERM sent to this process alone
// drains it. If the supervisor goes away (IPC channel or in-host link closed), the worker stops.
import { start, type Running } from './main.js';
import { createLogger } from './observability/logger.js';
import type { FromWorker, ToWorker } from './supervisor/messages.js';

if (!process.send) {
  process.stderr.write('wsgate worker: start wsgate itself (dist/src/cli.js); workers are started by its supervisor\n');
  process.exit(2);
}

const send = (m: FromWorker): void => {
  // A supervisor that died breaks the channel between this check and the write (EPIPE): the
  // 'disconnect' handler stops the worker, so the error is only dropped, not an uncaught exception.
  if (process.connected) process.send!(m, undefined, {}, () => undefined);
};

let running: Running | undefined;
let gatherSeq = 0;
const gathering = new Map<number, (body: unknown) => void>();

/** The host's view, asked of the supervisor; this worker's own when it does not answer. */
function gather<T>(what: 'health' | 'metrics', own: () => T | Promise<T>): Promise<T> {
  const id = ++gatherSeq;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      gathering.delete(id);
      Promise.resolve().then(own).then(resolve, reject);
    }, 3000);
    gathering.set(id, (body) => {
      clearTimeout(timer);
      gathering.delete(id);
      resolve(body as T);
    });
    send({ t: 'gather', id, what });
  });
}

// The host's view: callers here join the ask in flight (one IPC round trip at a time, the answer
// shared); the supervisor shares and rate-limits the collections themselves (core/fresh-shared.ts),
// so a caller waits for one collection, not for one here and then one there.
function joined<T>(ask: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () =>
    (inFlight ??= ask().finally(() => {
      inFlight = undefined;
    }));
}
const hostHealth = joined(() => gather('health', () => running!.health()));
const hostMetrics = joined(() => gather('metrics', () => running!.metrics.render()));

let exiting = false;
function exit(code: number): void {
  if (exiting) return;
  exiting = true;
  if (running?.drained) send({ t: 'drained', report: running.drained });
  // Let the last IPC message leave before the process ends.
  setImmediate(() => process.exit(code));
}

function stopNow(why: string): void {
  process.stderr.write(`wsgate worker ${running?.config.nodeId ?? process.pid}: ${why}, stopping\n`);
  setTimeout(() => process.exit(1), 10_000).unref();
  (running ? running.stop() : Promise.resolve()).finally(() => exit(0));
}

process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);
process.on('SIGTERM', () => {
  if (!running) process.exit(0);
  setTimeout(() => process.exit(1), (running.config.drainGraceSec + running.config.drainSec) * 1000 + 10_000).unref();
  running.drain().then(() => exit(0), () => exit(1));
});
process.on('disconnect', () => stopNow('supervisor gone'));

process.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'start': {
      const config = Object.freeze({ ...m.config });
      const logger = createLogger(config.logLevel).child({ node: config.nodeId });
      start(config, {
        logger,
        onDrainRequest: (plan) => send({ t: 'drain-host', graceSec: plan.graceSec, spreadSec: plan.spreadSec }),
        worker: {
          hostPath: m.hostPath,
          health: hostHealth,
          metricsText: hostMetrics,
        },
      }).then(
        (r) => {
          running = r;
          r.hostLink?.onClose(() => stopNow('in-host link closed'));
          installPolicy(r);
          send({ t: 'listening', port: r.port });
        },
        (err: unknown) => {
          process.stderr.write(`wsgate worker ${config.nodeId}: failed to start: ${(err as Error).stack ?? String(err)}\n`);
          process.exit(1);
        },
      );
      return;
    }
    case 'drain': {
      if (!running) return exit(0);
      const r = running;
      setTimeout(() => process.exit(1), (m.graceSec + m.spreadSec) * 1000 + 10_000).unref();
      r.drain({ graceSec: m.graceSec, spreadSec: m.spreadSec }).then(() => exit(0), () => exit(1));
      return;
    }
    case 'collect':
      if (running) {
        const r = running;
        r.metrics.render().then(
          (metrics) => send({ t: 'collected', id: m.id, health: r.health(), metrics }),
          () => send({ t: 'collected', id: m.id, health: r.health(), metrics: '' }),
        );
      }
      return;
    case 'gathered':
      gathering.get(m.id)?.(m.body);
      return;
  }
});

/** The process-level policy of src/cli.ts (docs/SECURITY.md#containment); the supervisor restarts this worker. */
function installPolicy(r: Running): void {
  process.on('unhandledRejection', (reason) => r.faults.report('unhandled-rejection', reason));
  process.on('uncaughtException', (err) => {
    r.faults.report('uncaught-exception', err);
    if (exiting) process.exit(1);
    process.stderr.write(`wsgate worker ${r.config.nodeId}: uncaught exception, stopping\n`);
    setTimeout(() => process.exit(1), 10_000).unref();
    r.stop().finally(() => {
      exiting = true;
      process.exit(1);
    });
  });
}
