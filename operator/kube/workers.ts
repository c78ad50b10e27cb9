// Workers that drain a work queue into a reconcile function, with controller-runtime's outcomes: success forgets
// the key's failures (and requeues after a delay if asked), an error requeues it with backoff, and a 409
// Conflict (someone else wrote first: not a failure of ours) requeues it at once without growing the backoff.
import type { Logger } from "../../core/logging.ts";
import { isConflict } from "./errors.ts";
import { DURATION_BUCKETS, type Registry } from "./metrics.ts";
import type { WorkQueue } from "./queue.ts";

export type ReconcileResult = { requeueAfterMs?: number } | void;

export interface RunWorkersOptions<K> {
  logger?: Logger;
  onError?: (key: K, e: unknown) => void;
  metrics?: Registry;
  /** Names the controller in metrics and logs (default: the queue's name). */
  controller?: string;
}

/**
 * Runs `workers` loops that take keys from `queue` and reconcile them. The queue never hands one key to two
 * workers at once. Resolves when the queue is shut down and every worker is idle.
 */
export async function runWorkers<K>(
  queue: WorkQueue<K>,
  workers: number,
  reconcile: (key: K) => Promise<ReconcileResult>,
  options: RunWorkersOptions<K> = {},
): Promise<void> {
  if (!(workers >= 1)) throw new RangeError(`workers must be at least 1 (got ${workers})`);
  const controller = options.controller ?? queue.name;
  const log = options.logger?.child({ controller });
  const r = options.metrics;
  const total = r?.counter("controller_runtime_reconcile_total", "Reconciles by controller and result (success, error, requeue, requeue_after).", ["controller", "result"]);
  const errors = r?.counter("controller_runtime_reconcile_errors_total", "Reconciles that returned an error.", ["controller"]);
  const seconds = r?.histogram("controller_runtime_reconcile_time_seconds", "Duration of one reconcile.", DURATION_BUCKETS, ["controller"]);
  const active = r?.gauge("controller_runtime_active_workers", "Workers reconciling now.", ["controller"]);
  const maxWorkers = r?.gauge("controller_runtime_max_concurrent_reconciles", "Workers of the controller.", ["controller"]);
  maxWorkers?.set({ controller }, workers);
  active?.set({ controller }, 0);

  const one = async (key: K): Promise<void> => {
    const t0 = performance.now();
    active?.inc({ controller });
    let result: string;
    try {
      const res = await reconcile(key);
      queue.forget(key);
      if (res && typeof res.requeueAfterMs === "number" && res.requeueAfterMs >= 0) {
        queue.addAfter(key, res.requeueAfterMs);
        result = "requeue_after";
      } else {
        result = "success";
      }
    } catch (e) {
      if (isConflict(e)) {
        // The object changed under us: read it again now. The key's failure count stays as it is.
        queue.add(key);
        result = "requeue";
        log?.debug({ key: String(key), err: (e as Error).message }, "Requeued after a conflict");
      } else {
        queue.addRateLimited(key);
        result = "error";
        errors?.inc({ controller });
        log?.error({ key: String(key), err: e instanceof Error ? e.message : String(e), requeues: queue.numRequeues(key) }, "Reconcile failed");
      }
      try {
        options.onError?.(key, e);
      } catch (hookError) {
        log?.error({ err: String(hookError) }, "onError hook threw");
      }
    } finally {
      active?.dec({ controller });
      queue.done(key);
    }
    total?.inc({ controller, result });
    seconds?.observe({ controller }, (performance.now() - t0) / 1000);
  };

  const loop = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      await one(key);
    }
  };
  await Promise.all(Array.from({ length: workers }, loop));
}
