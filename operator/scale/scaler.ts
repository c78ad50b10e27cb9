// How many runners a pool needs, from its backlog and the rate its runners work at (Numaflow's formula for a
// source vertex: desired = backlog / (target seconds × rate per replica)), within min/max, in bounded steps.
// Scale-up is immediate; scale-down waits until the pool has been idle or over-provisioned for its delay, so
// a pool does not flap between bursts. Pure: the controller feeds it measurements and a clock reading.

export interface ScaleInput {
  min: number;
  max: number;
  /** Replicas the Deployment asks for now. */
  current: number;
  /** Messages waiting plus delivered and not acknowledged, over the pool's consumers. */
  backlog: number;
  /** Tasks a second one runner completes, measured; undefined until measured. */
  ratePerReplica: number | undefined;
  /** Tasks one runner works on at once (its --concurrency). */
  concurrency: number;
  scaleDownDelayMs: number;
  now: number;
  /** Since when the pool has wanted fewer replicas than it has (undefined: it does not). */
  lowSince: number | undefined;
}

export interface ScaleDecision {
  desired: number;
  /** Updated `lowSince` for the next call. */
  lowSince: number | undefined;
  reason: string;
}

/** Seconds a backlog should take to work off; more replicas are asked for when it would take longer. */
export const TARGET_SECONDS = 10;
/** Largest step up: double, but at least this many. */
export const MIN_STEP_UP = 2;
/** Largest step down per decision. */
export const STEP_DOWN = 2;

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}

/** The replicas the backlog needs, unbounded by steps. */
export function wanted(input: Pick<ScaleInput, "backlog" | "ratePerReplica" | "concurrency" | "min" | "max">): number {
  if (input.backlog <= 0) return input.min;
  // Every replica holds `concurrency` tasks at once; a backlog beyond that waits in the stream.
  const byConcurrency = Math.ceil(input.backlog / Math.max(1, input.concurrency));
  const byRate = input.ratePerReplica && input.ratePerReplica > 0 ? Math.ceil(input.backlog / (TARGET_SECONDS * input.ratePerReplica)) : 1;
  return clamp(Math.max(1, Math.min(byConcurrency, byRate)), Math.max(1, input.min), input.max);
}

export function decide(input: ScaleInput): ScaleDecision {
  const target = wanted(input);
  const { current } = input;
  if (target > current) {
    // From zero straight to what is needed (bounded); otherwise at most double per step.
    const step = current === 0 ? target : Math.min(target, current + Math.max(MIN_STEP_UP, current));
    return { desired: step, lowSince: undefined, reason: `backlog ${input.backlog}` };
  }
  if (target === current) return { desired: current, lowSince: undefined, reason: "steady" };
  const lowSince = input.lowSince ?? input.now;
  if (input.now - lowSince < input.scaleDownDelayMs) return { desired: current, lowSince, reason: "waiting for the scale-down delay" };
  const desired = Math.max(target, current - STEP_DOWN);
  const reason = input.backlog === 0 ? `idle for ${Math.round((input.now - lowSince) / 1000)} s` : `backlog ${input.backlog} needs ${target}`;
  // After a step down the delay starts again, so the next step waits for fresh evidence.
  return { desired, lowSince: desired === target ? undefined : input.now, reason };
}

/** Completed tasks per second from two readings of a cumulative counter, smoothed with the previous rate. */
export function smoothRate(previous: number | undefined, delta: number, seconds: number, weight = 0.5): number | undefined {
  if (seconds <= 0 || delta < 0) return previous;
  const sample = delta / seconds;
  return previous === undefined ? sample : previous * (1 - weight) + sample * weight;
}
