// The in-process engine: one warm instance of each graph, shared by every task. A task's state lives in a
// TaskRun; job instances are shared and never hold per-task state.
import { randomBytes } from "node:crypto";
import type { Context as TraceContext, Span, Tracer } from "@opentelemetry/api";
import { SPAN_STATUS_ERROR, otelApi } from "./otel.ts";
import type { Logger } from "pino";
import { ClosedError, JobTimeoutError, SchemaError, TaskFailedError, type TaskErrorInfo } from "./errors.ts";
import { selectInstance, type GraphInstance, type NodeSpec } from "./graph.ts";
import type { Job, JobClass, JobContext, JobLifecycle, JobOutput, Task } from "./job.ts";
import { RateLimiters, Semaphore, systemClock, type Clock } from "./limits.ts";
import { childAbort, type ChildAbort } from "./abort.ts";
import { createLogger } from "./logging.ts";
import { backoffDelayMs, type JobPolicy, type RateLimitPolicy } from "./policy.ts";

/** What became of one task. `task` is the submitted value, unchanged. */
export type TaskOutcome =
  | { status: "succeeded"; id: string; graph: string; task: unknown; result: JobOutput; saved?: Record<string, JobOutput> }
  | { status: "failed"; id: string; graph: string; task: unknown; error: TaskErrorInfo; saved?: Record<string, JobOutput> };

/** Receives every outcome, in completion order. May be async; a throw is reported, never counted twice. */
export type ResultHandler = (outcome: TaskOutcome) => void | Promise<void>;

export interface SubmitOptions {
  /** The graph instance (`graph` or `graph/group`); optional when the chain has one instance. */
  graph?: string | undefined;
  /** Task id; default: the task's own `id` field when it is a string or number, else a random UUID. */
  id?: string | undefined;
  /** Seconds the whole task may take; overrides the chain's `taskTimeout`. */
  timeout?: number | undefined;
  /** Cancels the task. */
  signal?: AbortSignal | undefined;
  /**
   * Outputs of predecessors that ran elsewhere, given to the heads as `ctx.inputs` (used by distributed runners
   * that run part of a graph).
   */
  inputs?: Readonly<Record<string, JobOutput>> | undefined;
  /** Parent of the task's span (e.g. trace context received from another process). */
  traceContext?: TraceContext | undefined;
}

/** A job ready to run in a graph instance. */
export interface ResolvedNode extends NodeSpec {
  job: Job;
}

/** A graph instance with its jobs constructed. */
export interface RunnableGraph extends Omit<GraphInstance, "nodes"> {
  nodes: ResolvedNode[];
}

export interface ChainOptions {
  /** Most tasks in flight per graph instance; further submissions wait in a queue. Default 1000. */
  concurrency?: number | undefined;
  /** Called with every outcome in completion order. */
  onResult?: ResultHandler | undefined;
  /** Run the result handler for one outcome at a time, in completion order. Default false. */
  serialResults?: boolean | undefined;
  /** Seconds a task may take from start to finish. Default: no limit. */
  taskTimeout?: number | undefined;
  /** Reports `ctx.progress()` calls, e.g. to extend a message's ack deadline. */
  onProgress?: ((taskId: string, job: string, info: unknown) => void) | undefined;
  logger?: Logger | undefined;
  /** An OpenTelemetry tracer; when absent nothing is traced and tracing costs nothing. */
  tracer?: Tracer | undefined;
  clock?: Clock | undefined;
  /** Where rate limiters come from: shared by several chains, or global across processes (distributed runners). */
  rateLimiters?: RateLimiterSource | undefined;
}

/** Hands out the limiter for a job's rate-limit policy; `ownKey` identifies the job when the policy has no key. */
export interface RateLimiterSource {
  get(policy: RateLimitPolicy, ownKey: string): { acquire(signal?: AbortSignal): Promise<void> };
}

/**
 * A job run that outlived its task or its attempt: the attempt timed out, or the task ended (failed elsewhere,
 * cancelled, past its deadline) while the job ran, and the job has not returned. Such a job ignores
 * `ctx.signal`; its eventual return value is dropped.
 */
export interface AbandonedJob {
  taskId: string;
  graph: string;
  job: string;
}

export interface ChainStats {
  submitted: number;
  succeeded: number;
  failed: number;
  inFlight: number;
  queued: number;
  handlerErrors: number;
}

/** Internal per-node runtime: indexes instead of names so the hot path does no map lookups. */
interface RtNode {
  index: number;
  spec: ResolvedNode;
  name: string;
  job: Job;
  next: RtNode[];
  prev: RtNode[];
  tail: boolean;
  /** Default policy, no schemas, no limits: run with the least work. */
  plain: boolean;
  policy: JobPolicy;
  semaphore: Semaphore | undefined;
  limiter: { acquire(signal?: AbortSignal): Promise<void> } | undefined;
  cls: JobClass;
}

interface RtGraph {
  id: string;
  /** The graph's name (without the group), for selectors. */
  graph: string;
  instance: RunnableGraph;
  nodes: RtNode[];
  heads: RtNode[];
  tails: RtNode[];
  waiting: number[];
  inFlight: number;
  queue: TaskRun[];
  queueHead: number;
}

class TaskRun {
  readonly id: string;
  readonly rt: RtGraph;
  readonly submitted: unknown;
  readonly task: Task;
  readonly outputs: (JobOutput | undefined)[];
  /**
   * Per node: predecessors still to finish (> 0) until the node is ready; once it is, minus the number of its
   * job runs that have not returned (< 0 while the job runs).
   */
  readonly waiting: number[];
  tailsLeft: number;
  finished = false;
  controller: AbortController | undefined;
  saved: Record<string, JobOutput> | undefined;
  span: Span | undefined;
  timer: NodeJS.Timeout | undefined;
  timeout: number | undefined;
  external: AbortSignal | undefined;
  onCancel: (() => void) | undefined;
  running: string | undefined;
  /** An attempt timed out while its job went on running (so a success may still leave a job behind). */
  lingering = false;
  headInputs: Readonly<Record<string, JobOutput>> | undefined;
  traceContext: TraceContext | undefined;
  resolve!: (o: TaskOutcome) => void;
  constructor(id: string, rt: RtGraph, submitted: unknown) {
    this.id = id;
    this.rt = rt;
    this.submitted = submitted;
    this.task =
      typeof submitted === "object" && submitted !== null && !Array.isArray(submitted)
        ? (submitted as Task)
        : { task: submitted };
    this.outputs = new Array(rt.nodes.length);
    this.waiting = rt.waiting.slice();
    this.tailsLeft = rt.tails.length;
  }
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }
}

class Context implements JobContext {
  readonly attempt: number;
  readonly span: Span | undefined;
  private readonly run: TaskRun;
  private readonly node: RtNode;
  private readonly chain: JobChain;
  private _inputs: Record<string, JobOutput> | undefined;
  private _logger: Logger | undefined;
  private readonly attemptSignal: AbortSignal | undefined;
  constructor(chain: JobChain, run: TaskRun, node: RtNode, attempt: number, signal?: AbortSignal, span?: Span) {
    this.chain = chain;
    this.run = run;
    this.node = node;
    this.attempt = attempt;
    this.attemptSignal = signal;
    this.span = span;
  }
  get taskId(): string {
    return this.run.id;
  }
  get graph(): string {
    return this.run.rt.id;
  }
  get job(): string {
    return this.node.name;
  }
  get inputs(): Record<string, JobOutput> {
    if (this._inputs) return this._inputs;
    if (this.node.prev.length === 0 && this.run.headInputs) return (this._inputs = { ...this.run.headInputs });
    const inputs: Record<string, JobOutput> = {};
    for (const p of this.node.prev) inputs[p.name] = this.run.outputs[p.index]!;
    return (this._inputs = inputs);
  }
  get signal(): AbortSignal {
    return this.attemptSignal ?? this.run.signal;
  }
  get logger(): Logger {
    return (this._logger ??= this.chain.logger.child({ task: this.run.id, graph: this.run.rt.id, job: this.node.name }));
  }
  progress(info?: unknown): void {
    this.chain.options.onProgress?.(this.run.id, this.node.name, info);
  }
}

// Generated ids: a random per-process prefix and a counter. Unique across processes without the cost of a UUID
// per task.
const ID_PREFIX = randomBytes(6).toString("hex");
let idCounter = 0;

/** A task's id: the one given, else the task's own `id` field when it is a string or number, else a new one. */
export function taskIdOf(task: unknown, given?: string): string {
  if (given !== undefined) return given;
  const own = (task as { id?: unknown } | null)?.id;
  return typeof own === "string" || typeof own === "number" ? String(own) : `${ID_PREFIX}-${(++idCounter).toString(36)}`;
}

/** Wraps a non-object return value as `{ result: value }`; objects pass unchanged. */
export function normalizeOutput(value: unknown): JobOutput {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as JobOutput) : { result: value };
}

/** Thrown by a job to fail its task at once, without further retries. */
export class NonRetryableError extends Error {
  override readonly name = "NonRetryableError";
}

function errorInfo(job: string, err: unknown, attempt: number | undefined): TaskErrorInfo {
  const e = err as { message?: unknown; name?: unknown } | undefined;
  const message = typeof e?.message === "string" && e.message ? e.message : String(err);
  const info: TaskErrorInfo = { job, message };
  if (attempt !== undefined) info.attempt = attempt;
  if (typeof e?.name === "string" && e.name !== "Error") info.type = e.name;
  return info;
}

class AttemptError extends Error {
  readonly attempt: number;
  constructor(cause: unknown, attempt: number) {
    super("attempt failed", { cause });
    this.attempt = attempt;
  }
}

/**
 * Runs graph instances in this process. Build one from a configuration (`loadChain`) or from graphs written in
 * code, submit tasks, and close input when done:
 *
 * ```ts
 * const chain = await loadChain("./config", { onResult: (o) => console.log(o) });
 * const result = await chain.submitTask({ url: "https://example.org" }, { graph: "scrape" });
 * await chain.markInputCompleted();
 * ```
 */
export class JobChain {
  readonly options: ChainOptions;
  readonly logger: Logger;
  private readonly graphs = new Map<string, RtGraph>();
  private readonly runtimes: RtGraph[] = [];
  private readonly concurrency: number;
  private readonly tracer: Tracer | undefined;
  private readonly clock: Clock;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private handlerTail: Promise<void> = Promise.resolve();
  private pendingHandlers = 0;
  /** Finished tasks with a job run that has not returned. */
  private readonly abandonedRuns = new Set<TaskRun>();
  private abandonWaiters: (() => void)[] = [];
  private initialized: Promise<void> | undefined;
  private initDone = false;
  private readonly counts = { submitted: 0, succeeded: 0, failed: 0, handlerErrors: 0, inFlight: 0, queued: 0 };

  constructor(graphs: RunnableGraph[], options: ChainOptions = {}) {
    this.options = options;
    this.logger = options.logger ?? createLogger();
    this.concurrency = options.concurrency ?? 1000;
    this.tracer = options.tracer;
    this.clock = options.clock ?? systemClock;
    const limiters = options.rateLimiters ?? new RateLimiters(this.clock);
    if (!(this.concurrency >= 1)) throw new RangeError("concurrency must be at least 1");
    for (const g of graphs) {
      if (this.graphs.has(g.id)) throw new Error(`graph instance '${g.id}' is defined twice`);
      const nodes: RtNode[] = g.nodes.map((spec, index) => {
        const cls = spec.job.constructor as JobClass;
        const policy = spec.policy;
        return {
          index,
          spec,
          name: spec.name,
          job: spec.job,
          next: [],
          prev: [],
          tail: spec.next.length === 0,
          plain:
            policy.timeout === undefined &&
            policy.retry.attempts === 1 &&
            policy.concurrency === undefined &&
            policy.rateLimit === undefined &&
            !cls.input &&
            !cls.output,
          policy,
          semaphore: policy.concurrency !== undefined ? new Semaphore(policy.concurrency) : undefined,
          limiter: policy.rateLimit ? limiters.get(policy.rateLimit, `${g.id}/${spec.name}`) : undefined,
          cls,
        };
      });
      const byNode = new Map(nodes.map((n) => [n.name, n] as const));
      for (const n of nodes) {
        n.next = n.spec.next.map((t) => byNode.get(t)!);
        n.prev = n.spec.prev.map((t) => byNode.get(t)!);
      }
      const rt: RtGraph = {
        id: g.id,
        graph: g.graph,
        instance: g,
        nodes,
        heads: nodes.filter((n) => n.prev.length === 0),
        tails: nodes.filter((n) => n.tail),
        waiting: nodes.map((n) => n.prev.length),
        inFlight: 0,
        queue: [],
        queueHead: 0,
      };
      this.graphs.set(g.id, rt);
      this.runtimes.push(rt);
    }
    if (!graphs.some((g) => g.nodes.some((n) => typeof (n.job as JobLifecycle).init === "function"))) this.initDone = true;
  }

  /** Ids of the graph instances, e.g. `["etl", "summarize/openai", "summarize/local"]`. */
  get graphIds(): string[] {
    return [...this.graphs.keys()];
  }

  /** The graph instance with this id (with its heads, tails and nodes). */
  graph(id: string): RunnableGraph | undefined {
    return this.graphs.get(id)?.instance;
  }

  /** Counts since construction. */
  get stats(): ChainStats {
    return { ...this.counts };
  }

  /**
   * Resolves a graph selector to an instance id: an exact id, a graph name with a single instance, or nothing
   * when the chain has exactly one instance. Throws UnknownGraphError otherwise.
   */
  resolveGraph(graph: string | undefined): string {
    return this.lookup(graph).id;
  }

  private lookup(graph: string | undefined): RtGraph {
    // The exact id is the common case on the submission path: a map lookup before the general rule.
    return (graph !== undefined && this.graphs.get(graph)) || selectInstance(this.runtimes, graph);
  }

  /**
   * Submits a task and resolves to its result: the tail's output, or `{tail: output}` for several tails.
   * Rejects with TaskFailedError when a job fails, with UnknownGraphError (at once) for an unknown or missing
   * graph, and with ClosedError after markInputCompleted.
   */
  submitTask(task: unknown, options?: SubmitOptions): Promise<JobOutput> {
    return new Promise<JobOutput>((resolve, reject) => {
      const err = this.enqueue(task, options, (o) => {
        if (o.status === "succeeded") resolve(o.result);
        else reject(new TaskFailedError(o.id, o.graph, o.error));
      });
      if (err) reject(err);
    });
  }

  /**
   * Submits a task and resolves to its outcome, successful or not (it rejects only for an unknown graph or a
   * closed chain). The result handler sees the same outcome.
   */
  execute(task: unknown, options?: SubmitOptions): Promise<TaskOutcome> {
    return new Promise<TaskOutcome>((resolve, reject) => {
      const err = this.enqueue(task, options, resolve);
      if (err) reject(err);
    });
  }

  /** Starts or queues a task; returns the error instead when it cannot be accepted. */
  private enqueue(task: unknown, options: SubmitOptions | undefined, settle: (o: TaskOutcome) => void): Error | undefined {
    if (this.closed) return new ClosedError();
    let rt: RtGraph;
    try {
      rt = this.lookup(options?.graph);
    } catch (err) {
      return err as Error;
    }
    const run = new TaskRun(taskIdOf(task, options?.id), rt, task);
    run.timeout = options?.timeout ?? this.options.taskTimeout;
    run.external = options?.signal;
    run.headInputs = options?.inputs;
    run.traceContext = options?.traceContext;
    run.resolve = settle;
    this.counts.submitted++;
    if (!this.initDone) {
      this.initialized ??= this.init();
      this.counts.queued++;
      this.initialized.then(
        () => {
          this.counts.queued--;
          this.admit(run);
        },
        (err: unknown) => {
          this.counts.queued--;
          this.counts.inFlight++;
          rt.inFlight++;
          this.finish(run, { status: "failed", id: run.id, graph: rt.id, task, error: errorInfo("init", err, undefined) });
        },
      );
    } else {
      this.admit(run);
    }
    return undefined;
  }

  /** Calls `init()` of every job that has one, once. */
  init(): Promise<void> {
    return (this.initialized ??= (async () => {
      for (const rt of this.graphs.values()) for (const n of rt.nodes) await (n.job as JobLifecycle).init?.();
      this.initDone = true;
    })());
  }

  private admit(run: TaskRun): void {
    const rt = run.rt;
    if (rt.inFlight >= this.concurrency) {
      rt.queue.push(run);
      this.counts.queued++;
      return;
    }
    this.start(run);
  }

  private start(run: TaskRun): void {
    const rt = run.rt;
    rt.inFlight++;
    this.counts.inFlight++;
    if (this.tracer) {
      run.span = this.tracer.startSpan(
        `task ${rt.id}`,
        { attributes: { "jobchain.task_id": run.id, "jobchain.graph": rt.id } },
        run.traceContext,
      );
    }
    if (run.external) {
      const ext = run.external;
      if (ext.aborted) return this.abortRun(run, "cancelled", ext.reason);
      // Removed when the task finishes: one signal may cancel many tasks over a long time (a runner's stop).
      run.onCancel = () => this.abortRun(run, "cancelled", ext.reason);
      ext.addEventListener("abort", run.onCancel, { once: true });
    }
    if (run.timeout !== undefined) {
      const seconds = run.timeout;
      run.timer = setTimeout(() => this.abortRun(run, "deadline", new JobTimeoutError("task", seconds)), seconds * 1000);
    }
    const heads = rt.heads;
    for (let i = 0; i < heads.length; i++) void this.runFrom(run, heads[i]!);
  }

  private abortRun(run: TaskRun, why: string, reason: unknown): void {
    if (run.finished) return;
    const err = reason instanceof Error ? reason : new Error(`task ${why}`);
    this.fail(run, run.running ?? run.rt.heads[0]!.name, err, undefined);
  }

  /**
   * Runs `node` and then, in the same async frame, the first successor it makes ready, and so on: a linear
   * stretch of the graph costs one frame per task, not one per job. Further ready successors (fan-out) get
   * frames of their own. Never rejects: failures end the task.
   */
  private async runFrom(run: TaskRun, first: RtNode): Promise<void> {
    let node: RtNode | undefined = first;
    while (node !== undefined) {
      if (run.finished) return;
      run.running = node.name;
      let output: JobOutput;
      try {
        if (node.plain && this.tracer === undefined) {
          const waiting = run.waiting;
          waiting[node.index]!--;
          try {
            output = normalizeOutput(await node.job.run(run.task, new Context(this, run, node, 1)));
          } finally {
            waiting[node.index]!++;
          }
        } else {
          output = await this.runWithPolicy(run, node);
        }
      } catch (err) {
        if (run.finished) return this.jobReturned(run);
        if (err instanceof AttemptError) this.fail(run, node.name, err.cause, err.attempt);
        else this.fail(run, node.name, err, 1);
        return;
      }
      if (run.finished) return this.jobReturned(run);
      run.outputs[node.index] = output;
      if (node.spec.saveResult) (run.saved ??= {})[node.name] = output;
      if (node.tail && --run.tailsLeft === 0) {
        this.succeed(run);
        return;
      }
      const next: RtNode[] = node.next;
      const waiting = run.waiting;
      node = undefined;
      for (let i = 0; i < next.length; i++) {
        const s: RtNode = next[i]!;
        if (--waiting[s.index]! !== 0) continue;
        if (node === undefined) node = s;
        else void this.runFrom(run, s);
      }
    }
  }

  private async runWithPolicy(run: TaskRun, node: RtNode): Promise<JobOutput> {
    const { retry, timeout } = node.policy;
    const jobSpan = this.tracer?.startSpan(
      `job ${node.name}`,
      { attributes: { "jobchain.task_id": run.id, "jobchain.graph": run.rt.id, "jobchain.job": node.name } },
      run.span ? otelApi().trace.setSpan(otelApi().ROOT_CONTEXT, run.span) : undefined,
    );
    try {
      if (node.cls.input) {
        const r = node.cls.input.safeParse(run.task);
        if (!r.success) throw new AttemptError(new SchemaError(node.name, "input", r.error.message), 1);
      }
      for (let attempt = 1; ; attempt++) {
        let child: ChildAbort | undefined;
        let timer: NodeJS.Timeout | undefined;
        let held = false;
        try {
          const signal = run.signal;
          if (node.semaphore) {
            await node.semaphore.acquire(signal);
            held = true;
          }
          if (node.limiter) await node.limiter.acquire(signal);
          if (run.finished) throw signal.reason ?? new Error("task finished");
          let ctxSignal: AbortSignal = signal;
          let timedOut: Promise<never> | undefined;
          if (timeout !== undefined) {
            const attemptAbort = (child = childAbort(signal));
            ctxSignal = attemptAbort.signal;
            timedOut = new Promise<never>((_, reject) => {
              timer = setTimeout(() => {
                const err = new JobTimeoutError(`job '${node.name}'`, timeout);
                run.lingering = true;
                attemptAbort.controller.abort(err);
                reject(err);
              }, timeout * 1000);
            });
          }
          jobSpan?.addEvent("attempt", { attempt });
          // The job run is counted until it returns, which may be long after a timeout gave up on it.
          const waiting = run.waiting;
          waiting[node.index]!--;
          let running: Promise<unknown>;
          try {
            running = Promise.resolve(node.job.run(run.task, new Context(this, run, node, attempt, ctxSignal, jobSpan)));
          } catch (err) {
            waiting[node.index]!++;
            throw err;
          }
          const returned = (): void => {
            waiting[node.index]!++;
            if (run.finished) this.jobReturned(run);
          };
          running.then(returned, returned);
          const value = timedOut ? await Promise.race([running, timedOut]) : await running;
          const output = normalizeOutput(value);
          if (node.cls.output) {
            const r = node.cls.output.safeParse(output);
            if (!r.success) throw new NonRetryableError(new SchemaError(node.name, "output", r.error.message).message);
          }
          jobSpan?.setAttribute("jobchain.attempts", attempt);
          return output;
        } catch (err) {
          if (run.finished || err instanceof NonRetryableError || attempt >= retry.attempts) throw new AttemptError(err, attempt);
          jobSpan?.addEvent("retry", { attempt, error: errorInfo(node.name, err, attempt).message });
          this.logger.debug({ task: run.id, job: node.name, attempt, err }, "job attempt failed; retrying");
          try {
            await this.clock.sleep(backoffDelayMs(retry.backoff, attempt), run.signal);
          } catch {
            throw new AttemptError(err, attempt);
          }
        } finally {
          if (timer) clearTimeout(timer);
          child?.dispose();
          if (held) node.semaphore!.release();
        }
      }
    } catch (err) {
      if (jobSpan) {
        const cause = err instanceof AttemptError ? err.cause : err;
        jobSpan.recordException(cause as Error);
        jobSpan.setStatus({ code: SPAN_STATUS_ERROR, message: (cause as Error)?.message });
      }
      throw err;
    } finally {
      jobSpan?.end();
    }
  }

  private succeed(run: TaskRun): void {
    run.finished = true;
    // Every node has finished for a success, unless a timed-out attempt of a retried job is still running.
    if (run.lingering) this.noteAbandoned(run);
    const rt = run.rt;
    let result: JobOutput;
    if (rt.tails.length === 1) {
      result = run.outputs[rt.tails[0]!.index]!;
    } else {
      result = {};
      for (const t of rt.tails) result[t.name] = run.outputs[t.index]!;
    }
    const outcome: TaskOutcome =
      run.saved === undefined
        ? { status: "succeeded", id: run.id, graph: rt.id, task: run.submitted, result }
        : { status: "succeeded", id: run.id, graph: rt.id, task: run.submitted, result, saved: run.saved };
    this.finish(run, outcome);
  }

  private fail(run: TaskRun, job: string, err: unknown, attempt: number | undefined): void {
    if (run.finished) return;
    run.finished = true;
    // Running sibling branches learn of the failure through their signal.
    // Created here if no job has asked for it yet, so a job that reads ctx.signal later still sees the abort.
    (run.controller ??= new AbortController()).abort(new Error(`task failed in job '${job}'`));
    this.noteAbandoned(run);
    const error = errorInfo(job, err, attempt);
    this.logger.debug({ task: run.id, graph: run.rt.id, job, err }, "task failed");
    const outcome: TaskOutcome = { status: "failed", id: run.id, graph: run.rt.id, task: run.submitted, error };
    if (run.saved !== undefined) outcome.saved = run.saved;
    this.finish(run, outcome);
  }

  private finish(run: TaskRun, outcome: TaskOutcome): void {
    if (run.timer) clearTimeout(run.timer);
    if (run.onCancel) run.external!.removeEventListener("abort", run.onCancel);
    if (run.span) {
      if (outcome.status === "failed") {
        run.span.setStatus({ code: SPAN_STATUS_ERROR, message: outcome.error.message });
        run.span.setAttribute("jobchain.failed_job", outcome.error.job);
      }
      run.span.end();
    }
    const rt = run.rt;
    rt.inFlight--;
    this.counts.inFlight--;
    if (outcome.status === "succeeded") this.counts.succeeded++;
    else this.counts.failed++;
    if (rt.queueHead < rt.queue.length) {
      const next = rt.queue[rt.queueHead]!;
      rt.queue[rt.queueHead++] = undefined as never;
      if (rt.queueHead === rt.queue.length) {
        rt.queue.length = 0;
        rt.queueHead = 0;
      } else if (rt.queueHead > 4096 && rt.queueHead * 2 > rt.queue.length) {
        rt.queue.splice(0, rt.queueHead);
        rt.queueHead = 0;
      }
      this.counts.queued--;
      this.start(next);
    }
    const handler = this.options.onResult;
    if (handler) this.deliver(handler, outcome);
    run.resolve(outcome);
    this.checkIdle();
  }

  private deliver(handler: ResultHandler, outcome: TaskOutcome): void {
    this.pendingHandlers++;
    const call = async (): Promise<void> => {
      try {
        await handler(outcome);
      } catch (err) {
        this.counts.handlerErrors++;
        this.logger.error({ task: outcome.id, graph: outcome.graph, err }, "result handler failed");
      } finally {
        this.pendingHandlers--;
        this.checkIdle();
      }
    };
    if (this.options.serialResults) this.handlerTail = this.handlerTail.then(call);
    else void call();
  }

  private checkIdle(): void {
    if (this.counts.inFlight === 0 && this.counts.queued === 0 && this.pendingHandlers === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Remembers a finished task whose jobs have not all returned. */
  private noteAbandoned(run: TaskRun): void {
    const waiting = run.waiting;
    for (let i = 0; i < waiting.length; i++) {
      if (waiting[i]! < 0) {
        this.abandonedRuns.add(run);
        return;
      }
    }
  }

  /** A job run of a finished task returned: the task is no longer abandoned once none is left. */
  private jobReturned(run: TaskRun): void {
    if (!this.abandonedRuns.has(run) || run.waiting.some((w) => w < 0)) return;
    this.abandonedRuns.delete(run);
    if (this.abandonedRuns.size === 0) {
      const waiters = this.abandonWaiters;
      this.abandonWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Job runs whose task or attempt has ended without them (they ignore `ctx.signal`) and that still run. */
  get abandoned(): AbandonedJob[] {
    const out: AbandonedJob[] = [];
    for (const run of this.abandonedRuns) {
      run.waiting.forEach((w, i) => {
        if (w < 0) out.push({ taskId: run.id, graph: run.rt.id, job: run.rt.nodes[i]!.name });
      });
    }
    return out;
  }

  /**
   * Waits at most `ms` milliseconds for the abandoned job runs to return; resolves to those still running
   * (none: `[]`). Never rejects.
   */
  async waitForAbandoned(ms: number): Promise<AbandonedJob[]> {
    if (this.abandonedRuns.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.abandonWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
      ]);
      clearTimeout(timer);
    }
    return this.abandoned;
  }

  /** Resolves once every task submitted so far has finished and its result handling is done. */
  drain(): Promise<void> {
    if (this.counts.inFlight === 0 && this.counts.queued === 0 && this.pendingHandlers === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Closes input: later submissions reject with ClosedError. Resolves once every submitted task and its result
   * handling is done, after calling `close()` of the jobs. Job runs that outlived their task (see `abandoned`)
   * are not waited for: a job in a worker thread ends with its thread, which `close()` terminates; one in this
   * thread runs on, its result dropped, and may keep the process alive until it returns.
   */
  async markInputCompleted(): Promise<void> {
    this.closed = true;
    await this.drain();
    await this.closeJobs();
  }

  private jobsClosed = false;
  private async closeJobs(): Promise<void> {
    if (this.jobsClosed) return;
    this.jobsClosed = true;
    for (const rt of this.graphs.values()) for (const n of rt.nodes) await (n.job as JobLifecycle).close?.();
  }
}
