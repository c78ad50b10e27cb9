// The JobTask controller. A JobTask becomes one task over NATS, submitted once: its uid is the task id, so a
// repeated submission (after an operator restart) is recognised by JetStream and never runs twice. The
// controller then follows the task — node progress that runners announce, and its recorded result — and
// writes the status through a coalescing writer (a burst of node completions is one patch). Finished JobTasks
// are deleted after their TTL.
import { type EventRecorder, type Informer, type KubeClient } from "../kube/index.ts";
import { JOBTASKS, RESULT_INLINE_LIMIT_BYTES, parseJobTaskSpec, type JobTaskStatus } from "../api/index.ts";
import type { Logger, TaskOutcome } from "../../core/index.ts";
import { namesFor, taskIdOfToken, type NodeProgress } from "../../runner/index.ts";
import type { GraphPlans, JobTask } from "./graphs.ts";
import type { Connections } from "../nats/connections.ts";
import { setCondition } from "./conditions.ts";
import { StatusWriter } from "./status-writer.ts";
import type { OperatorMetrics } from "../metrics.ts";

const TERMINAL = new Set(["Succeeded", "Failed"]);

export interface TaskControllerOptions {
  client: KubeClient;
  tasks: Informer<JobTask>;
  graphs: GraphPlans;
  connections: Connections;
  events: EventRecorder;
  logger: Logger;
  metrics: OperatorMetrics;
  /** Milliseconds status changes of one JobTask are gathered before they are written (default 100). */
  coalesceMs?: number;
  now?: () => number;
}

interface Followed {
  key: string;
  instance: string;
  /** The graph's jobs (for the status of each when the task ends). */
  nodes: string[];
  done: Set<string>;
}

/** A task's trace id: its uid's 32 hex digits, so a JobTask and its trace are found by the same id. */
export function traceIdOf(uid: string): string {
  return uid.replace(/-/g, "").toLowerCase().padEnd(32, "0").slice(0, 32);
}

export class TaskController {
  private readonly o: TaskControllerOptions;
  private readonly followed = new Map<string, Followed>();
  private readonly progressSubs = new Set<string>();
  readonly writer: StatusWriter;
  private readonly now: () => number;

  constructor(options: TaskControllerOptions) {
    this.o = options;
    this.now = options.now ?? Date.now;
    this.writer = new StatusWriter({
      coalesceMs: options.coalesceMs ?? 100,
      write: (ns, name, status) => options.client.mergePatch(JOBTASKS, ns, name, { status }, { subresource: "status" }).then(() => undefined),
      logger: options.logger,
      onWrite: () => options.metrics.statusWrites.inc(),
    });
  }

  async reconcile(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const [namespace, name] = key.split("/") as [string, string];
    const jt = this.o.tasks.get(namespace, name);
    if (!jt) {
      this.writer.forget(key);
      return;
    }
    const uid = jt.metadata.uid!;
    const status = { ...jt.status, ...this.writer.pending(key) } as JobTaskStatus;
    const now = this.now();
    if (TERMINAL.has(status.phase ?? "")) return this.expire(jt, status, now);

    const parsed = parseJobTaskSpec(jt.spec);
    if (!parsed.ok) return this.fail(jt, key, { message: `invalid spec: ${parsed.problems.join("; ")}` }, "InvalidSpec");
    const spec = parsed.value;

    // Deadline: the runners fail a task that passed it; this catches one that never reached a runner.
    if (spec.timeoutSeconds !== undefined && status.startTime) {
      const left = Date.parse(status.startTime) + spec.timeoutSeconds * 1000 + 5000 - now;
      if (left <= 0) return this.fail(jt, key, { message: `no result within timeoutSeconds (${spec.timeoutSeconds} s)` }, "Timeout");
    }

    if (status.instance && status.submitted) {
      this.follow(jt, key, status.instance);
      return spec.timeoutSeconds !== undefined ? { requeueAfterMs: spec.timeoutSeconds * 1000 + 6000 } : undefined;
    }

    const current = this.o.graphs.current(namespace, spec.graph);
    if (!current || "problem" in current) {
      const message = current
        ? `${current.problem}; the task runs once the graph is fixed`
        : `JobGraph '${spec.graph}' does not exist in namespace '${namespace}'; the task runs when it is created`;
      const reason = current ? "GraphInvalid" : "GraphNotFound";
      if (status.phase !== "Pending" || status.conditions?.find((c) => c.type === "Submitted")?.message !== message) {
        this.writer.update(namespace, name, {
          phase: "Pending",
          conditions: setCondition(status.conditions, { type: "Submitted", status: "False", reason, message }, jt.metadata.generation, new Date(now)),
        });
      }
      return; // the graph's add or update requeues this task
    }
    const { plan } = current;
    let instance;
    if (plan.instances.length === 1 && plan.instances[0]!.group === undefined) {
      if (spec.group !== undefined) return this.fail(jt, key, { message: `graph '${spec.graph}' has no parameter groups; remove spec.group` }, "UnknownGroup");
      instance = plan.instances[0]!;
    } else {
      const groups = plan.instances.map((i) => i.group!);
      if (spec.group === undefined) return this.fail(jt, key, { message: `graph '${spec.graph}' has several groups; set spec.group to one of: ${groups.join(", ")}` }, "GroupRequired");
      instance = plan.instances.find((i) => i.group === spec.group);
      if (!instance) return this.fail(jt, key, { message: `graph '${spec.graph}' has no group '${spec.group}'; groups: ${groups.join(", ")}` }, "UnknownGroup");
    }
    const conn = await this.o.connections.get(namespace, current.graph.spec.nats);
    const traceId = traceIdOf(uid);
    const startTime = status.startTime ?? new Date(now).toISOString();
    await this.subscribeProgress(conn, instance.id);
    const submitted = await conn.client.submit(spec.input, {
      graph: instance.id,
      id: uid,
      progress: true,
      ...(spec.timeoutSeconds !== undefined ? { timeout: Math.max(0.001, spec.timeoutSeconds - (now - Date.parse(startTime)) / 1000) } : {}),
      trace: { traceparent: `00-${traceId}-${traceId.slice(0, 16)}-01` },
    });
    this.writer.update(namespace, name, {
      phase: "Running",
      instance: instance.id,
      taskId: uid,
      submitted: true,
      startTime,
      traceId,
      progress: `0/${instance.nodes.length}`,
      nodes: Object.fromEntries(instance.nodes.map((n) => [n.name, { phase: "Pending" as const }])),
      conditions: setCondition(status.conditions, { type: "Submitted", status: "True", reason: submitted.duplicate ? "AlreadySubmitted" : "Submitted", message: `submitted to ${instance.id}` }, jt.metadata.generation, new Date(now)),
    });
    this.follow(jt, key, instance.id, instance.nodes.map((n) => n.name));
    return spec.timeoutSeconds !== undefined ? { requeueAfterMs: spec.timeoutSeconds * 1000 + 6000 } : undefined;
  }

  /** Waits for the task's recorded result (once per task), and writes it when it comes. */
  private follow(jt: JobTask, key: string, instanceId: string, nodeNames?: string[]): void {
    const uid = jt.metadata.uid!;
    if (this.followed.has(uid)) return;
    const known = { ...jt.status?.nodes, ...this.writer.pending(key).nodes };
    const nodes = nodeNames ?? Object.keys(known);
    const done = new Set(Object.entries(known).filter(([, n]) => n.phase === "Succeeded").map(([k]) => k));
    this.followed.set(uid, { key, instance: instanceId, nodes, done });
    void (async () => {
      const [namespace, name] = key.split("/") as [string, string];
      try {
        const current = this.o.graphs.current(namespace, jt.spec.graph);
        const conn = await this.o.connections.get(namespace, current && "plan" in current ? current.graph.spec.nats : undefined);
        await this.subscribeProgress(conn, instanceId);
        const outcome = await conn.client.result(uid, { graph: instanceId });
        if (!this.followed.has(uid)) return;
        this.finish(jt, key, outcome);
      } catch (err) {
        this.o.logger.warn({ jobtask: key, err: (err as Error).message }, "following the task failed; retrying");
        this.followed.delete(uid);
        setTimeout(() => this.follow(jt, key, instanceId, nodeNames), 2000).unref();
      }
      void name;
    })();
  }

  private async subscribeProgress(conn: Awaited<ReturnType<Connections["get"]>>, instanceId: string): Promise<void> {
    const subject = namesFor(instanceId).progressWildcard;
    if (this.progressSubs.has(subject)) return;
    this.progressSubs.add(subject);
    conn.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        let p: NodeProgress;
        try {
          p = JSON.parse(new TextDecoder().decode(msg.data)) as NodeProgress;
        } catch {
          return;
        }
        const uid = p.id ?? taskIdOfToken(msg.subject.slice(msg.subject.lastIndexOf(".") + 1));
        const f = this.followed.get(uid);
        if (!f) return;
        const [namespace, name] = f.key.split("/") as [string, string];
        const at = new Date(p.at).toISOString();
        const node: NonNullable<JobTaskStatus["nodes"]>[string] =
          p.phase === "Running" ? { phase: "Running", startTime: at } : { phase: p.phase, completionTime: at, ...(p.attempts !== undefined ? { attempts: p.attempts } : {}) };
        if (p.phase === "Succeeded") f.done.add(p.node);
        this.writer.update(namespace, name, { nodes: { [p.node]: node }, progress: `${f.done.size}/${f.nodes.length}` });
      },
    });
  }

  private finish(jt: JobTask, key: string, outcome: TaskOutcome): void {
    const [namespace, name] = key.split("/") as [string, string];
    const f = this.followed.get(jt.metadata.uid!);
    this.followed.delete(jt.metadata.uid!);
    const now = new Date(this.now());
    const created = Date.parse(jt.metadata.creationTimestamp ?? "") || now.getTime();
    this.o.metrics.taskLatency.observe({ outcome: outcome.status }, (now.getTime() - created) / 1000);
    const total = f?.nodes.length ?? 0;
    const base = this.writer.pending(key).conditions ?? jt.status?.conditions;
    if (outcome.status === "succeeded") {
      const json = JSON.stringify(outcome.result ?? null);
      const inline = Buffer.byteLength(json) <= RESULT_INLINE_LIMIT_BYTES;
      // Every job ran to get a result: those whose end was not announced (or not yet) are marked done too.
      const nodes = Object.fromEntries((f?.nodes ?? []).filter((n) => !f?.done.has(n)).map((n) => [n, { phase: "Succeeded" as const, completionTime: now.toISOString() }]));
      this.writer.update(namespace, name, {
        phase: "Succeeded",
        progress: `${total}/${total}`,
        ...(inline ? { result: outcome.result } : { resultRef: { instance: f?.instance ?? outcome.graph, taskId: jt.metadata.uid! } }),
        completionTime: now.toISOString(),
        ...(Object.keys(nodes).length > 0 ? { nodes } : {}),
        conditions: setCondition(
          setCondition(base, { type: "Succeeded", status: "True", reason: "Succeeded", message: "the task succeeded" }, jt.metadata.generation, now),
          { type: "Failed", status: "False", reason: "Succeeded", message: "the task succeeded" },
          jt.metadata.generation,
          now,
        ),
      }, true);
    } else {
      this.writer.update(namespace, name, this.failedStatus(jt, key, { job: outcome.error?.job, message: outcome.error?.message ?? "failed" }, "TaskFailed", now), true);
      this.o.events.event(jt, "Warning", "TaskFailed", `${outcome.error?.job ? `job '${outcome.error.job}': ` : ""}${outcome.error?.message ?? "failed"}`.slice(0, 1000));
    }
  }

  private failedStatus(jt: JobTask, key: string, error: { job?: string | undefined; message: string }, reason: string, now: Date): JobTaskStatus {
    const known = this.writer.pending(key);
    const base = known.conditions ?? jt.status?.conditions;
    return {
      phase: "Failed",
      error: { ...(error.job ? { job: error.job } : {}), message: error.message },
      completionTime: now.toISOString(),
      ...(known.startTime ?? jt.status?.startTime ? {} : { startTime: now.toISOString() }),
      conditions: setCondition(
        setCondition(base, { type: "Failed", status: "True", reason, message: error.message }, jt.metadata.generation, now),
        { type: "Succeeded", status: "False", reason, message: error.message },
        jt.metadata.generation,
        now,
      ),
    };
  }

  private fail(jt: JobTask, key: string, error: { job?: string; message: string }, reason: string): void {
    const [namespace, name] = key.split("/") as [string, string];
    this.followed.delete(jt.metadata.uid!);
    this.writer.update(namespace, name, this.failedStatus(jt, key, error, reason, new Date(this.now())), true);
    this.o.events.event(jt, "Warning", reason, error.message.slice(0, 1000));
  }

  /** A finished JobTask is deleted `ttlSecondsAfterFinished` after it finished. */
  private async expire(jt: JobTask, status: JobTaskStatus, now: number): Promise<{ requeueAfterMs?: number } | void> {
    this.followed.delete(jt.metadata.uid!);
    // Once the cache shows the end, the writer's memory of this task is no longer needed (10,000 finished tasks).
    const key = `${jt.metadata.namespace}/${jt.metadata.name}`;
    if (TERMINAL.has(jt.status?.phase ?? "") && Object.keys(this.writer.pending(key)).length > 0 && !this.writer.busy(key)) this.writer.forget(key);
    const ttl = jt.spec.ttlSecondsAfterFinished;
    if (ttl === undefined || !status.completionTime) return;
    const left = Date.parse(status.completionTime) + ttl * 1000 - now;
    if (left > 0) return { requeueAfterMs: left };
    await this.o.client.delete(JOBTASKS, jt.metadata.namespace, jt.metadata.name, { uid: jt.metadata.uid });
  }

  /** Tasks being followed (for metrics and tests). */
  get inFlight(): number {
    return this.followed.size;
  }
}
