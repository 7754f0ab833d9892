// A typed event emitter of one-argument events, the same in browsers and Node. A throwing
// listener does not stop the others or the client: its error is rethrown on a fresh task.

export class Emitter<Events> {
  private readonly listeners = new Map<keyof Events, Set<(e: never) => void>>();

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: (e: Events[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Adds a listener that runs once. */
  once<K extends keyof Events>(event: K, listener: (e: Events[K]) => void): () => void {
    const off = this.on(event, (e) => {
      off();
      listener(e);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, listener: (e: Events[K]) => void): void {
    this.listeners.get(event)?.delete(listener);
  }

  /** Number of listeners of an event. */
  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  protected emit<K extends keyof Events>(event: K, e: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as (e: Events[K]) => void)(e);
      } catch (err) {
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
}
