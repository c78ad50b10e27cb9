// Submitting tasks to a distributed graph and getting their results: from TypeScript, from `jobchain submit`,
// and from the operator (JobTask resources).
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { DeliverPolicy, type ConsumerMessages, type JsMsg, type OrderedPushConsumerOptions, type PushConsumer } from "@nats-io/jetstream";
import type { Tracer } from "@opentelemetry/api";
import { otelApi } from "../core/otel.ts";
import { UnknownGraphError, selectInstance, taskIdOf, type GraphInstance, type TaskOutcome } from "../core/index.ts";
import { InstanceBus, describe, whileUnavailable, type BusOptions, type GraphDescriptor } from "./bus.ts";
import { batchId, type ResultRecord, type WorkEnvelope } from "./envelope.ts";
import { taskIdOfToken } from "./naming.ts";
import { carrierOf, type TraceCarrier } from "./tracecontext.ts";

export interface ClientOptions {
  nc: NatsConnection;
  /** Graph instances from a configuration; without them the client reads descriptors that runners publish. */
  graphs?: GraphInstance[] | undefined;
  bus?: BusOptions | undefined;
  tracer?: Tracer | undefined;
  /** Seconds a submission keeps retrying while NATS is unavailable. Default 60. */
  submitRetrySeconds?: number | undefined;
  /**
   * Gather submissions made at about the same moment into batch messages of up to this many tasks (default 1:
   * one message per task). Batches cost far fewer JetStream operations per task. A repeated submission is then
   * recognised per batch, not per task: resubmitting a task in a different batch runs it again, though its
   * result is still recorded only once.
   */
  batch?: number | undefined;
}

export interface ClientSubmitOptions {
  graph: string;
  /** Task id; default: the task's own `id` field when it is a string or number, else generated. */
  id?: string | undefined;
  /** Seconds the task may take from now; it fails when it passes this deadline. */
  timeout?: number | undefined;
  /** Runners announce each node's start and end for this task (see `progress()`). */
  progress?: boolean | undefined;
  /** W3C trace context the task joins when this client has no tracer (e.g. the operator's per-JobTask trace). */
  trace?: TraceCarrier | undefined;
}

export interface Submitted {
  id: string;
  graph: string;
  /** True when a task with this id was already accepted (within the duplicate window): it is not run twice. */
  duplicate: boolean;
}

interface Watch {
  bus: InstanceBus;
  descriptor: GraphDescriptor;
  /** Results recorded since following started, read from the results stream. */
  recorded: Reading | undefined;
  /** Repeats: recorded results announced again for tasks that ran again. */
  subscription: Subscription | undefined;
  started: Promise<void> | undefined;
  waiters: Map<string, ((r: TaskOutcome) => void)[]>;
  /**
   * Tasks this client submitted that no `result()` call has claimed yet, with their result once it arrives (it
   * can come before the call, e.g. between a submission's ack and `result()`). Results of other clients' tasks
   * are not kept: a `result()` call for one of those reads the stream instead.
   */
  unclaimed: Map<string, TaskOutcome | undefined>;
}

/** How often a client asks after the consumers it reads results with (see checkReaders). */
const READER_CHECK_MS = 2_000;

/** How many submitted tasks (and their results) a client keeps for a later `result()` call. */
const UNCLAIMED_LIMIT = 50_000;

interface Reading {
  consumer: PushConsumer;
  messages: ConsumerMessages;
}

/**
 * Reads an instance's results stream from `start` on with an ordered consumer the server pushes to as it stores
 * each result. Its state stays in the server's memory: it is ephemeral, and started afresh after a reconnection.
 */
async function readResults(
  bus: InstanceBus,
  start: { deliver_policy: DeliverPolicy } | { opt_start_time: string } | { opt_start_seq: number },
  take: (m: JsMsg) => void,
): Promise<Reading> {
  // `mem_storage` is not among the typed options, but goes into the consumer's configuration with the rest (were
  // it ever dropped, the consumer would merely keep its state on disk).
  const options: Partial<OrderedPushConsumerOptions> & { mem_storage: boolean } = { ...start, mem_storage: true };
  const consumer = await bus.js.consumers.getPushConsumer(bus.names.resultsStream, options);
  return { consumer, messages: await consumer.consume({ callback: take }) };
}

/** Stops reading and removes the consumer from the server (it would otherwise linger a few minutes). */
async function stopReading(r: Reading): Promise<void> {
  await r.messages.close().catch(() => undefined);
  await r.consumer.delete().catch(() => undefined);
}

function stripRecord(r: ResultRecord): TaskOutcome {
  const { finished: _finished, ...outcome } = r;
  return outcome as TaskOutcome;
}

export class JobChainClient {
  private readonly options: ClientOptions;
  private readonly watches = new Map<string, Promise<Watch>>();
  private closed = false;

  constructor(options: ClientOptions) {
    this.options = options;
  }

  get nc(): NatsConnection {
    return this.options.nc;
  }

  private async descriptorFor(graph: string): Promise<GraphDescriptor> {
    if (this.options.graphs) return describe(selectInstance(this.options.graphs, graph));
    const d = await InstanceBus.readDescriptor(this.options.nc, graph);
    if (!d) {
      const known = await InstanceBus.knownInstances(this.options.nc);
      throw new UnknownGraphError(
        graph,
        known,
        known.length > 0
          ? `graph '${graph}' is not known to this NATS server; runners have published: ${known.join(", ")}`
          : `graph '${graph}' is not known to this NATS server: no runner has published it (start a runner for it, or pass its configuration)`,
      );
    }
    return d;
  }

  /**
   * Resolves a graph selector (`graph` or `graph/group`) to its instance id. Rejects with UnknownGraphError when
   * neither the configuration nor any runner knows it.
   */
  async resolveGraph(graph: string): Promise<string> {
    return (await this.watch(graph)).descriptor.id;
  }

  /**
   * Heads of the instance that no runner is pulling from right now (tasks for them wait in JetStream until a
   * runner starts). A missing consumer counts as not served.
   */
  async idleHeads(graph: string): Promise<string[]> {
    const w = await this.watch(graph);
    const idle: string[] = [];
    for (const head of w.descriptor.heads) {
      try {
        if ((await w.bus.backlog(head)).pulling === 0) idle.push(head);
      } catch {
        idle.push(head);
      }
    }
    return idle;
  }

  /** Watches whose results are being followed, by the selector they were asked for (the fast path). */
  private readonly following = new Map<string, Watch>();

  private async followed(graph: string): Promise<Watch> {
    const w = await this.watch(graph);
    await this.follow(w);
    this.following.set(graph, w);
    return w;
  }

  private watch(graph: string): Promise<Watch> {
    let w = this.watches.get(graph);
    if (!w) {
      w = whileUnavailable(async () => {
        const descriptor = await this.descriptorFor(graph);
        // A graph from the configuration may have no streams yet (no runner has started): create them, so its
        // tasks are accepted and wait for runners. A graph that runners published has them already.
        // Submissions repeat on their own terms (submitRetrySeconds), so the bus does not repeat them as well.
        const options: BusOptions = { ...this.options.bus, storeRetry: 0 };
        const bus = await InstanceBus.open(this.options.nc, descriptor.id, options, this.options.graphs ? { nodes: [], update: false } : undefined);
        return { bus, descriptor, recorded: undefined, subscription: undefined, started: undefined, waiters: new Map(), unclaimed: new Map() } as Watch;
      }, this.options.submitRetrySeconds ?? 60);
      w.catch(() => this.watches.delete(graph));
      this.watches.set(graph, w);
    }
    return w;
  }

  /**
   * Starts following results of the instance (once); resolves when following. Two sources: the results stream
   * from this moment on (an ordered consumer the server feeds as it stores each result, so a waiter hears of a
   * result without a further round through the runner that recorded it), and the announcements runners make when
   * a task ran again and its recorded result is sent once more (that result was stored before following began,
   * so the stream consumer does not see it). Only recorded results reach waiters, each with the recorded content.
   */
  private follow(w: Watch): Promise<void> {
    w.started ??= (async () => {
      w.subscription = this.options.nc.subscribe(w.bus.names.doneWildcard, {
        callback: (err, m) => {
          if (!err) this.take(w, m.subject, m.data);
        },
      });
      await this.followRecorded(w);
      await this.options.nc.flush();
      // After a reconnection (perhaps to a restarted server, which has forgotten the ordered consumers), reading
      // starts afresh, and then every awaited task is looked up: a result recorded before the new consumer
      // exists is found by the lookup, one recorded after it arrives through the consumer.
      this.onReconnect(
        async () => {
          await this.followRecorded(w);
          for (const id of w.waiters.keys()) void this.lookUp(w, id);
        },
        () => w.recorded,
      );
    })();
    return w.started;
  }

  /** A result message (its subject ends with the task's token): decoded only when this client awaits that task. */
  private take(w: Watch, subject: string, data: Uint8Array): void {
    const id = taskIdOfToken(subject.slice(subject.lastIndexOf(".") + 1));
    if (!w.waiters.has(id) && !w.unclaimed.has(id)) return;
    try {
      const record = w.bus.decodeBody<ResultRecord>(data);
      if (record instanceof Promise) record.then((r) => this.deliver(w, stripRecord(r)), () => undefined);
      else this.deliver(w, stripRecord(record));
    } catch {
      // not a result record: ignore
    }
  }

  /** (Re)starts reading the results stream from now on, replacing the consumer read before, if any. */
  private async followRecorded(w: Watch): Promise<void> {
    const before = w.recorded;
    w.recorded = await readResults(w.bus, { deliver_policy: DeliverPolicy.New }, (m) => this.take(w, m.subject, m.data));
    if (before) await stopReading(before);
  }

  /**
   * Restarts of reading so far (after reconnections, or a reader found gone): a result recorded while reading was
   * being restarted is only found by a lookup.
   */
  private reconnects = 0;
  /**
   * What starts afresh after a reconnection: the reading of each followed instance and of each `results()`, with
   * the reader each one uses now.
   */
  private readonly reconnectHooks = new Map<() => Promise<void>, { run: () => Promise<void>; reading: () => Reading | undefined }>();
  private reconnectWatch = false;
  private readerCheck: NodeJS.Timeout | undefined;
  /** Consecutive failed checks of each reader. */
  private readonly readerFailures = new WeakMap<Reading, number>();

  /** Runs `hook` after every reconnection, and when `reading()` is found gone, until the returned function removes it. */
  private onReconnect(hook: () => Promise<void>, reading: () => Reading | undefined): () => void {
    // One restart at a time per reader: a reconnection and a failed check may both ask for one.
    let last: Promise<void> = Promise.resolve();
    const run = (): Promise<void> => (last = last.then(hook, hook));
    this.reconnectHooks.set(hook, { run, reading });
    if (!this.reconnectWatch) {
      this.reconnectWatch = true;
      void (async () => {
        for await (const s of this.options.nc.status()) {
          if (s.type !== "reconnect") continue;
          this.reconnects++;
          for (const h of this.reconnectHooks.values()) await this.retrying(h.run).catch(() => undefined);
        }
      })();
      // In a cluster a reader's consumer (one copy, in the memory of one server) dies with its server while this
      // client stays connected to another: no reconnection tells of it, and nats.js would notice only after two
      // missed 30-s heartbeats. Asking after it every 2 s finds it gone within a few seconds.
      let checking = false;
      this.readerCheck = setInterval(() => {
        if (checking || this.closed) return;
        checking = true;
        void this.checkReaders().finally(() => (checking = false));
      }, READER_CHECK_MS);
      this.readerCheck.unref();
    }
    return () => this.reconnectHooks.delete(hook);
  }

  /** Starts afresh every reader whose consumer could not be found (or asked after) twice in a row. */
  private async checkReaders(): Promise<void> {
    for (const [hook, { run, reading }] of this.reconnectHooks) {
      const r = reading();
      if (!r) continue;
      let ok: boolean;
      try {
        const info = await r.consumer.info();
        ok = !info.cluster || Boolean(info.cluster.leader);
      } catch {
        ok = false;
      }
      const failures = ok ? 0 : (this.readerFailures.get(r) ?? 0) + 1;
      this.readerFailures.set(r, failures);
      if (failures >= 2 && !this.closed && this.reconnectHooks.has(hook)) {
        this.reconnects++;
        await this.retrying(run).catch(() => undefined);
      }
    }
  }

  /**
   * Runs `step` until it succeeds, backing off while the server is busy or away. Rethrows its last error once the
   * client or the connection is closed, or after `giveUpAt` (epoch ms).
   */
  private async retrying<T>(step: () => Promise<T>, giveUpAt = Infinity): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await step();
      } catch (err) {
        if (this.closed || this.options.nc.isClosed() || Date.now() > giveUpAt) throw err;
        await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt)));
      }
    }
  }

  /**
   * Hands a recorded result to whoever waits for it, or keeps it for the `result()` call that comes a moment later
   * for a task this client submitted. (A result can be announced twice, always with the recorded content.)
   */
  private deliver(w: Watch, outcome: TaskOutcome): void {
    const waiting = w.waiters.get(outcome.id);
    if (waiting) {
      w.waiters.delete(outcome.id);
      for (const resolve of waiting) resolve(outcome);
    } else if (w.unclaimed.has(outcome.id)) {
      w.unclaimed.set(outcome.id, outcome);
    }
  }

  /**
   * Submits a task. Resolves once JetStream has stored it (it will then run even if this process dies).
   * Submitting the same id again within the duplicate window is ignored (`duplicate: true`).
   */
  async submit(task: unknown, options: ClientSubmitOptions): Promise<Submitted> {
    const w = this.following.get(options.graph) ?? (await this.followed(options.graph));
    const env = this.envelope(w, task, options.id, options.timeout, options.progress);
    const id = env.id;
    const span = this.options.tracer?.startSpan(`submit ${w.descriptor.id}`, { attributes: { "jobchain.task_id": id } });
    try {
      if (span) env.trace = carrierOf(otelApi().trace.setSpan(otelApi().context.active(), span));
      else if (options.trace) env.trace = options.trace;
      if ((this.options.batch ?? 1) > 1) return await this.gather(w, env);
      const heads = w.descriptor.heads;
      const publish = (head: string) => this.publishWithRetry(() => w.bus.publishWork(head, env, `${id}||${head}`));
      const acks = heads.length === 1 ? [await publish(heads[0]!)] : await Promise.all(heads.map(publish));
      return { id, graph: w.descriptor.id, duplicate: acks.every((a) => a.duplicate) };
    } finally {
      span?.end();
    }
  }

  /**
   * Publishes, retrying through a server restart or a brief disconnection for up to `submitRetrySeconds`.
   * Safe because the message id makes a repeated publish a no-op.
   */
  private publishWithRetry<T>(publish: () => Promise<T>): Promise<T> {
    return this.retrying(publish, Date.now() + (this.options.submitRetrySeconds ?? 60) * 1000);
  }

  /**
   * Submits many tasks in batch messages of up to `batchSize` tasks (default 256). Resolves in input order once
   * all are stored. A batch submitted again unchanged is recognised as a duplicate.
   */
  async submitBatch(tasks: unknown[], options: Omit<ClientSubmitOptions, "id"> & { batchSize?: number }): Promise<Submitted[]> {
    const w = this.following.get(options.graph) ?? (await this.followed(options.graph));
    const envs = tasks.map((t) => this.envelope(w, t, undefined, options.timeout));
    const size = Math.max(1, options.batchSize ?? 256);
    const out: Submitted[] = [];
    const chunks: WorkEnvelope[][] = [];
    for (let i = 0; i < envs.length; i += size) chunks.push(envs.slice(i, i + size));
    await Promise.all(
      chunks.map(async (chunk) => {
        const duplicate = await this.publishChunk(w, chunk);
        for (const e of chunk) out.push({ id: e.id, graph: w.descriptor.id, duplicate });
      }),
    );
    const order = new Map(envs.map((e, i) => [e.id, i]));
    return out.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  }

  private envelope(w: Watch, task: unknown, id: string | undefined, timeout: number | undefined, progress?: boolean): WorkEnvelope {
    const taskId = taskIdOf(task, id);
    // Kept from before it is published: its result may arrive before the submission's ack is handled.
    if (!w.unclaimed.has(taskId)) w.unclaimed.set(taskId, undefined);
    if (w.unclaimed.size > UNCLAIMED_LIMIT) w.unclaimed.delete(w.unclaimed.keys().next().value!);
    const now = Date.now();
    return {
      v: 1,
      id: taskId,
      graph: w.descriptor.id,
      task,
      inputs: {},
      submitted: now,
      ...(timeout !== undefined ? { deadline: now + timeout * 1000 } : {}),
      ...(progress ? { progress: true as const } : {}),
    };
  }

  /** Publishes one batch to every head; resolves true when JetStream had already stored it (a duplicate). */
  private async publishChunk(w: Watch, chunk: WorkEnvelope[]): Promise<boolean> {
    const id = batchId(chunk.map((e) => e.id));
    let duplicate = true;
    await Promise.all(
      w.descriptor.heads.map(async (head) => {
        const ack = await this.publishWithRetry(() => w.bus.publishBatch(head, chunk, `${id}||${head}`));
        if (!ack.duplicate) duplicate = false;
      }),
    );
    return duplicate;
  }

  /** Submissions waiting to be sent together (client option `batch`). */
  private readonly gathering = new Map<Watch, { env: WorkEnvelope; resolve: (s: Submitted) => void; reject: (e: unknown) => void }[]>();

  private gather(w: Watch, env: WorkEnvelope): Promise<Submitted> {
    return new Promise((resolve, reject) => {
      let list = this.gathering.get(w);
      if (!list) {
        list = [];
        this.gathering.set(w, list);
        setImmediate(() => this.flushGathered(w));
      }
      list.push({ env, resolve, reject });
      if (list.length >= (this.options.batch ?? 1)) this.flushGathered(w);
    });
  }

  private flushGathered(w: Watch): void {
    const list = this.gathering.get(w);
    if (!list || list.length === 0) return;
    this.gathering.delete(w);
    this.publishChunk(
      w,
      list.map((p) => p.env),
    ).then(
      (duplicate) => {
        for (const p of list) p.resolve({ id: p.env.id, graph: w.descriptor.id, duplicate });
      },
      (err: unknown) => {
        for (const p of list) p.reject(err);
      },
    );
  }

  /**
   * Resolves to the task's outcome once its result is recorded (at once if it already is). With `timeout`
   * (seconds), resolves to a failed outcome naming the wait when no result came in time; the task itself may
   * still finish later.
   */
  async result(
    id: string,
    options: { graph: string; timeout?: number | undefined; task?: unknown; check?: boolean | undefined },
  ): Promise<TaskOutcome> {
    const w = this.following.get(options.graph) ?? (await this.followed(options.graph));
    const early = w.unclaimed.get(id);
    w.unclaimed.delete(id);
    if (early) return early;
    let mine: ((r: TaskOutcome) => void) | undefined;
    const outcome = new Promise<TaskOutcome>((resolve) => {
      mine = resolve;
      const list = w.waiters.get(id) ?? [];
      list.push(resolve);
      w.waiters.set(id, list);
    });
    // Following started before this read, so a result recorded at any time is seen by one or the other. A task
    // submitted for the first time after following started cannot have an earlier result: no read needed.
    if (options.check !== false) void this.lookUp(w, id);
    if (options.timeout === undefined) return outcome;
    if (options.timeout === 0) {
      // Only what is recorded now: give the read a moment, then report no result.
      await this.lookUp(w, id);
      const now = await Promise.race([outcome, Promise.resolve(undefined)]);
      if (now) return now;
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<TaskOutcome>((resolve) => {
      timer = setTimeout(() => {
        // Stop waiting for this call only; other callers waiting for the same task keep their place.
        const rest = (w.waiters.get(id) ?? []).filter((r) => r !== mine);
        if (rest.length > 0) w.waiters.set(id, rest);
        else w.waiters.delete(id);
        resolve({
          status: "failed",
          id,
          graph: w.descriptor.id,
          task: options.task,
          error: { job: "", message: `no result within ${options.timeout}s (the task may still be running)` },
        });
      }, options.timeout! * 1000);
    });
    try {
      return await Promise.race([outcome, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads a recorded result, retrying while the server is busy or away, until the task's waiter is gone. */
  private lookUp(w: Watch, id: string): Promise<void> {
    return this.retrying(async () => {
      if (!w.waiters.has(id)) return;
      const existing = await w.bus.getResult(id);
      if (existing) this.deliver(w, stripRecord(existing));
    }).catch(() => undefined);
  }

  /** Submits a task and resolves to its outcome. */
  async run(task: unknown, options: ClientSubmitOptions & { wait?: number | undefined }): Promise<TaskOutcome> {
    const reconnects = this.reconnects;
    const s = await this.submit(task, options);
    // A new task's result can only come after following started, so no lookup is needed, unless the connection
    // was re-established meanwhile (the result may have been recorded before reading resumed).
    const check = s.duplicate || this.reconnects !== reconnects;
    return this.result(s.id, { graph: s.graph, timeout: options.wait ?? options.timeout, task, check });
  }

  /**
   * Every result recorded for the instance from the moment of this call (by the server's clock), in the order
   * they are recorded, each once. Read from the results stream (an ordered consumer), not from the result
   * subjects: a task that ran twice publishes twice there, but the stream records only the first.
   */
  results(graph: string, signal?: AbortSignal): AsyncGenerator<TaskOutcome> {
    // Taken now, not when iteration starts: results recorded in between are not missed.
    return this.resultsSince(graph, new Date(), signal);
  }

  private async *resultsSince(graph: string, since: Date, signal: AbortSignal | undefined): AsyncGenerator<TaskOutcome> {
    // The stream is the source here: no need for the announcements that waiters listen to.
    const w = await this.watch(graph);
    const queue: Promise<ResultRecord>[] = [];
    let wake: (() => void) | undefined;
    // The last stream sequence taken: reading resumes after it, and a message at or before it (from a consumer
    // being replaced) is not taken twice.
    let last = 0;
    const take = (m: JsMsg): void => {
      if (m.seq <= last) return;
      last = m.seq;
      const record = w.bus.decodeBody<ResultRecord>(m.data);
      queue.push(record instanceof Promise ? record : Promise.resolve(record));
      wake?.();
    };
    let reading = await readResults(w.bus, { opt_start_time: since.toISOString() }, take);
    // After a reconnection the server may have forgotten the consumer (a restart): read on from where it was.
    const resume = async (): Promise<void> => {
      const before = reading;
      reading = await readResults(w.bus, last > 0 ? { opt_start_seq: last + 1 } : { opt_start_time: since.toISOString() }, take);
      await stopReading(before);
    };
    const stopResuming = this.onReconnect(resume, () => reading);
    const onAbort = (): void => wake?.();
    signal?.addEventListener("abort", onAbort);
    try {
      while (!signal?.aborted && !this.closed) {
        if (queue.length === 0) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        while (queue.length > 0) {
          const record = await queue.shift()!.catch(() => undefined);
          if (record) yield stripRecord(record);
        }
      }
    } finally {
      stopResuming();
      signal?.removeEventListener("abort", onAbort);
      await stopReading(reading);
    }
  }

  /** Stops following results. The connection is left to the caller. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.readerCheck);
    for (const w of this.watches.values()) {
      try {
        const watch = await w;
        watch.subscription?.unsubscribe();
        if (watch.recorded) await stopReading(watch.recorded);
      } catch {
        // a watch that never opened has nothing to stop
      }
    }
  }
}
