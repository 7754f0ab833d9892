// One expensive reading shared by every caller who asks while it is pending, never older than the
// request: each caller gets a reading that started after it asked. Readings start at most once per
// `minIntervalMs`, one at a time, so a flood of callers costs at most 1000 / minIntervalMs readings
// a second, however many ask (a red-team run: unauthenticated GET /healthz and /metrics with two
// workers cost 6–10 ms of host CPU each, and 64 keep-alive clients took both cores). Pure: no I/O.

export class FreshShared<T> {
  /** the reading callers who ask now will get: it has not started yet */
  private next: Promise<T> | undefined;
  /** the reading in progress */
  private running: Promise<unknown> | undefined;
  private lastStart = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly read: () => T | Promise<T>,
    private readonly minIntervalMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  get(): Promise<T> {
    this.next ??= this.start();
    return this.next;
  }

  private async start(): Promise<T> {
    await undefined; // get() has stored this promise as `next` before it is cleared below
    if (this.running !== undefined) await this.running.then(undefined, () => undefined);
    const wait = this.lastStart + this.minIntervalMs - this.now();
    if (wait > 0) await this.sleep(wait);
    // From here on, new callers wait for the reading after this one.
    this.next = undefined;
    this.lastStart = this.now();
    const reading = Promise.resolve().then(this.read);
    this.running = reading;
    try {
      return await reading;
    } finally {
      if (this.running === reading) this.running = undefined;
    }
  }
}

/** /healthz and /metrics readings that cost more than answering (a host's view, the metrics text): at most 4 a second. */
export const VIEW_MIN_INTERVAL_MS = 250;
