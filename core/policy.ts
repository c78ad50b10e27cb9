// Execution policies of a job: timeout, retries with backoff, concurrency and rate limits. Resolved and
// defaulted here, in one place, for config files and for graphs written in code.

/** Exponential backoff between attempts: delay = min(max, initial * factor^(retry-1)), with jitter. */
export interface BackoffPolicy {
  /** Seconds before the first retry. Default 0.1. */
  initial: number;
  /** Growth per retry. Default 2. */
  factor: number;
  /** Upper bound in seconds. Default 30. */
  max: number;
  /** Full jitter (a uniform delay in [0, computed]) when true; exact delays when false. Default true. */
  jitter: boolean;
}

export interface RetryPolicy {
  /** Total attempts including the first; 1 means no retry. */
  attempts: number;
  backoff: BackoffPolicy;
}

/** At most `max` job starts per `per` seconds; jobs with the same `key` share one limit. */
export interface RateLimitPolicy {
  max: number;
  per: number;
  key: string | undefined;
}

export interface JobPolicy {
  /** Seconds one attempt may run; undefined for no limit. */
  timeout: number | undefined;
  retry: RetryPolicy;
  /** Most runs of this job in flight at once (per process); undefined for no limit. */
  concurrency: number | undefined;
  rateLimit: RateLimitPolicy | undefined;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ initial: 0.1, factor: 2, max: 30, jitter: true });
export const NO_RETRY: RetryPolicy = Object.freeze({ attempts: 1, backoff: DEFAULT_BACKOFF });
export const DEFAULT_POLICY: JobPolicy = Object.freeze({
  timeout: undefined,
  retry: NO_RETRY,
  concurrency: undefined,
  rateLimit: undefined,
});

/** Policy as written by users: every field optional; `backoff` may be just the initial delay in seconds. */
export interface JobPolicyInput {
  timeout?: number | undefined;
  retry?: { attempts: number; backoff?: number | Partial<BackoffPolicy> | undefined } | undefined;
  concurrency?: number | undefined;
  rateLimit?: { max: number; per?: number | undefined; key?: string | undefined } | undefined;
}

export function resolvePolicy(input: JobPolicyInput | undefined): JobPolicy {
  if (!input) return DEFAULT_POLICY;
  const b = input.retry?.backoff;
  const backoff: BackoffPolicy =
    b === undefined ? DEFAULT_BACKOFF : typeof b === "number" ? { ...DEFAULT_BACKOFF, initial: b } : { ...DEFAULT_BACKOFF, ...b };
  return {
    timeout: input.timeout,
    retry: input.retry ? { attempts: input.retry.attempts, backoff } : NO_RETRY,
    concurrency: input.concurrency,
    rateLimit: input.rateLimit
      ? { max: input.rateLimit.max, per: input.rateLimit.per ?? 1, key: input.rateLimit.key }
      : undefined,
  };
}

/** Milliseconds to wait before attempt `attempt + 1` after attempt `attempt` failed. */
export function backoffDelayMs(backoff: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exact = Math.min(backoff.max, backoff.initial * backoff.factor ** (attempt - 1)) * 1000;
  return backoff.jitter ? random() * exact : exact;
}
