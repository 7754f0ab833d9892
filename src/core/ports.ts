// What the core needs from the outside, as small ports: sockets (implemented over uWS in
// server/uws-port.ts, over fakes in test/unit/core), fault reporting (observability/faults.ts) and
// the connection-cap admission.
import type { RefusalKind } from '../errors/codes.js';

/** How the core reaches sockets. */
export interface SocketPort<S> {
  /** Returns 1 sent, 0 buffered (backpressure), 2 dropped. */
  send(socket: S, data: string | Buffer, binary: boolean): number;
  subscribe(socket: S, topic: string): void;
  unsubscribe(socket: S, topic: string): void;
  end(socket: S, code: number, reason: string): void;
  /** Publishes to every subscriber of `topic`, except `exclude` when given. */
  publish(topic: string, data: string | Buffer, binary: boolean, exclude?: S): void;
  /** Runs `fn` with the socket corked (one syscall for its sends); for sends outside a socket callback. */
  cork(socket: S, fn: () => void): void;
  /** Bytes buffered for the socket (backpressure). */
  buffered(socket: S): number;
}

/**
 * Where failures that escaped a handler go: counted (wsgate_internal_errors_total{where}) and
 * logged with their stack (rate limited). Never throws.
 */
export interface Faults {
  report(where: string, err: unknown): void;
}

/**
 * Connection caps counted outside this process: with workers, the per-user, per-tenant and
 * configured total caps count every worker of the host (stores/host/stores.ts asks the host). A
 * single process counts them itself (core/sessions.ts) and has none.
 */
export interface Admission {
  /** Counts one connection of the user if the caps allow it: undefined = admitted (release it later), else the refusal. */
  acquire(tenant: string, user: string): Promise<RefusalKind | undefined>;
  release(tenant: string, user: string): void;
}
