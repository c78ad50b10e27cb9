// The NATS side of one graph instance: streams, consumers, buckets, and the operations runners and clients do
// on them (publish work, record results, join fan-in inputs, move large payloads). Created on demand and
// idempotently; removed by cleanup().
import { nanos, headers as natsHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import { Objm, type ObjectStore } from "@nats-io/obj";
import type { GraphInstance, JobOutput } from "../core/index.ts";
import { decodeJson, encodeJson, isPayloadRef, type JoinState, type PayloadRef, type ResultRecord, type WorkBatch, type WorkEnvelope } from "./envelope.ts";
import { GRAPHS_BUCKET, namesFor, RESULT_NODE, type InstanceNames } from "./naming.ts";
import { writeTrace, type TraceCarrier } from "./tracecontext.ts";
import { NatsSettingError } from "./connect.ts";
import {
  PublishRejectedError,
  PublishUnconfirmedError,
  outboxFor,
  publisherFor,
  type JetStreamPublisher,
  type Outbox,
  type PublishOptions,
  type StoredAck,
} from "./publisher.ts";

/** Limits and timings of the NATS resources; the defaults suit most graphs. */
export interface BusOptions {
  /** Seconds a delivered message may go without ack or heartbeat before redelivery. Default 30. */
  ackWait?: number | undefined;
  /** Deliveries of one message before it is given up and its task fails. Default 5. */
  maxDeliver?: number | undefined;
  /** Messages in flight per node across all replicas. Default 10000. */
  maxAckPending?: number | undefined;
  /** Seconds within which a repeated submission of the same task id is ignored. Default 120. */
  duplicateWindow?: number | undefined;
  /** Seconds results (and join state, payloads) are kept. Default 86400. */
  resultTtl?: number | undefined;
  /** Storage of the streams. Default file. */
  storage?: "file" | "memory" | undefined;
  /**
   * Copies JetStream keeps of every stream, consumer and bucket this creates, on different servers of a cluster
   * (1, 3 or 5; 3 for a three-server cluster: it survives the loss of one server). Unset: what is created gets 1
   * and what exists keeps its own, so a process started without it never lowers a cluster's replication. Set:
   * what is created gets it, and runners bring what exists to it.
   */
  replicas?: number | undefined;
  /**
   * Seconds a write that JetStream did not confirm (a stream electing a new leader, a server gone) is repeated
   * before it fails, so a runner holds on to its message instead of spending one of its deliveries (and running
   * its jobs again) on every try. Repeating is safe: work messages carry message ids, a result is refused a second
   * time, and a join write expects a revision. Default 60; 0 fails at the first unconfirmed write.
   */
  storeRetry?: number | undefined;
}

const DEFAULTS = { ackWait: 30, maxDeliver: 5, maxAckPending: 10_000, duplicateWindow: 120, resultTtl: 86_400, storeRetry: 60 };

/** Message header names. */
export const H = {
  /** On an announcement: a repeat of a result recorded and announced earlier (see announceResult). */
  repeat: "Jc-Repeat",
} as const;

/** The descriptor of a graph instance that runners publish so clients need no configuration to submit. */
export interface GraphDescriptor {
  id: string;
  graph: string;
  group: string | undefined;
  heads: string[];
  tails: string[];
  nodes: { name: string; type: string; next: string[]; prev: string[] }[];
  pools: Record<string, string[]>;
}

export function describe(instance: GraphInstance): GraphDescriptor {
  return {
    id: instance.id,
    graph: instance.graph,
    group: instance.group,
    heads: instance.heads,
    tails: instance.tails,
    nodes: instance.nodes.map((n) => ({ name: n.name, type: n.type, next: n.next, prev: n.prev })),
    pools: instance.pools,
  };
}

function isApiError(err: unknown, code?: number): err is JetStreamApiError {
  return err instanceof JetStreamApiError && (code === undefined || err.code === code);
}

/** JetStream error codes we act on. */
const ERR = { streamNotFound: 10059, consumerNotFound: 10014, maxMsgsPerSubject: 10077, wrongLastSequence: 10071 } as const;

/**
 * Whether JetStream could not answer at all, as opposed to answering no: a request that timed out, no server
 * taking JetStream requests (a cluster electing its leaders, a server restarting), a write not confirmed, or
 * JetStream saying it is temporarily unavailable. Trying again later can succeed.
 */
export function isUnavailable(err: unknown): boolean {
  const name = (err as Error)?.name;
  return (
    err instanceof PublishUnconfirmedError ||
    name === "TimeoutError" ||
    name === "JetStreamNotEnabled" ||
    (err instanceof JetStreamApiError && (err.status === 503 || err.code === 10008))
  );
}

/**
 * Whether `err` says that a stream or consumer is missing while it is being created: in a cluster, what one
 * process has just created can be unknown for a moment to the server another process asks.
 */
export function isCreationRace(err: unknown): boolean {
  return isUnavailable(err) || isApiError(err, ERR.streamNotFound) || isApiError(err, ERR.consumerNotFound);
}

/**
 * Runs `op` until it succeeds, waiting (backing off up to 2 s) while JetStream is unavailable (`transient`, by
 * default isUnavailable); rethrows any other error at once, and a transient one after `seconds`.
 */
export async function whileUnavailable<T>(
  op: () => Promise<T>,
  seconds: number,
  onRetry?: (err: unknown) => void,
  transient: (err: unknown) => boolean = isUnavailable,
): Promise<T> {
  const giveUpAt = Date.now() + seconds * 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (!transient(err) || Date.now() >= giveUpAt) throw err;
      onRetry?.(err);
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
}

/** Errors of a stream that asks for more replicas than the servers can place (no cluster, or too few servers). */
const PLACEMENT_ERRORS: ReadonlySet<number> = new Set([
  10074, // replicas > 1 not supported in non-clustered mode
  10005, // no suitable peers for placement
  10023, // insufficient resources
]);

/** Replicas as JetStream takes them; throws a NatsSettingError for a count it cannot have. */
function checkReplicas(replicas: number | undefined): number | undefined {
  if (replicas === undefined) return undefined;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new NatsSettingError(`replicas must be an integer from 1 to 5, got '${replicas}'`, "use --replicas 1 for one server, 3 for a three-server cluster");
  }
  return replicas;
}

/**
 * Runs a create or update of `name`; a placement refusal becomes a NatsSettingError that says what to change
 * (the server's own message names neither the setting nor the fix).
 */
async function placing<T>(name: string, replicas: number, create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (err) {
    if (err instanceof JetStreamApiError && PLACEMENT_ERRORS.has(err.code)) {
      throw new NatsSettingError(
        `JetStream cannot place ${name} with ${replicas} replica${replicas === 1 ? "" : "s"}: ${err.message}`,
        "replicas can be at most the number of JetStream servers in the cluster and all of them must be up: use --replicas 1 for one server (or JOBCHAIN_NATS_REPLICAS)",
        err,
      );
    }
    throw err;
  }
}

/**
 * Brings the replicas of an existing stream (a bucket's too) to `replicas`, when given; a stream whose count is
 * already right is left alone.
 */
async function matchReplicas(jsm: JetStreamManager, stream: string, replicas: number | undefined): Promise<void> {
  if (replicas === undefined) return;
  const info = await jsm.streams.info(stream);
  if (info.config.num_replicas === replicas) return;
  await placing(stream, replicas, () => jsm.streams.update(stream, { num_replicas: replicas }));
}

const textEncoder = new TextEncoder();

export class InstanceBus {
  readonly names: InstanceNames;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  private readonly publisher: JetStreamPublisher;
  private readonly outbox: Outbox;
  readonly options: Required<Omit<BusOptions, "storage" | "replicas">> & { storage: "file" | "memory"; replicas: number | undefined };
  private join: KV | undefined;
  private payloads: ObjectStore | undefined;
  /** Bodies above this many bytes go to the object store. */
  /** Largest body, in bytes, sent in a message rather than through the object store. */
  readonly messageLimit: number;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, instanceId: string, options: BusOptions) {
    this.nc = nc;
    this.js = jetstream(nc);
    this.jsm = jsm;
    this.publisher = publisherFor(nc);
    this.outbox = outboxFor(nc);
    this.names = namesFor(instanceId);
    const o: Record<string, unknown> = { ...DEFAULTS, storage: "file" };
    for (const [k, v] of Object.entries(options)) if (v !== undefined) o[k] = v;
    o.replicas = checkReplicas(options.replicas);
    this.options = o as InstanceBus["options"];
    // Leave room for headers and the envelope around a large value.
    this.messageLimit = Math.max(1024, (nc.info?.max_payload ?? 1024 * 1024) - 16 * 1024);
  }

  /**
   * Opens the bus of an instance; `ensure` creates its streams, buckets and the given consumers, and with
   * `update` (runners) brings existing ones to these options. A client only creates what is missing: its
   * defaults must not undo the settings runners were started with.
   */
  static async open(
    nc: NatsConnection,
    instanceId: string,
    options: BusOptions = {},
    ensure?: { nodes: string[]; update: boolean } | undefined,
  ): Promise<InstanceBus> {
    const jsm = await jetstreamManager(nc);
    const bus = new InstanceBus(nc, jsm, instanceId, options);
    if (ensure) await bus.ensure(ensure.nodes, ensure.update);
    return bus;
  }

  /** Replicas of what is created: the option, else 1. */
  private get createReplicas(): number {
    return this.options.replicas ?? 1;
  }

  private async ensureStream(config: Parameters<JetStreamManager["streams"]["add"]>[0], update: boolean): Promise<void> {
    const name = config.name!;
    try {
      await placing(name, this.createReplicas, () => this.jsm.streams.add({ ...config, num_replicas: this.createReplicas }));
    } catch (err) {
      if (!isApiError(err)) throw err;
      // Exists with other settings: runners bring the mutable ones up to date, a client leaves them be. The
      // replica count changes only when asked for (see BusOptions.replicas).
      if (!update) return;
      const replicas = this.options.replicas;
      try {
        await placing(name, replicas ?? 1, () => this.jsm.streams.update(name, replicas === undefined ? config : { ...config, num_replicas: replicas }));
      } catch (updateErr) {
        if (!isApiError(updateErr)) throw updateErr;
      }
    }
  }

  /** Creates (or, with `update`, updates) the streams, buckets and the durable consumers of `nodes`. Idempotent. */
  async ensure(nodes: string[], update = true): Promise<void> {
    const n = this.names;
    const storage = this.options.storage === "memory" ? StorageType.Memory : StorageType.File;
    await this.ensureStream({
      name: n.stream,
      subjects: [n.nodeWildcard],
      retention: RetentionPolicy.Workqueue,
      storage,
      duplicate_window: nanos(this.options.duplicateWindow * 1000),
      discard: DiscardPolicy.Old,
    }, update);
    // One result per task: a second result for the same task id is refused by the server, so a task's result
    // is recorded exactly once however often its last job runs.
    await this.ensureStream({
      name: n.resultsStream,
      subjects: [n.resultWildcard],
      retention: RetentionPolicy.Limits,
      storage,
      max_msgs_per_subject: 1,
      discard: DiscardPolicy.New,
      discard_new_per_subject: true,
      max_age: nanos(this.options.resultTtl * 1000),
      allow_direct: true,
    }, update);
    for (const node of nodes) {
      const config = {
        durable_name: n.consumer(node),
        filter_subject: n.nodeSubject(node),
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(this.options.ackWait * 1000),
        max_deliver: this.options.maxDeliver,
        max_ack_pending: this.options.maxAckPending,
        deliver_policy: DeliverPolicy.All,
        // Unset, a consumer has as many replicas as its stream.
        ...(this.options.replicas !== undefined ? { num_replicas: this.options.replicas } : {}),
      };
      try {
        await this.jsm.consumers.add(n.stream, config);
      } catch (err) {
        if (!isApiError(err)) throw err;
        await this.jsm.consumers.update(n.stream, n.consumer(node), {
          ack_wait: config.ack_wait,
          max_deliver: config.max_deliver,
          max_ack_pending: config.max_ack_pending,
          ...(config.num_replicas !== undefined ? { num_replicas: config.num_replicas } : {}),
        });
      }
    }
    await this.joinBucket();
    await this.payloadStore();
    if (update) {
      await matchReplicas(this.jsm, `KV_${n.joinBucket}`, this.options.replicas);
      await matchReplicas(this.jsm, `OBJ_${n.payloadBucket}`, this.options.replicas);
    }
  }

  async joinBucket(): Promise<KV> {
    return (this.join ??= await placing(this.names.joinBucket, this.createReplicas, () =>
      new Kvm(this.js).create(this.names.joinBucket, {
        history: 1,
        ttl: this.options.resultTtl * 1000,
        storage: this.options.storage === "memory" ? StorageType.Memory : StorageType.File,
        replicas: this.createReplicas,
      }),
    ));
  }

  async payloadStore(): Promise<ObjectStore> {
    return (this.payloads ??= await placing(this.names.payloadBucket, this.createReplicas, () =>
      new Objm(this.js).create(this.names.payloadBucket, {
        ttl: nanos(this.options.resultTtl * 1000),
        storage: this.options.storage === "memory" ? StorageType.Memory : StorageType.File,
        replicas: this.createReplicas,
      }),
    ));
  }

  /** Encodes a body; moves it to the object store when it would not fit in a message. */
  async encodeBody(value: unknown, name: string): Promise<Uint8Array> {
    return this.encodeText(JSON.stringify(value), name);
  }

  /**
   * Encodes JSON text; moves it to the object store when it would not fit in a message. Synchronous for the
   * common body that fits (every work message takes this path).
   */
  encodeText(json: string, name: string): Uint8Array | Promise<Uint8Array> {
    const data = textEncoder.encode(json);
    return data.byteLength <= this.messageLimit ? data : this.storePayload(name, data);
  }

  private async storePayload(name: string, data: Uint8Array): Promise<Uint8Array> {
    const store = await this.payloadStore();
    await store.putBlob({ name }, data);
    const ref: PayloadRef = { $payload: name, size: data.byteLength };
    return encodeJson(ref);
  }

  /**
   * Decodes a body, fetching it from the object store when it was moved there. Synchronous (no promise, no
   * microtask) for the common body that was not: this is on every message's path.
   */
  decodeBody<T>(data: Uint8Array): T | Promise<T> {
    const value = decodeJson<unknown>(data);
    return isPayloadRef(value) ? this.fetchPayload<T>(value) : (value as T);
  }

  private async fetchPayload<T>(value: PayloadRef): Promise<T> {
    const store = await this.payloadStore();
    const blob = await store.getBlob(value.$payload);
    if (!blob) throw new Error(`payload '${value.$payload}' is missing from ${this.names.payloadBucket} (expired?)`);
    return decodeJson<T>(blob);
  }

  /**
   * Publishes a work message (a WorkEnvelope or a WorkBatch, as JSON) to `node`; `msgId` makes a repeated
   * publish (after a crash or resubmission) a no-op. A message of one task also carries its trace context in
   * headers, where other tools look for it (runners read it from the envelope).
   */
  publishWorkText(node: string, json: string, msgId: string, trace?: TraceCarrier): Promise<StoredAck> {
    const subject = this.names.nodeSubject(node);
    let headers: MsgHdrs | undefined;
    if (trace) writeTrace(trace, (headers = natsHeaders()));
    const body = this.encodeText(json, `work/${msgId}`);
    if (body instanceof Promise) return body.then((b) => this.store(subject, b, { msgId, headers }));
    return this.store(subject, body, { msgId, headers });
  }

  /** Publishes one task's message to `node`. */
  publishWork(node: string, env: WorkEnvelope, msgId: string): Promise<StoredAck> {
    return this.publishWorkText(node, JSON.stringify(env), msgId, env.trace);
  }

  /** Publishes several tasks' messages to `node` as one batch message; `msgId` de-duplicates it as a whole. */
  publishBatch(node: string, batch: WorkEnvelope[], msgId: string): Promise<StoredAck> {
    return this.publishWorkText(node, JSON.stringify({ v: 1, batch } satisfies WorkBatch), msgId);
  }

  /**
   * Records a task's result. Resolves true when this call recorded it, false when a result was already recorded
   * (the first one stands, and it is announced again instead, for a client waiting on the task's second run).
   * Clients read results from the stream, not from its subjects: a second publish for a task reaches every
   * subscriber of its subject even though the stream refuses it.
   */
  async publishResult(record: ResultRecord): Promise<boolean> {
    const body = await this.encodeBody(record, `result/${record.id}`);
    try {
      await this.store(this.names.resultSubject(record.id), body);
    } catch (err) {
      if (!(err instanceof PublishRejectedError && err.errCode === ERR.maxMsgsPerSubject)) throw err;
      // Already recorded (the task ran again, e.g. after a resubmission outside the duplicate window).
      await this.announceResult(record.id);
      return false;
    }
    return true;
  }

  /**
   * Announces a task's recorded result once more, so a client waiting for a task that ran again (and whose new
   * result was refused) gets the one recorded result.
   */
  async announceResult(taskId: string): Promise<void> {
    const stored = await this.storedResult(taskId);
    if (!stored) return;
    const h = natsHeaders();
    h.set(H.repeat, "1");
    this.outbox.defer(() => this.nc.publish(this.names.doneSubject(taskId), stored.data, { headers: h }));
  }

  /** The recorded result of a task, or undefined when there is none (yet). */
  async getResult(taskId: string): Promise<ResultRecord | undefined> {
    const m = await this.storedResult(taskId);
    return m ? await this.decodeBody<ResultRecord>(m.data) : undefined;
  }

  /** The message holding a task's recorded result, as stored. */
  private async storedResult(taskId: string) {
    const query = { last_by_subj: this.names.resultSubject(taskId) };
    // Direct get: answered by any server holding the stream, without a round through the stream leader's API.
    // In a cluster that may be a replica a little behind the others; so a miss is asked of the leader, which
    // has every result whose recording was acknowledged.
    return (await this.jsm.direct.getMessage(this.names.resultsStream, query)) ?? (await this.jsm.streams.getMessage(this.names.resultsStream, query));
  }

  /**
   * Adds `from`'s output to the fan-in state of (task, node) with compare-and-set, so concurrent replicas never
   * lose an input. Resolves to the complete state when this call completed the set (the caller then sends the
   * node its message), else undefined.
   */
  async addJoinInput(
    env: { id: string; task: unknown; deadline?: number | undefined; submitted: number },
    node: string,
    expected: readonly string[],
    from: string,
    output: JobOutput,
    saved: Record<string, JobOutput> | undefined,
  ): Promise<JoinState | "done" | undefined> {
    const kv = await this.joinBucket();
    const key = this.names.joinKey(env.id, node);
    // Most inputs are either the first of their set (nothing stored yet: one create) or find the set started;
    // so try to create before reading, and read only when the key exists or another replica wrote first.
    let entry: KvEntry | null | undefined;
    for (let tries = 0; ; tries++) {
      const exists = entry !== null && entry !== undefined && entry.operation === "PUT";
      const state: JoinState = exists ? await this.decodeBody<JoinState>(entry!.value) : { inputs: {} };
      if (state.done) return "done";
      state.inputs[from] = output;
      if (saved) state.saved = { ...state.saved, ...saved };
      state.task = env.task;
      state.submitted = env.submitted;
      if (env.deadline !== undefined) state.deadline = env.deadline;
      const complete = expected.every((p) => Object.hasOwn(state.inputs, p));
      const body = await this.encodeBody(state, `join/${key}/${from}`);
      try {
        // Replaces what was read (a state, or a delete marker), or expects no message at all for the key.
        await this.writeJoin(key, body, entry ? entry.revision : 0);
        return complete ? state : undefined;
      } catch (err) {
        // The key exists (or another replica wrote first): read it and try again.
        if (!(err instanceof PublishRejectedError && err.errCode === ERR.wrongLastSequence) || tries > 100) throw err;
        entry = await kv.get(key);
      }
    }
  }

  /**
   * Writes a join key as a plain publish to the bucket's subject through the pipelined publisher (a KV write is
   * one; the KV client's own writes are full requests, several times the CPU): `revision` is the one the write
   * expects to replace, 0 for a key that must not exist yet, undefined for no expectation. Rejects with the
   * server's "wrong last sequence" (10071) when another write came first.
   */
  private async writeJoin(key: string, body: Uint8Array, revision: number | undefined): Promise<void> {
    await this.joinBucket();
    let headers: MsgHdrs | undefined;
    if (revision !== undefined) (headers = natsHeaders()).set("Nats-Expected-Last-Subject-Sequence", String(revision));
    await this.store(`$KV.${this.names.joinBucket}.${key}`, body, { headers });
  }

  /** A publish through the pipelined publisher, repeated while JetStream does not confirm it (BusOptions.storeRetry). */
  private store(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<StoredAck> {
    const first = this.publisher.publish(subject, data, options);
    // The common case costs no more than the publish: the repeating is only set up on a failure.
    return this.options.storeRetry > 0 ? first.catch((err: unknown) => this.storeAgain(err, subject, data, options)) : first;
  }

  private async storeAgain(err: unknown, subject: string, data: Uint8Array, options: PublishOptions): Promise<StoredAck> {
    const giveUpAt = Date.now() + this.options.storeRetry * 1000;
    for (let attempt = 0; ; attempt++) {
      if (!(err instanceof PublishUnconfirmedError) || Date.now() >= giveUpAt || this.nc.isClosed()) throw err;
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
      try {
        return await this.publisher.publish(subject, data, options);
      } catch (again) {
        err = again;
      }
    }
  }

  /** Marks a join done (after its message is out), so a redelivered input cannot start it again. */
  async markJoinDone(taskId: string, node: string): Promise<void> {
    await this.writeJoin(this.names.joinKey(taskId, node), encodeJson({ inputs: {}, done: true } satisfies JoinState), undefined);
  }

  /**
   * Publishes the descriptor of this instance for clients, under its own id or under `as`: an alias (the
   * operator's `<namespace>_<name>`) that leads clients to this instance.
   */
  async publishDescriptor(d: GraphDescriptor, as: string = this.names.instance): Promise<void> {
    const kv = await sharedBucket(this.nc, GRAPHS_BUCKET, this.options.replicas);
    await kv.put(namesFor(as).stream, encodeJson(d));
  }

  /** The descriptor of `instanceId`, as published by a runner, or undefined. */
  static async readDescriptor(nc: NatsConnection, instanceId: string): Promise<GraphDescriptor | undefined> {
    const kv = await descriptorBucket(nc);
    const e = await kv?.get(namesFor(instanceId).stream).catch((err: unknown) => {
      // No answer is not "no descriptor": let the caller try again.
      if (isUnavailable(err)) throw err;
      return null;
    });
    return e && e.operation === "PUT" ? decodeJson<GraphDescriptor>(e.value) : undefined;
  }

  /** The ids of every instance some runner has published, sorted; empty when none has. */
  static async knownInstances(nc: NatsConnection): Promise<string[]> {
    const kv = await descriptorBucket(nc);
    const ids: string[] = [];
    try {
      for await (const key of kv ? await kv.keys() : []) {
        const e = await kv!.get(key);
        if (e && e.operation === "PUT") ids.push(decodeJson<GraphDescriptor>(e.value).id);
      }
    } catch {
      // no descriptor bucket yet (opening one does not check that it exists): no runner has started
    }
    return ids.sort();
  }

  /** Backlog of a node's consumer: messages waiting plus messages delivered and not yet acknowledged. */
  async backlog(node: string): Promise<{ pending: number; ackPending: number; pulling: number; acknowledged: number }> {
    const info = await this.jsm.consumers.info(this.names.stream, this.names.consumer(node));
    return { pending: info.num_pending, ackPending: info.num_ack_pending, pulling: info.num_waiting, acknowledged: info.ack_floor.consumer_seq };
  }

  /** Deletes every stream and bucket of the instance, and its descriptor. Returns what was removed. */
  static async cleanup(nc: NatsConnection, instanceId: string): Promise<string[]> {
    const jsm = await jetstreamManager(nc);
    const n = namesFor(instanceId);
    const removed: string[] = [];
    for (const stream of [n.stream, n.resultsStream, `KV_${n.joinBucket}`, `OBJ_${n.payloadBucket}`]) {
      try {
        await jsm.streams.delete(stream);
        removed.push(stream);
      } catch (err) {
        if (!isApiError(err, ERR.streamNotFound)) throw err;
      }
    }
    try {
      const kv = await new Kvm(jetstream(nc)).open(GRAPHS_BUCKET);
      await kv.delete(n.stream);
    } catch {
      // no descriptor bucket: nothing to remove
    }
    return removed;
  }
}

/**
 * Opens (creating when missing) a bucket shared by every instance (descriptors, rate limits), with `replicas`
 * copies when given: a runner brings an existing bucket to that count, as it does its instance's streams.
 */
export async function sharedBucket(nc: NatsConnection, bucket: string, replicas: number | undefined): Promise<KV> {
  const js = jetstream(nc);
  const kv = await placing(bucket, replicas ?? 1, () => new Kvm(js).create(bucket, { history: 1, replicas: replicas ?? 1 }));
  await matchReplicas(await jetstreamManager(nc), `KV_${bucket}`, replicas);
  return kv;
}

/** The bucket where runners publish instance descriptors; undefined when it cannot be opened. */
function descriptorBucket(nc: NatsConnection): Promise<KV | undefined> {
  return new Kvm(jetstream(nc)).open(GRAPHS_BUCKET).catch((err: unknown) => {
    if (isUnavailable(err)) throw err;
    return undefined;
  });
}

export { RESULT_NODE };
