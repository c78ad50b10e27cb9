// Concurrency and rate limits. Both have a synchronous fast path so that an unlimited or unsaturated job costs
// no extra promise.
import type { RateLimitPolicy } from "./policy.ts";

/** A FIFO counting semaphore. */
export class Semaphore {
  readonly capacity: number;
  private available: number;
  private readonly waiters: { resolve: () => void; cancelled: boolean }[] = [];
  private head = 0;
  constructor(capacity: number) {
    this.capacity = capacity;
    this.available = capacity;
  }
  /** Takes a permit if one is free. */
  tryAcquire(): boolean {
    if (this.available > 0 && this.head === this.waiters.length) {
      this.available--;
      return true;
    }
    return false;
  }
  /** Resolves when a permit is taken; rejects when `signal` aborts first (no permit is then held). */
  acquire(signal?: AbortSignal): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        waiter.cancelled = true;
        reject(signal!.reason);
      };
      const waiter = {
        cancelled: false,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }
  /** Returns a permit, handing it to the longest waiter if there is one. */
  release(): void {
    while (this.head < this.waiters.length) {
      const next = this.waiters[this.head]!;
      this.waiters[this.head++] = undefined as never;
      if (this.head > 1024 && this.head * 2 > this.waiters.length) {
        this.waiters.splice(0, this.head);
        this.head = 0;
      }
      if (!next.cancelled) {
        next.resolve();
        return;
      }
    }
    this.available++;
  }
  /** Callers waiting for a permit. */
  get waiting(): number {
    let n = 0;
    for (let i = this.head; i < this.waiters.length; i++) if (!this.waiters[i]!.cancelled) n++;
    return n;
  }
}

/** Milliseconds source, replaceable in tests. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(t);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

/**
 * A token bucket: `max` starts per `per` seconds, with bursts up to `max`. Callers that find no token wait
 * their turn in FIFO order, so a busy limiter is fair.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;
  private readonly ratePerMs: number;
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  readonly max: number;
  readonly per: number;
  private readonly clock: Clock;
  constructor(max: number, per: number, clock: Clock = systemClock) {
    this.max = max;
    this.per = per;
    this.clock = clock;
    this.tokens = max;
    this.last = clock.now();
    this.ratePerMs = max / (per * 1000);
  }
  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.max, this.tokens + (now - this.last) * this.ratePerMs);
    this.last = now;
  }
  /** Takes a token now if one is available and nobody is waiting. */
  tryAcquire(): boolean {
    if (this.queued > 0) return false;
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
  /** Resolves when a token is taken. Rejects if `signal` aborts while waiting (the token is not consumed). */
  acquire(signal?: AbortSignal): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.queued++;
    const turn = this.tail.then(async () => {
      try {
        for (;;) {
          signal?.throwIfAborted();
          this.refill();
          if (this.tokens >= 1) {
            this.tokens -= 1;
            return;
          }
          await this.clock.sleep(Math.max(1, (1 - this.tokens) / this.ratePerMs), signal);
        }
      } finally {
        this.queued--;
      }
    });
    this.tail = turn.catch(() => undefined);
    if (!signal) return turn;
    // A waiter queued behind others learns of its abort at once; its turn then passes without taking a token.
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      turn.then(
        () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  }
}

/** Rate limiters by key: jobs naming the same key share one limiter (e.g. every node calling one LLM API). */
export class RateLimiters {
  private readonly byKey = new Map<string, RateLimiter>();
  private readonly clock: Clock;
  constructor(clock: Clock = systemClock) {
    this.clock = clock;
  }
  /** The limiter for `policy`; `ownKey` identifies the job when the policy names no shared key. */
  get(policy: RateLimitPolicy, ownKey: string): RateLimiter {
    const key = policy.key ?? `job:${ownKey}`;
    let limiter = this.byKey.get(key);
    if (!limiter) {
      limiter = new RateLimiter(policy.max, policy.per, this.clock);
      this.byKey.set(key, limiter);
    }
    return limiter;
  }
}
