// Small built-in jobs for wiring, tests and demos.
import { Job, type JobContext, type Task } from "../core/job.ts";

/** Returns the task, with `properties.add` merged in. Alias: `Passthrough`. */
export class Echo extends Job {
  static override alias = "Passthrough";
  run(task: Task): Record<string, unknown> {
    const add = this.properties.add;
    return typeof add === "object" && add !== null ? { ...task, ...add } : { ...task };
  }
}

/** Merges the outputs of all its predecessors into one object (later predecessors win on equal keys). */
export class Merge extends Job {
  run(_task: Task, ctx: JobContext): Record<string, unknown> {
    return Object.assign({}, ...Object.values(ctx.inputs));
  }
}

/**
 * Waits `properties.seconds` (or `properties.ms`, or the task's `delay_ms`), honouring cancellation, then
 * returns `{ delayed_ms }`.
 */
export class Delay extends Job {
  async run(task: Task, ctx: JobContext): Promise<Record<string, unknown>> {
    const p = this.properties;
    const ms =
      typeof p.ms === "number" ? p.ms : typeof p.seconds === "number" ? p.seconds * 1000 : Number(task.delay_ms ?? 0);
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new Error(`Delay: invalid delay ${String(ms)}`);
    await new Promise<void>((resolve, reject) => {
      const signal = ctx.signal;
      if (signal.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(t);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
    });
    return { delayed_ms: ms };
  }
}

/** Fails with `properties.message` (for tests and demos of failure handling). */
export class Fail extends Job {
  run(): never {
    throw new Error(String(this.properties.message ?? "failed on purpose"));
  }
}
