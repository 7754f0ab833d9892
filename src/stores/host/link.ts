// The in-host link over a Unix socket: a framed socket (both ends) and the worker's end, HostLink,
// with requests matched to replies, one-way events and the Bus payloads. The host's end is
// stores/host/server.ts.
import { connect, type Socket } from 'node:net';
import { StoreUnavailable } from '../ports.js';
import { encodeBus, encodeEvent, encodeRequest, FrameReader, Kind, type Frame } from './frames.js';

/**
 * Bus frames queued for a peer that does not read (a stuck worker) beyond this are dropped and
 * counted, as Redis drops a pub/sub client past its output-buffer limit: one slow worker must not
 * grow the host's memory without bound. Requests are never dropped (they time out instead).
 */
export const MAX_QUEUED_BUS_BYTES = 64 * 1024 * 1024;

/** A socket carrying frames. Writes of one event-loop turn leave in one writev (cork until the next tick). */
export class FramedSocket {
  private corked = false;
  private closed = false;
  /** Bus frames dropped because the peer did not read (MAX_QUEUED_BUS_BYTES) */
  dropped = 0;

  constructor(
    readonly socket: Socket,
    onFrame: (f: Frame) => void,
    onClose: (err?: Error) => void,
  ) {
    const reader = new FrameReader(onFrame);
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        // A frame we cannot read (or a handler that threw): this link cannot be trusted any more.
        this.close();
        onClose(err as Error);
      }
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => {
      this.closed = true;
      onClose();
    });
  }

  get isOpen(): boolean {
    return !this.closed && !this.socket.destroyed;
  }

  write(parts: Buffer[], droppable = false): void {
    if (!this.isOpen) return;
    if (droppable && this.socket.writableLength > MAX_QUEUED_BUS_BYTES) {
      this.dropped++;
      return;
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    for (const p of parts) this.socket.write(p);
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

interface Waiting {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** A worker's end of the link. */
export class HostLink {
  private readonly framed: FramedSocket;
  private seq = 0;
  private readonly waiting = new Map<number, Waiting>();
  private busHandler: ((payload: Buffer) => void) | undefined;
  private readonly eventHandlers: Array<(value: unknown) => void> = [];
  private readonly closeHandlers: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.framed = new FramedSocket(socket, (f) => this.frame(f), () => this.closed());
  }

  /** Connects to the host's socket at `path`. */
  static connect(path: string, timeoutMs = 5000): Promise<HostLink> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`in-host link: no answer from ${path} in ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`in-host link: ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.setNoDelay?.(true);
        resolve(new HostLink(socket));
      });
    });
  }

  get isOpen(): boolean {
    return this.framed.isOpen;
  }

  /** One request, answered by the host. Rejects with StoreUnavailable when the link is down or the answer is late. */
  request<T>(op: string, args: unknown, timeoutMs = 5000): Promise<T> {
    if (!this.framed.isOpen) return Promise.reject(new StoreUnavailable('in-host link closed'));
    const id = (this.seq = (this.seq + 1) >>> 0);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new StoreUnavailable(`in-host ${op}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.framed.write(encodeRequest(id, { op, args }));
    });
  }

  /** A one-way message to the host. */
  event(value: unknown): void {
    this.framed.write(encodeEvent(value));
  }

  publish(payload: Buffer): void {
    this.framed.write(encodeBus(payload), true);
  }

  onBus(handler: (payload: Buffer) => void): void {
    this.busHandler = handler;
  }

  onEvent(handler: (value: unknown) => void): void {
    this.eventHandlers.push(handler);
  }

  onClose(handler: () => void): void {
    this.closeHandlers.push(handler);
  }

  close(): void {
    this.framed.close();
  }

  private frame(f: Frame): void {
    switch (f.kind) {
      case Kind.RES: {
        const w = this.waiting.get(f.id);
        if (!w) return; // answered after its timeout
        this.waiting.delete(f.id);
        clearTimeout(w.timer);
        if (f.ok) w.resolve(f.value);
        else w.reject(new StoreUnavailable(`in-host: ${String(f.value)}`));
        return;
      }
      case Kind.BUS:
        this.busHandler?.(f.payload);
        return;
      case Kind.EVENT:
        for (const h of this.eventHandlers) h(f.value);
        return;
      default:
        return; // a worker is never asked anything
    }
  }

  private closed(): void {
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new StoreUnavailable('in-host link closed'));
      this.waiting.delete(id);
    }
    for (const h of this.closeHandlers) h();
  }
}
