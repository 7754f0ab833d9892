// The client's requests: ids, timeouts, and the offline queue. This keeps account only; the
// client decides what to send when, and what a reply changes (client.ts).
import type { AckResults, ClientRequest, RequestType, TokenRefreshedMessage } from '../protocol/messages.js';
import { ClientErrorCode as E, WsgateError } from './errors.js';

/** A request without its id (the client numbers requests). */
export type RequestBody = ClientRequest extends infer R ? (R extends { readonly id: unknown } ? Omit<R, 'id'> : never) : never;

/** What a request of type T resolves with: the ack's result, or the token:refreshed message. */
export type ReplyOf<T extends RequestType> = T extends keyof AckResults ? AckResults[T] : T extends 'token:refresh' ? TokenRefreshedMessage : never;

export interface Pending<L> {
  readonly id: number;
  readonly body: RequestBody;
  /** the socket (link) it was sent on; undefined while queued */
  link: L | undefined;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: WsgateError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

export class Requests<L> {
  private nextId = 1;
  private readonly byId = new Map<number, Pending<L>>();
  private readonly waiting: Array<Pending<L>> = [];

  /** @param timeoutMs a request fails with TIMEOUT this long after it is made, queued or sent */
  constructor(private readonly timeoutMs: number) {}

  /** A new request, numbered, its timeout running. */
  create(body: RequestBody, resolve: (v: unknown) => void, reject: (e: WsgateError) => void): Pending<L> {
    const id = this.nextId++;
    const timer = setTimeout(() => {
      const p = this.byId.get(id);
      if (p) this.fail(p, new WsgateError(E.TIMEOUT, `${body.type}: ${p.link ? 'no reply' : 'not sent (no connection)'} within ${this.timeoutMs} ms`, { request: body.type }));
    }, this.timeoutMs);
    const p: Pending<L> = { id, body, link: undefined, resolve, reject, timer };
    this.byId.set(id, p);
    return p;
  }

  /** Requests waiting for a connection. */
  get queued(): number {
    return this.waiting.length;
  }

  enqueue(p: Pending<L>): void {
    this.waiting.push(p);
  }

  /** Empties the queue and returns what waited, in order (still pending: the caller sends them). */
  dequeueAll(): Array<Pending<L>> {
    return this.waiting.splice(0);
  }

  /** The request a reply answers, removed; undefined when unknown (it timed out, or failed). */
  take(ref: unknown): Pending<L> | undefined {
    const p = typeof ref === 'number' ? this.byId.get(ref) : undefined;
    if (!p) return undefined;
    clearTimeout(p.timer);
    this.byId.delete(p.id);
    return p;
  }

  has(ref: unknown): boolean {
    return typeof ref === 'number' && this.byId.has(ref);
  }

  fail(p: Pending<L>, e: WsgateError): void {
    if (!this.byId.delete(p.id)) return;
    clearTimeout(p.timer);
    const i = this.waiting.indexOf(p);
    if (i >= 0) this.waiting.splice(i, 1);
    p.reject(e);
  }

  /** Fails every request sent on `link` (undefined: every request, queued ones included). */
  failAll(link: L | undefined, error: (p: Pending<L>) => WsgateError): void {
    for (const p of [...this.byId.values()]) if (link === undefined || p.link === link) this.fail(p, error(p));
  }
}
