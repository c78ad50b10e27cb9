// Small helpers shared by the benchmark suites: percentiles, timing, bounded in-flight windows, local servers.

/** The p-th percentile (0..100) of `values` by nearest rank; sorts a copy. NaN for an empty list. */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Several percentiles of one sample at once (one sort). */
export function percentiles(values: ArrayLike<number>, ps: number[]): number[] {
  if (values.length === 0) return ps.map(() => Number.NaN);
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  return ps.map((p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!);
}

/** The median by nearest rank (the middle one of an odd count, the lower middle of an even one). */
export const median = (values: ArrayLike<number>): number => percentile(values, 50);

/** A whole number with thousands separators, as the tables print them. */
export const fmtInt = (n: number): string => Math.round(n).toLocaleString("en-US");

/** Milliseconds since an arbitrary origin, sub-microsecond resolution. */
export const now = (): number => performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Per-second rate of `count` events over `ms` milliseconds. */
export const rate = (count: number, ms: number): number => (ms > 0 ? (count * 1000) / ms : 0);

/**
 * Bounds the number of operations in flight: `await w.slot()` before starting one, `w.done()` when it settles.
 * `await w.drain()` waits until none is in flight.
 */
export class Window {
  readonly size: number;
  #inFlight = 0;
  #waiters: (() => void)[] = [];
  #drainers: (() => void)[] = [];
  constructor(size: number) {
    this.size = size;
  }
  get inFlight(): number {
    return this.#inFlight;
  }
  /** Takes a slot: undefined when one is free now, else a promise that resolves when one is handed over. */
  slot(): Promise<void> | undefined {
    if (this.#inFlight < this.size) {
      this.#inFlight++;
      return undefined;
    }
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
  /** Releases a slot (handing it straight to the oldest waiter, if any). */
  done(): void {
    const next = this.#waiters.shift();
    if (next) return next();
    this.#inFlight--;
    if (this.#inFlight === 0) for (const d of this.#drainers.splice(0)) d();
  }
  drain(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainers.push(resolve));
  }
}

/** Resolves when `cond()` holds, polling every `everyMs`; rejects after `timeoutMs` with `what` in the message. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string, everyMs = 5): Promise<void> {
  const deadline = now() + timeoutMs;
  while (!cond()) {
    if (now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
