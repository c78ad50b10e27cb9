// Coalesced status writes: changes to one resource's status gathered for a moment are written as one merge
// patch of the /status subresource. What was written is remembered in brief (phase, times, where the task
// went), so a reconcile that runs before the watch brings the write back does not act on an older status.
import type { Logger } from "../../core/index.ts";
import type { JobTaskStatus } from "../api/index.ts";

export interface StatusWriterOptions {
  coalesceMs: number;
  write: (namespace: string, name: string, status: JobTaskStatus) => Promise<void>;
  logger: Logger;
  /** Writes in flight at once (default 16). */
  parallel?: number;
  onWrite?: () => void;
}

/** Merges a status change into another, as a JSON merge patch would (maps merged, arrays and values replaced). */
export function mergeStatus<T extends Record<string, unknown>>(base: T | undefined, change: T): T {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(change)) {
    const old = out[k];
    out[k] =
      v !== null && typeof v === "object" && !Array.isArray(v) && old !== null && typeof old === "object" && !Array.isArray(old)
        ? mergeStatus(old as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out as T;
}

const KEPT = ["phase", "instance", "taskId", "submitted", "startTime", "completionTime", "traceId", "conditions"] as const;

export class StatusWriter {
  private readonly o: StatusWriterOptions;
  private readonly queued = new Map<string, JobTaskStatus>();
  private readonly written = new Map<string, Partial<JobTaskStatus>>();
  /** Being written now: the watch may bring the write back before its response arrives. */
  private readonly writing = new Map<string, JobTaskStatus>();
  private readonly due: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private active = 0;
  private idle: (() => void)[] = [];
  private retrying = false;
  /** Patches written (for metrics and the status-writes-per-task figure). */
  writes = 0;

  constructor(options: StatusWriterOptions) {
    this.o = options;
  }

  /** Queues a change; `soon` writes it at the next turn instead of after the coalescing delay. */
  update(namespace: string, name: string, change: JobTaskStatus, soon = false): void {
    const key = `${namespace}/${name}`;
    const was = this.queued.get(key);
    this.queued.set(key, mergeStatus(was, change));
    if (!was) this.due.push(key);
    if (soon) setImmediate(() => this.pump());
    else this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, this.o.coalesceMs);
  }

  /** What was written, is being written or is queued for `key`, the newest winning (empty when nothing). */
  pending(key: string): Partial<JobTaskStatus> {
    let out = (this.written.get(key) ?? {}) as JobTaskStatus;
    for (const next of [this.writing.get(key), this.queued.get(key)]) if (next) out = mergeStatus(out, next);
    return out;
  }

  /** A change for `key` is queued or being written. */
  busy(key: string): boolean {
    return this.queued.has(key) || this.writing.has(key);
  }

  forget(key: string): void {
    this.queued.delete(key);
    this.written.delete(key);
    this.writing.delete(key);
  }

  private pump(): void {
    const parallel = this.o.parallel ?? 16;
    for (let i = 0; this.active < parallel && i < this.due.length; ) {
      const key = this.due[i]!;
      // One write per resource at a time, in order: what came in meanwhile waits for the write before it.
      if (this.writing.has(key)) {
        i++;
        continue;
      }
      this.due.splice(i, 1);
      const status = this.queued.get(key);
      if (!status) continue;
      this.queued.delete(key);
      this.writing.set(key, status);
      this.active++;
      const [namespace, name] = key.split("/") as [string, string];
      this.o
        .write(namespace, name, status)
        .then(
          () => {
            this.writes++;
            this.o.onWrite?.();
            const kept: Record<string, unknown> = { ...this.written.get(key) };
            for (const k of KEPT) if (status[k] !== undefined) kept[k] = status[k];
            this.written.set(key, kept);
          },
          (err: unknown) => {
            const code = (err as { status?: number }).status;
            if (code === 404) return this.forget(key);
            this.o.logger.warn({ jobtask: key, err: (err as Error).message }, "status write failed; retrying");
            // Put it back under whatever came in meanwhile, and try again shortly.
            this.queued.set(key, mergeStatus(status, this.queued.get(key) ?? {}));
            if (!this.due.includes(key)) this.due.push(key);
            this.retrying = true;
          },
        )
        .finally(() => {
          this.writing.delete(key);
          this.active--;
          if (this.retrying) {
            this.retrying = false;
            setTimeout(() => this.pump(), 1000).unref();
          } else if (this.due.length > 0) this.pump();
          if (this.active === 0 && this.due.length === 0) for (const f of this.idle.splice(0)) f();
        });
    }
  }

  /** Resolves when everything queued so far is written (or has failed for good). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.pump();
    if (this.active === 0 && this.due.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }
}
