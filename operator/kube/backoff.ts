// Jittered exponential backoff for reconnect loops (watches, lease renewals): full jitter on the upper half,
// so many clients that failed together do not come back together.

export class Backoff {
  private attempt = 0;
  readonly initialMs: number;
  readonly maxMs: number;
  private readonly random: () => number;
  constructor(initialMs = 200, maxMs = 30_000, random: () => number = Math.random) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.random = random;
  }
  /** The next delay: initial × 2^n capped at max, then a random point in its upper half. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return ceiling / 2 + this.random() * (ceiling / 2);
  }
  reset(): void {
    this.attempt = 0;
  }
  get attempts(): number {
    return this.attempt;
  }
}

/** `ms` stretched by a random factor in [1, 1 + factor). */
export function jittered(ms: number, factor: number, random: () => number = Math.random): number {
  return ms * (1 + random() * factor);
}
