import type { Logger } from "pino";
import type { Span } from "@opentelemetry/api";

/**
 * Marks job classes. A symbol from the global registry (not `instanceof`) so that a job class compiled against
 * another copy of this package (e.g. a user's node_modules) is still recognised.
 */
export const JOB_BRAND: unique symbol = Symbol.for("jobchain.Job") as never;

/** A task: the JSON object submitted to a graph. Non-object submissions reach jobs as `{ task: value }`. */
export type Task = Record<string, unknown>;

/** What a job produced. A non-object return value is wrapped as `{ result: value }`. */
export type JobOutput = Record<string, unknown>;

/** Minimal structural type of a schema (zod or anything with the same `safeParse`). */
export interface Schema {
  safeParse(data: unknown): { success: true; data: unknown } | { success: false; error: { message: string } };
}

/** What a job sees of the task it runs for, besides the task itself. */
export interface JobContext {
  /** The id of the task (given at submission or generated). */
  readonly taskId: string;
  /** The graph instance, `graph` or `graph/group`. */
  readonly graph: string;
  /** The short name of this job in the graph. */
  readonly job: string;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
  /** Outputs of this job's direct predecessors, keyed by their short names. Empty for heads. */
  readonly inputs: Readonly<Record<string, JobOutput>>;
  /** Aborted on timeout, task deadline, cancellation or failure of a sibling branch. */
  readonly signal: AbortSignal;
  /** A child logger bound to task, graph and job. */
  readonly logger: Logger;
  /** The OpenTelemetry span of this job run, when tracing is on. */
  readonly span: Span | undefined;
  /**
   * Reports progress of a long job. Also serves as a heartbeat: distributed runners extend the message's ack
   * deadline, so a long LLM call is not redelivered while it is still working.
   */
  progress(info?: unknown): void;
}

/** The constructor of a job class, as the registry sees it. */
export interface JobClass {
  new (name?: string, properties?: Record<string, unknown>): Job;
  readonly name: string;
  /** An extra name the class can be registered under besides its class name. */
  readonly alias?: string | undefined;
  /** Validates the task given to the job. */
  readonly input?: Schema | undefined;
  /** Validates the job's output. */
  readonly output?: Schema | undefined;
  /** Run in a worker thread (for CPU-bound jobs). */
  readonly worker?: boolean | undefined;
}

const counters = new Map<string, number>();

/**
 * Base class of every job. Subclass it and implement `run`:
 *
 * ```ts
 * export class Summarize extends Job {
 *   async run(task: Task, ctx: JobContext) {
 *     return { summary: (ctx.inputs.fetch_page as { text: string }).text.slice(0, 100) };
 *   }
 * }
 * ```
 *
 * One instance serves every task of its graph instance concurrently, so keep per-task state in locals, not in
 * fields. See JobLifecycle for the optional `init()` and `close()`.
 */
export abstract class Job {
  static readonly [JOB_BRAND] = true;
  static alias?: string | undefined;
  static input?: Schema | undefined;
  static output?: Schema | undefined;
  /**
   * Run this job in a worker thread of a shared pool, so CPU-bound work does not block the event loop. The
   * thread imports the job's module and builds the job by class name; task, inputs and output are copied
   * between threads (structured clone), and `ctx.span` is not available there.
   */
  static worker?: boolean | undefined;

  /** The short job name from the configuration (or `ClassName_N` when built without one). */
  readonly name: string;
  /** The job's properties from the configuration, with parameters substituted. */
  readonly properties: Record<string, unknown>;

  constructor(name?: string, properties: Record<string, unknown> = {}) {
    const cls = new.target.name || "Job";
    if (name === undefined) {
      const n = (counters.get(cls) ?? 0) + 1;
      counters.set(cls, n);
      name = `${cls}_${n}`;
    }
    this.name = name;
    this.properties = properties;
  }

  /**
   * Does the work for one task. Resolves to the job's output (an object, or any value, which is then wrapped as
   * `{ result: value }`). Rejecting fails the task, after the job's retries.
   */
  abstract run(task: Task, ctx: JobContext): Promise<unknown> | unknown;
}

/**
 * Optional methods a job class may define: `init()` runs once before the first task (e.g. to open a connection
 * pool), `close()` once when the chain closes. Not declared on Job itself, so defining them needs no `override`.
 */
export interface JobLifecycle {
  init?(): Promise<void> | void;
  close?(): Promise<void> | void;
}

/** True when `value` is a job class (a subclass of `Job` from any copy of this package). */
export function isJobClass(value: unknown): value is JobClass {
  return (
    typeof value === "function" &&
    (value as unknown as Record<symbol, unknown>)[JOB_BRAND] === true &&
    typeof (value as { prototype?: { run?: unknown } }).prototype?.run === "function"
  );
}
