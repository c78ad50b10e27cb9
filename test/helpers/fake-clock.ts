// A clock for tests that moves only when told (core's Clock interface: now() and an abortable sleep()).
import type { Clock } from "../../core/limits.ts";

/** Lets every pending promise reaction run. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * `now()` is fake time in ms; `sleep(ms)` resolves when advance() passes its due time (equal due times in the
 * order they were started).
 */
export class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers: { due: number; seq: number; fire: () => void }[] = [];
  /** Every sleep requested, in ms. */
  readonly sleeps: number[] = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = {
        due: this.t + Math.max(0, ms),
        seq: this.seq++,
        fire: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.timers = this.timers.filter((x) => x !== timer);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.timers.push(timer);
    });
  }
  /** Sleeps not yet resolved. */
  get pending(): number {
    return this.timers.length;
  }
  /** Moves time forward by `ms`, firing due sleeps in order and letting their continuations run. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      this.timers.sort((a, b) => a.due - b.due || a.seq - b.seq);
      const next = this.timers[0];
      if (!next || next.due > end) break;
      this.timers.shift();
      this.t = next.due;
      next.fire();
      await settle();
    }
    this.t = end;
    await settle();
  }
}
