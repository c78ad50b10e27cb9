// A worker-thread pool for CPU-bound jobs. A job class opts in with `static worker = true`; each worker thread
// imports the job's module and builds the job itself by registered class name, so nothing but data crosses
// threads (the original ran such jobs in processes, recreating them by name the same way).
import os from "node:os";
import { Worker } from "node:worker_threads";
import { Job, type JobContext, type JobOutput, type Task } from "./job.ts";

/** What the engine sends a worker for one job run. */
export interface WorkerRequest {
  type: "run";
  id: number;
  module: string;
  className: string;
  name: string;
  properties: Record<string, unknown>;
  task: Task;
  inputs: Record<string, JobOutput>;
  taskId: string;
  graph: string;
  attempt: number;
}

export type WorkerReply =
  | { type: "done"; id: number; output: unknown }
  | { type: "error"; id: number; name: string; message: string }
  | { type: "progress"; id: number; info: unknown };

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress: (info: unknown) => void;
  worker: Slot;
}

interface Slot {
  worker: Worker;
  busy: number;
}

const ENTRY = new URL(import.meta.url.endsWith(".ts") ? "./worker-entry.ts" : "./worker-entry.js", import.meta.url);

/** Threads that run jobs; requests go to the least busy one. */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  readonly size: number;

  constructor(size = Math.max(1, Math.min(os.availableParallelism(), 8))) {
    this.size = size;
  }

  private spawn(): Slot {
    const worker = new Worker(ENTRY);
    worker.unref();
    const slot: Slot = { worker, busy: 0 };
    worker.on("message", (m: WorkerReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.type === "progress") return p.onProgress(m.info);
      this.pending.delete(m.id);
      slot.busy--;
      if (m.type === "done") p.resolve(m.output);
      else p.reject(Object.assign(new Error(m.message), { name: m.name }));
    });
    worker.on("error", (err) => this.failSlot(slot, err));
    worker.on("exit", (code) => {
      if (!this.closed) this.failSlot(slot, new Error(`job worker thread exited with code ${code}`));
    });
    this.slots.push(slot);
    return slot;
  }

  private failSlot(slot: Slot, err: Error): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    for (const [id, p] of this.pending) {
      if (p.worker === slot) {
        this.pending.delete(id);
        p.reject(err);
      }
    }
  }

  private pick(): Slot {
    if (this.slots.length < this.size && this.slots.every((s) => s.busy > 0)) return this.spawn();
    let best = this.slots[0] ?? this.spawn();
    for (const s of this.slots) if (s.busy < best.busy) best = s;
    return best;
  }

  /** Runs one job in a worker thread. Rejects with the job's error (name and message kept). */
  run(req: Omit<WorkerRequest, "type" | "id">, signal: AbortSignal | undefined, onProgress: (info: unknown) => void): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error("the worker pool is closed"));
    const slot = this.pick();
    const id = this.nextId++;
    slot.busy++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress, worker: slot });
      if (signal) {
        if (signal.aborted) slot.worker.postMessage({ type: "abort", id });
        else signal.addEventListener("abort", () => slot.worker.postMessage({ type: "abort", id }), { once: true });
      }
      slot.worker.postMessage({ type: "run", id, ...req } satisfies WorkerRequest);
    });
  }

  /** Terminates the threads; job runs still in them (e.g. ones that ignore their abort signal) reject. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
    for (const p of this.pending.values()) p.reject(new Error("the job's worker thread was terminated: the chain closed"));
    this.pending.clear();
  }
}

let shared: WorkerPool | undefined;
let users = 0;

/** The process-wide pool (created on first use); release it with releaseSharedPool when done. */
export function acquireSharedPool(): WorkerPool {
  users++;
  return (shared ??= new WorkerPool());
}

export async function releaseSharedPool(): Promise<void> {
  users--;
  if (users <= 0 && shared) {
    const pool = shared;
    shared = undefined;
    users = 0;
    await pool.close();
  }
}

/** Stands in for a worker job in the engine: each run goes to the pool. */
export class WorkerJob extends Job {
  private readonly module: string;
  private readonly className: string;
  private pool: WorkerPool | undefined;
  constructor(module: string, className: string, name: string, properties: Record<string, unknown>) {
    super(name, properties);
    this.module = module;
    this.className = className;
  }
  init(): void {
    this.pool ??= acquireSharedPool();
  }
  run(task: Task, ctx: JobContext): Promise<unknown> {
    this.pool ??= acquireSharedPool();
    return this.pool.run(
      {
        module: this.module,
        className: this.className,
        name: this.name,
        properties: this.properties,
        task,
        inputs: { ...ctx.inputs },
        taskId: ctx.taskId,
        graph: ctx.graph,
        attempt: ctx.attempt,
      },
      ctx.signal,
      (info) => ctx.progress(info),
    );
  }
  async close(): Promise<void> {
    if (this.pool) {
      this.pool = undefined;
      await releaseSharedPool();
    }
  }
}
