// The uWS apps of this node and what each socket carries. Normally there is one app. A TLS reload
// (SIGHUP, server/gateway.ts) starts a new SSLApp with the new certificate on the same port
// (SO_REUSEPORT) and closes the old app's listen socket: the old app keeps serving the sockets it
// holds until they close, then it is dropped from here. uWS keeps pub/sub topics per app, so a
// publish goes to every app that still holds sockets (one app: one publish, as before).
import type { Session } from '../core/hub.js';
import type { RefusalKind } from '../errors/codes.js';
import type { TemplatedApp, WebSocket, us_listen_socket } from './uws.js';

/** One app: its listen socket while it listens, and the sockets it holds. */
export interface AppSlot {
  readonly app: TemplatedApp;
  /** 1 for the first app, +1 per reload */
  readonly generation: number;
  listenSocket: us_listen_socket | undefined;
  /** open WebSockets on this app */
  sockets: number;
}

/**
 * What uWS keeps per socket: the refusal (close mode) or the core's session, and the app. uWS hands
 * open and close a shallow copy of this object: state that both must see lives in the session.
 */
export interface SocketData {
  readonly refusal: RefusalKind | undefined;
  conn: Session<WebSocket<SocketData>> | undefined;
  /** Async upgrades: the connected frame, encoded before res.cork; open only sends it. */
  readonly connected: Buffer | undefined;
  readonly app: AppSlot;
}

export class Apps {
  private slots: AppSlot[] = [];
  private generation = 0;

  /** A new app; it becomes the current one (the one listening). */
  add(app: TemplatedApp): AppSlot {
    const slot: AppSlot = { app, generation: ++this.generation, listenSocket: undefined, sockets: 0 };
    this.slots.push(slot);
    return slot;
  }

  /** The newest app. */
  get current(): AppSlot | undefined {
    return this.slots[this.slots.length - 1];
  }

  /** Apps still here: the current one and older ones that hold sockets. */
  get size(): number {
    return this.slots.length;
  }

  opened(slot: AppSlot): void {
    slot.sockets++;
  }

  closed(slot: AppSlot): void {
    slot.sockets--;
    this.prune(slot);
  }

  /** An app that no longer listens and holds no socket has nothing to publish to. */
  prune(slot: AppSlot): void {
    if (slot.sockets > 0 || slot.listenSocket !== undefined || slot === this.current) return;
    this.slots = this.slots.filter((s) => s !== slot);
  }

  all(): readonly AppSlot[] {
    return this.slots;
  }

  /** An app that never listened (its reload failed): forgotten; the one before it is current again. */
  abandon(slot: AppSlot): void {
    this.slots = this.slots.filter((s) => s !== slot);
  }

  /** Every app older than the current one (their listen sockets are to be closed). */
  older(): AppSlot[] {
    return this.slots.slice(0, -1);
  }

  /**
   * Publishes to every subscriber of `topic` on every app, except `exclude`. ws.publish reaches every
   * subscriber of the socket's app but the socket itself; uWS v20.30 delivers nothing from a socket
   * that is not subscribed, so it is used only when the sender is.
   */
  publish(topic: string, data: string | Buffer, binary: boolean, exclude: WebSocket<SocketData> | undefined): void {
    const slots = this.slots;
    if (slots.length === 1) {
      if (exclude !== undefined && exclude.isSubscribed(topic)) exclude.publish(topic, data, binary);
      else slots[0]!.app.publish(topic, data, binary);
      return;
    }
    const own = exclude?.getUserData().app;
    for (const slot of slots) {
      if (slot === own && exclude!.isSubscribed(topic)) exclude!.publish(topic, data, binary);
      else slot.app.publish(topic, data, binary);
    }
  }
}
