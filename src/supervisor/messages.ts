// What a supervisor and its workers say to each other over the worker's IPC channel (the control
// plane; the data plane, stores and Bus, is the in-host link: stores/host/).
import type { Config } from '../config/config.js';
import type { DrainReport } from '../server/drain.js';

export type ToWorker =
  /** Start the gateway with this configuration (its own node id, the port chosen by the supervisor). */
  | { readonly t: 'start'; readonly config: Config; readonly hostPath: string }
  /** Drain (graceSec 0 and spreadSec 0: stop at once, or hurry a drain under way). */
  | { readonly t: 'drain'; readonly graceSec: number; readonly spreadSec: number }
  /** Answer with this worker's own health and metrics ('collected'). */
  | { readonly t: 'collect'; readonly id: number }
  /** The answer to a worker's 'gather': the whole host's health or metrics. */
  | { readonly t: 'gathered'; readonly id: number; readonly body: unknown };

export type FromWorker =
  | { readonly t: 'listening'; readonly port: number }
  | { readonly t: 'collected'; readonly id: number; readonly health: Record<string, unknown>; readonly metrics: string }
  /** GET /healthz or /metrics reached this worker: the host's view is asked for. */
  | { readonly t: 'gather'; readonly id: number; readonly what: 'health' | 'metrics' }
  | { readonly t: 'drained'; readonly report: DrainReport }
  /** POST /v1/drain reached this worker: drain the whole host (the supervisor's caller decides). */
  | { readonly t: 'drain-host'; readonly graceSec: number; readonly spreadSec: number };
