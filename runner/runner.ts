// A runner serves graph nodes: it consumes each served node's durable consumer, runs the node and every
// successor it can run in memory (see topology.ts), publishes what leaves this process, records results, and
// only then acknowledges the message. Killing it at any point loses nothing: an unacknowledged message is
// redelivered, and every publish it repeats is de-duplicated by message id or refused as a second result.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { Tracer } from "@opentelemetry/api";
import type { Server } from "node:http";
import {
  JobChain,
  Semaphore,
  type AbandonedJob,
  createLogger,
  type JobOutput,
  type Logger,
  type RunnableGraph,
  type TaskErrorInfo,
  type TaskOutcome,
} from "../core/index.ts";
import { InstanceBus, describe, isCreationRace, whileUnavailable, type BusOptions } from "./bus.ts";
import { decodeJson, isBatch, isWorkBody, tasksOf, type NodeProgress, type ResultRecord, type WorkBatch, type WorkEnvelope } from "./envelope.ts";
import { Forwarder } from "./forwarder.ts";
import { releaseMemory, watchIdle, type IdleWatch } from "./idle-memory.ts";
import { outboxFor, type Outbox } from "./publisher.ts";
import { RunnerMetrics, serveMetrics, type TaskEnd } from "./metrics.ts";
import { RESULT_NODE } from "./naming.ts";
import { SharedRateLimiters } from "./ratelimit.ts";
import { region, servedNodes, type Region } from "./topology.ts";
import { carrierFromHeaders, extractTrace, type TraceCarrier } from "./tracecontext.ts";

export interface RunnerOptions {
  nc: NatsConnection;
  /** Graph instances (with their jobs constructed) this runner serves nodes of. */
  graphs: RunnableGraph[];
  /** Serve only these nodes (of every instance). */
  nodes?: string[] | undefined;
  /** Serve only the nodes of this pool. */
  pool?: string | undefined;
  /**
   * Tasks worked on at once by this process (a batch message holds several), and the most messages it holds.
   * Default 256.
   */
  concurrency?: number | undefined;
  /**
   * Most tasks in one message to the next node. Tasks that finish in the same turn of the event loop and go to
   * the same node leave as one batch message (default 256); 1 sends a message per task.
   */
  forwardBatch?: number | undefined;
  bus?: BusOptions | undefined;
  logger?: Logger | undefined;
  tracer?: Tracer | undefined;
  /** Serve /metrics, /healthz and /readyz on this port. */
  metricsPort?: number | undefined;
  /**
   * Milliseconds without work after which the runner lets V8 return unused heap to the operating system (once
   * per idle period; also once when it starts, for the garbage of loading). Default 30000; 0 turns it off. Not
   * much shorter: the collection also drops compiled code, so the next burst starts slower.
   */
  releaseMemoryAfterIdleMs?: number | undefined;
}

/**
 * Seconds a runner's start keeps trying while JetStream cannot answer (a cluster that is still electing its
 * leaders, or busy creating the streams of several runners starting at once).
 */
const START_RETRY_SECONDS = 120;

interface RegionRuntime {
  region: Region;
  chain: JobChain;
}

interface InstanceRuntime {
  graph: RunnableGraph;
  bus: InstanceBus;
  forwarder: Forwarder;
  served: Set<string>;
  regions: Map<string, RegionRuntime>;
  prev: Map<string, string[]>;
  userSaved: Set<string>;
}

interface InFlight {
  msg: JsMsg;
  since: number;
  /** Given back to JetStream by stop(): nothing more is said about the message (no ack, no second nak). */
  handedBack?: boolean;
  /** The message's tasks, once decoded. */
  tasks: WorkEnvelope[];
}

/** Merges saved outputs; undefined when there are none. */
function mergeSaved(...parts: (Record<string, JobOutput> | undefined)[]): Record<string, JobOutput> | undefined {
  let out: Record<string, JobOutput> | undefined;
  for (const p of parts) if (p && Object.keys(p).length > 0) out = { ...out, ...p };
  return out;
}

export class Runner {
  readonly metrics = new RunnerMetrics();
  readonly logger: Logger;
  private readonly options: RunnerOptions;
  private readonly instances: InstanceRuntime[] = [];
  /** Messages in hand (bounds what is pulled). */
  private readonly semaphore: Semaphore;
  /**
   * Tasks running. Separate from messages: a batch message waits for task slots without holding any, so
   * messages can never hold every slot while waiting for more.
   */
  private readonly taskSlots: Semaphore;
  private readonly inFlight = new Set<InFlight>();
  private readonly consumers: ConsumerMessages[] = [];
  private readonly loops: Promise<void>[] = [];
  private readonly subs: Subscription[] = [];
  private readonly limiters: SharedRateLimiters;
  private readonly outbox: Outbox;
  private heartbeat: NodeJS.Timeout | undefined;
  private idle: IdleWatch | undefined;
  private server: Server | undefined;
  private stopping = false;
  private consuming = false;
  /** Aborted when stop() hands back the messages still in hand: cancels their tasks. */
  private readonly handBack = new AbortController();

  private constructor(options: RunnerOptions) {
    this.options = options;
    this.logger = options.logger ?? createLogger({ name: "jobchain-runner" });
    this.semaphore = new Semaphore(options.concurrency ?? 256);
    this.taskSlots = new Semaphore(options.concurrency ?? 256);
    this.limiters = new SharedRateLimiters(options.nc, options.bus?.replicas);
    this.outbox = outboxFor(options.nc);
  }

  /** Creates what the served nodes need in NATS and starts consuming. Resolves once consuming. */
  static async start(options: RunnerOptions): Promise<Runner> {
    const runner = new Runner(options);
    await runner.open();
    return runner;
  }

  /** Nodes served, as `graph:node`. */
  get served(): string[] {
    return this.instances.flatMap((i) => [...i.served].map((n) => `${i.graph.id}:${n}`));
  }

  private async open(): Promise<void> {
    const { nc, graphs } = this.options;
    for (const graph of graphs) {
      const served = new Set(servedNodes(graph, { nodes: this.options.nodes, pool: this.options.pool }));
      if (served.size === 0) continue;
      const bus = await whileUnavailable(() => InstanceBus.open(nc, graph.id, this.options.bus, { nodes: [...served], update: true }), START_RETRY_SECONDS, this.startRetry, isCreationRace);
      await whileUnavailable(() => bus.publishDescriptor(describe(graph)), START_RETRY_SECONDS, this.startRetry, isCreationRace);
      const forwarder = new Forwarder(
        {
          publish: (to, body, msgId, task) => bus.publishWorkText(to, body, msgId, task?.trace),
        },
        { maxTasks: Math.max(1, this.options.forwardBatch ?? 256), maxBytes: Math.floor(bus.messageLimit / 3) },
        // A batch closes when the connection's writes go out, so its publish leaves in the same write.
        (close) => this.outbox.defer(close),
      );
      this.instances.push({
        graph,
        bus,
        forwarder,
        served,
        regions: new Map(),
        prev: new Map(graph.nodes.map((n) => [n.name, n.prev])),
        userSaved: new Set(graph.nodes.filter((n) => n.saveResult).map((n) => n.name)),
      });
    }
    if (this.instances.length === 0) {
      throw new Error(
        `no nodes to serve: ${this.options.pool !== undefined ? `pool '${this.options.pool}'` : `nodes ${this.options.nodes?.join(", ")}`} matches no node of ${graphs.map((g) => g.id).join(", ")}`,
      );
    }
    const ackWait = (this.instances[0]!.bus.options.ackWait * 1000) / 3;
    this.heartbeat = setInterval(() => this.beat(ackWait), Math.max(250, Math.min(ackWait, 10_000)));
    this.heartbeat.unref();
    if (this.options.metricsPort !== undefined) {
      this.server = await serveMetrics(this.metrics, this.options.metricsPort, () => this.consuming && !this.stopping);
    }
    for (const rt of this.instances) {
      // A message that could not be completed in max_deliver deliveries: record its task as failed.
      this.subs.push(
        nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${rt.bus.names.stream}.*`, {
          queue: `jc-dead-letter-${rt.bus.names.stream}`,
          callback: (err, m) => {
            if (!err) void this.deadLetter(rt, m.data);
          },
        }),
      );
      for (const node of rt.served) await whileUnavailable(() => this.consume(rt, node), START_RETRY_SECONDS, this.startRetry, isCreationRace);
    }
    this.consuming = true;
    const idleMs = this.options.releaseMemoryAfterIdleMs ?? 30_000;
    if (idleMs > 0) {
      // Loading the configuration and the job modules leaves most of an idle runner's heap as garbage.
      releaseMemory();
      this.idle = watchIdle(() => this.inFlight.size === 0, idleMs);
    }
    this.logger.info({ served: this.served }, "runner consuming");
  }

  /** Logs a start-up step that JetStream could not answer yet (it is tried again). */
  private readonly startRetry = (err: unknown): void => {
    this.logger.warn({ err: (err as Error)?.message }, "JetStream not available yet (a cluster electing leaders?): trying again");
  };

  /** The port /metrics is served on, when enabled. */
  get metricsPort(): number | undefined {
    const a = this.server?.address();
    return typeof a === "object" && a ? a.port : undefined;
  }

  private async consume(rt: InstanceRuntime, node: string): Promise<void> {
    const consumer = await rt.bus.js.consumers.get(rt.bus.names.stream, rt.bus.names.consumer(node));
    const max = Math.max(1, Math.min(1000, this.semaphore.capacity));
    // Pull requests live in the consumer's leader only: when a server dies with the leadership, the new leader
    // knows nothing of them, and nothing arrives until the client notices two missed heartbeats (half `expires`
    // apart) and pulls again. 5 s instead of nats.js' 30 s bounds that wait; an idle runner pulls every 5 s.
    const messages = await consumer.consume({ max_messages: max, expires: 5_000 });
    this.consumers.push(messages);
    this.loops.push(
      (async () => {
        for await (const m of messages) {
          if (this.stopping) {
            // Hand the message back at once instead of letting it wait out its ack deadline.
            m.nak();
            continue;
          }
          if (!this.semaphore.tryAcquire()) await this.semaphore.acquire();
          if (this.stopping) {
            this.semaphore.release();
            m.nak();
            continue;
          }
          const entry: InFlight = { msg: m, since: Date.now(), tasks: [] };
          this.inFlight.add(entry);
          void this.handle(rt, node, entry).finally(() => {
            // Work is "in flight" until here, so this is the one mark of activity the idle watch needs.
            this.idle?.active();
            this.inFlight.delete(entry);
            this.semaphore.release();
          });
        }
      })(),
    );
  }

  /** Extends the ack deadline of long-running messages, so a slow job is not redelivered while it works. */
  private beat(olderThanMs: number): void {
    const now = Date.now();
    for (const f of this.inFlight) if (now - f.since >= olderThanMs) f.msg.working();
  }

  private regionRuntime(rt: InstanceRuntime, entry: string): RegionRuntime {
    let r = rt.regions.get(entry);
    if (r) return r;
    const reg = region(rt.graph, entry, rt.served);
    const members = new Set(reg.nodes);
    const capture = new Set([...reg.emitting, ...rt.userSaved]);
    const nodes = rt.graph.nodes
      .filter((n) => members.has(n.name))
      .map((n) => ({
        ...n,
        next: n.next.filter((t) => members.has(t)),
        prev: n.name === entry ? [] : n.prev,
        // The engine keeps these outputs in `saved`: what leaves the region, and what the user asked to keep.
        saveResult: capture.has(n.name),
      }));
    const sub: RunnableGraph = {
      ...rt.graph,
      nodes,
      heads: [entry],
      tails: nodes.filter((n) => n.next.length === 0).map((n) => n.name),
    };
    const chain = new JobChain([sub], {
      concurrency: 1e9,
      logger: this.logger,
      tracer: this.options.tracer,
      rateLimiters: this.limiters,
      onProgress: (taskId) => this.progress(taskId),
    });
    r = { region: reg, chain };
    rt.regions.set(entry, r);
    return r;
  }

  private progress(taskId: string): void {
    for (const f of this.inFlight) {
      if (f.tasks.some((t) => t.id === taskId)) f.msg.working();
    }
  }

  private async handle(rt: InstanceRuntime, node: string, entry: InFlight): Promise<void> {
    const m = entry.msg;
    const received = performance.now();
    let tasks: WorkEnvelope[] = [];
    try {
      const body = await this.decodeWork(rt, m.data);
      if (typeof body === "string") {
        this.discard(rt, node, m, body);
        return;
      }
      if (isBatch(body) && body.batch.length > 1 && m.info.deliveryCount > 1) {
        await this.split(rt, node, m, body.batch);
        return;
      }
      // A batch: every task runs as if it came alone.
      tasks = tasksOf(body);
      entry.tasks = tasks;
      // JobChain puts a task's trace context in its envelope; headers (which cost a decode) only as a fallback.
      const headerTrace = this.options.tracer && tasks.length === 1 && !tasks[0]!.trace ? carrierFromHeaders(m.headers) : undefined;
      await Promise.all(tasks.map((env) => this.runTask(rt, node, env, env.trace ?? headerTrace, received)));
      if (entry.handedBack) return;
      this.outbox.defer(() => m.ack());
    } catch (err) {
      if (entry.handedBack) return;
      await this.onHandlingError(rt, node, m, tasks, err);
    }
  }

  /**
   * The message's body, or why it is not a work message of this instance: bytes that are not JSON (or a stored
   * payload that is not) and JSON of another shape stay so however often they are delivered.
   */
  private async decodeWork(rt: InstanceRuntime, data: Uint8Array): Promise<WorkEnvelope | WorkBatch | string> {
    let body: unknown;
    try {
      const decoded = rt.bus.decodeBody<unknown>(data);
      body = decoded instanceof Promise ? await decoded : decoded;
    } catch (err) {
      if (err instanceof SyntaxError) return `not JSON: ${err.message}`;
      throw err;
    }
    if (!isWorkBody(body)) return "not a work message (an envelope with v, id, graph, inputs and submitted, or a batch of them)";
    const foreign = tasksOf(body).find((e) => e.graph !== rt.graph.id);
    if (foreign) return `a task of graph '${foreign.graph}' on a subject of '${rt.graph.id}'`;
    return body;
  }

  /** Removes a message that can never be handled (redelivering it would not change it), with a warning. */
  private discard(rt: InstanceRuntime, node: string, m: JsMsg, why: string): void {
    this.logger.warn({ graph: rt.graph.id, node, stream_seq: m.info.streamSequence, why }, "malformed message removed");
    this.outbox.defer(() => m.term(why.slice(0, 200)));
  }

  /**
   * A batch that comes back (the runner that had it died, or gave it up) is split into a message per task, so a
   * task that crashes runners fails alone, after its own deliveries, instead of failing its whole batch. The
   * message ids derive from the batch's, so a split repeated after another crash is de-duplicated.
   */
  private async split(rt: InstanceRuntime, node: string, m: JsMsg, batch: WorkEnvelope[]): Promise<void> {
    const base = m.headers?.get("Nats-Msg-Id") || `${rt.bus.names.stream}:${m.info.streamSequence}`;
    await Promise.all(batch.map((env) => rt.bus.publishWork(node, env, `${base}|${env.id}`)));
    this.outbox.defer(() => m.ack());
    this.logger.info({ graph: rt.graph.id, node, tasks: batch.length, delivery: m.info.deliveryCount }, "batch came back: split into a message per task");
  }

  /** processTask within the runner's task concurrency, counted in the node's metrics (per task, not message). */
  private async runTask(rt: InstanceRuntime, node: string, env: WorkEnvelope, trace: TraceCarrier | undefined, received: number): Promise<boolean> {
    if (!this.taskSlots.tryAcquire()) await this.taskSlots.acquire();
    this.metrics.started(rt.graph.id, node);
    let end: TaskEnd = "handed-back";
    try {
      const ok = await this.processTask(rt, node, env, trace);
      end = ok ? "succeeded" : this.handBack.signal.aborted ? "handed-back" : "failed";
      return ok;
    } finally {
      this.taskSlots.release();
      this.metrics.finished(rt.graph.id, node, (performance.now() - received) / 1000, end);
    }
  }

  /** Runs one task's region and forwards what leaves it. Resolves false when the task failed (its failure is recorded). */
  private async processTask(rt: InstanceRuntime, node: string, env: WorkEnvelope, trace: TraceCarrier | undefined): Promise<boolean> {
    if (env.deadline !== undefined && Date.now() > env.deadline) {
      await this.recordFailure(rt, env, { job: node, message: "task deadline passed before the job could run" }, env.saved);
      return false;
    }
    const { region: reg, chain } = this.regionRuntime(rt, node);
    if (env.progress) this.announce(rt, env.id, [node], "Running");
    const outcome = await chain.execute(env.task, {
      id: env.id,
      inputs: env.inputs,
      timeout: env.deadline !== undefined ? Math.max(0.001, (env.deadline - Date.now()) / 1000) : undefined,
      traceContext: this.options.tracer ? extractTrace(trace) : undefined,
      signal: this.handBack.signal,
    });
    const captured = outcome.saved ?? {};
    const userSaved = mergeSaved(env.saved, pick(captured, rt.userSaved));
    if (env.progress) {
      const done = reg.nodes.filter((n) => n in captured);
      this.announce(rt, env.id, done, "Succeeded");
      if (outcome.status === "failed" && outcome.error.job) this.announce(rt, env.id, [outcome.error.job], "Failed", outcome.error.attempt);
    }
    if (outcome.status === "failed") {
      // Handed back by stop(): the task runs again after redelivery, so this is no failure to record.
      if (this.handBack.signal.aborted) return false;
      await this.recordFailure(rt, env, outcome.error, userSaved);
      return false;
    }
    await this.forward(rt, reg, env, captured, userSaved, trace);
    return true;
  }

  /** Tells whoever follows the task's progress (the operator, for a JobTask) that nodes started or ended. Best effort. */
  private announce(rt: InstanceRuntime, id: string, nodes: string[], phase: NodeProgress["phase"], attempts?: number): void {
    const at = Date.now();
    const subject = rt.bus.names.progressSubject(id);
    for (const node of nodes) {
      const p: NodeProgress = { id, node, phase, at, ...(attempts !== undefined ? { attempts } : {}) };
      this.outbox.defer(() => this.options.nc.publish(subject, JSON.stringify(p)));
    }
  }

  /** Publishes what leaves the region: messages to successors elsewhere, fan-in inputs, and the task result. */
  private async forward(
    rt: InstanceRuntime,
    reg: Region,
    env: WorkEnvelope,
    outputs: Record<string, JobOutput>,
    saved: Record<string, JobOutput> | undefined,
    trace: TraceCarrier | undefined,
  ): Promise<void> {
    const work: Promise<unknown>[] = [];
    for (const { from, to } of reg.exits) {
      const prev = rt.prev.get(to)!;
      const output = outputs[from]!;
      if (prev.length === 1) {
        const next: WorkEnvelope = { ...env, inputs: { [from]: output }, saved, trace };
        // Already sent before (the task ran again, e.g. resubmitted in a new batch): make sure whoever waits for
        // it hears its result.
        work.push(rt.forwarder.send(to, next, `${env.id}|${from}|${to}`).then((dup) => (dup ? rt.bus.announceResult(env.id) : undefined)));
      } else {
        work.push(
          rt.bus.addJoinInput(env, to, prev, from, output, saved).then(async (state) => {
            // Already joined before: this task ran again (a resubmission); its result, if recorded, is re-announced.
            if (state === "done") return rt.bus.announceResult(env.id);
            if (!state) return;
            const ack = await rt.bus.publishWork(to, { ...env, inputs: state.inputs, saved: state.saved, trace }, `${env.id}|*|${to}`);
            await rt.bus.markJoinDone(env.id, to);
            if (ack.duplicate) await rt.bus.announceResult(env.id);
          }),
        );
      }
    }
    if (reg.tails.length > 0) {
      const tails = rt.graph.tails;
      if (tails.length === 1) {
        work.push(this.recordSuccess(rt, env, outputs[tails[0]!]!, saved));
      } else {
        // Several tails: the result waits for all of them, wherever they run.
        work.push(
          (async () => {
            let state;
            for (const t of reg.tails) state = (await rt.bus.addJoinInput(env, RESULT_NODE, tails, t, outputs[t]!, saved)) ?? state;
            if (state === "done") return rt.bus.announceResult(env.id);
            if (!state) return;
            const result: Record<string, JobOutput> = {};
            for (const t of tails) result[t] = state.inputs[t]!;
            await this.recordSuccess(rt, env, result, state.saved);
            await rt.bus.markJoinDone(env.id, RESULT_NODE);
          })(),
        );
      }
    }
    await Promise.all(work);
  }

  private async recordSuccess(rt: InstanceRuntime, env: WorkEnvelope, result: JobOutput, saved: Record<string, JobOutput> | undefined): Promise<void> {
    const record: ResultRecord = { status: "succeeded", id: env.id, graph: rt.graph.id, task: env.task, result, finished: Date.now() };
    if (saved) record.saved = saved;
    await rt.bus.publishResult(record);
  }

  private async recordFailure(rt: InstanceRuntime, env: WorkEnvelope, error: TaskErrorInfo, saved: Record<string, JobOutput> | undefined): Promise<void> {
    const record: ResultRecord = { status: "failed", id: env.id, graph: rt.graph.id, task: env.task, error, finished: Date.now() };
    if (saved) record.saved = saved;
    await rt.bus.publishResult(record);
  }

  /**
   * Infrastructure trouble (NATS unavailable, a payload missing): hand the message back for a later try; on its
   * last allowed delivery, record the task as failed instead of trying forever.
   */
  private async onHandlingError(rt: InstanceRuntime, node: string, m: JsMsg, tasks: WorkEnvelope[], err: unknown): Promise<void> {
    const message = (err as Error)?.message ?? String(err);
    const last = m.info.deliveryCount >= rt.bus.options.maxDeliver;
    this.logger.warn({ graph: rt.graph.id, node, tasks: tasks.map((t) => t.id), delivery: m.info.deliveryCount, err: message }, "message not completed");
    if (!last) {
      m.nak(Math.min(30_000, 250 * 2 ** m.info.deliveryCount));
      return;
    }
    try {
      const error = { job: node, message: `gave up after ${m.info.deliveryCount} deliveries: ${message}` };
      await Promise.all(tasks.map((env) => this.recordFailure(rt, env, error, env.saved)));
      m.term(message.slice(0, 200));
    } catch {
      m.nak(1000);
    }
  }

  /** Handles a MAX_DELIVERIES advisory: the message's task is recorded as failed and the message removed. */
  private async deadLetter(rt: InstanceRuntime, data: Uint8Array): Promise<void> {
    try {
      const adv = decodeJson<{ stream: string; consumer: string; stream_seq: number; deliveries: number }>(data);
      const stored = await rt.bus.jsm.streams.getMessage(adv.stream, { seq: adv.stream_seq });
      if (!stored) return;
      // A body that is not a work message of this instance has no task to record a failure for; the message is
      // removed all the same.
      const body = await this.decodeWork(rt, stored.data).catch(() => "unreadable");
      const node = adv.consumer.replace(/^node_/, "");
      const error = { job: node, message: `no runner completed this job in ${adv.deliveries} deliveries` };
      const tasks = typeof body === "string" ? [] : tasksOf(body);
      await Promise.all(tasks.map((env) => this.recordFailure(rt, env, error, env.saved)));
      await rt.bus.jsm.streams.deleteMessage(adv.stream, adv.stream_seq).catch(() => undefined);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, "could not record a dead-lettered task");
    }
  }

  /**
   * Stops taking messages and finishes the ones in hand; after `graceMs` it hands back what is still in hand
   * (JetStream redelivers it) and cancels those tasks through their signal, then closes the chains. Resolves
   * within about `graceMs` plus `abandonGraceMs`, also when the connection to NATS is gone, to the job runs that
   * ignored their abort signal and still run (the caller exits without them). The connection is left to the
   * caller.
   */
  async stop(graceMs = 30_000, abandonGraceMs = 500): Promise<AbandonedJob[]> {
    if (this.stopping) return [];
    this.stopping = true;
    this.consuming = false;
    for (const s of this.subs) s.unsubscribe();
    for (const c of this.consumers) c.stop();
    const deadline = Date.now() + graceMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const f of this.inFlight) {
      f.handedBack = true;
      f.msg.nak();
    }
    this.handBack.abort(new Error("the runner is stopping: the task was handed back for redelivery"));
    // A loop waits for a message slot; slots come free as the cancelled tasks end, unless a publish to a
    // server that is gone holds one: then the loop is left behind.
    await settledWithin(Promise.allSettled(this.loops), abandonGraceMs);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.idle?.stop();
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    const chains = this.instances.flatMap((rt) => [...rt.regions.values()].map((r) => r.chain));
    // Every task has its outcome now (a cancelled one at once); jobs that ignore the signal are waited for briefly.
    const left = (await Promise.all(chains.map((c) => c.waitForAbandoned(abandonGraceMs)))).flat();
    for (const chain of chains) await chain.markInputCompleted();
    if (left.length > 0) this.logger.warn({ jobs: left }, "jobs still running after the drain timeout ignored their abort signal");
    return left;
  }
}

/** Resolves once `p` settles or `ms` have passed, whichever is first. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function pick(from: Record<string, JobOutput>, keys: Set<string>): Record<string, JobOutput> | undefined {
  let out: Record<string, JobOutput> | undefined;
  for (const k of keys) if (Object.hasOwn(from, k)) (out ??= {})[k] = from[k]!;
  return out;
}

export type { TaskOutcome };
