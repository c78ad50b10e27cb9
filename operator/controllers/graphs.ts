// The JobGraph controller. Level-triggered: every reconcile reads the graph and what it owns from the caches
// and brings the world to the spec — validation into the `Valid` condition, the NATS streams of the current
// version, an immutable ConfigMap and one Deployment per pool (replicas from the scaler), old versions drained
// and then removed, and the status (`Ready`, pools, heads, tails, instances). A graph is requeued every half
// second while it exists, which is also the scaler's clock (a backlog is seen within about a second).
import { APPS, CORE, type EventRecorder, type Informer, type KubeClient, type KubeObject, isConflict, isNotFound } from "../kube/index.ts";
import { JOBGRAPHS, LABELS, parseJobGraphSpec, type Condition, type JobGraph as JobGraphResource, type JobGraphStatus, type JobTask as JobTaskResource } from "../api/index.ts";
import type { Logger } from "../../core/index.ts";
import { planGraph, type GraphPlan, type PoolPlan } from "../graph/plan.ts";
import { VERSION_LABEL, configMapFor, configMapName, deploymentFor, type RunnerSettings } from "../graph/resources.ts";
import { ensureVersion, poolBacklog, removeInstances, runnerReport, streamBacklog } from "../nats/graphs.ts";
import type { Connections } from "../nats/connections.ts";
import { decide, smoothRate } from "../scale/scaler.ts";
import { conditionOf, setCondition } from "./conditions.ts";
import type { OperatorMetrics } from "../metrics.ts";

/** The resources as the API server returns them (names and uids always set). */
export type JobGraph = JobGraphResource & KubeObject;
export type JobTask = JobTaskResource & KubeObject;

export const FINALIZER = "jobchain.dev/nats-cleanup";
export const FIELD_MANAGER = "jobchain-operator";
/** How often each graph's backlog is read and its pools scaled. */
export const SCALE_INTERVAL_MS = 500;

interface Deployment extends KubeObject {
  spec?: { replicas?: number };
  status?: { replicas?: number; readyReplicas?: number; availableReplicas?: number; updatedReplicas?: number };
}

/** What the controller keeps between reconciles of one pool of one version (lost on restart: re-measured). */
interface PoolState {
  lowSince: number | undefined;
  rate: number | undefined;
  lastAcknowledged: number | undefined;
  lastAt: number | undefined;
  backlog: number;
}

/** The current plan of each valid graph, for the JobTask controller. */
export interface GraphPlans {
  current(namespace: string, name: string): { plan: GraphPlan; graph: JobGraph } | { problem: string } | undefined;
}

export interface GraphControllerOptions {
  client: KubeClient;
  graphs: Informer<JobGraph>;
  deployments: Informer<Deployment>;
  tasks: Informer<JobTask>;
  events: EventRecorder;
  connections: Connections;
  runnerImage: string;
  allowedImages: string[] | undefined;
  /** Job types the default runner image holds, when known: a graph on it naming another is invalid at once. */
  defaultImageJobTypes?: ReadonlySet<string> | undefined;
  natsUrl: string;
  /** Secret (in each graph's namespace) with the NATS credentials of runners of graphs that name no NATS. */
  natsSecret?: string | undefined;
  logger: Logger;
  metrics: OperatorMetrics;
  now?: () => number;
}

const TERMINAL = new Set(["Succeeded", "Failed"]);

export class GraphController implements GraphPlans {
  private readonly o: GraphControllerOptions;
  private readonly plans = new Map<string, { plan: GraphPlan; graph: JobGraph } | { problem: string }>();
  private readonly pools = new Map<string, PoolState>();
  private readonly ensured = new Set<string>();
  private readonly now: () => number;

  constructor(options: GraphControllerOptions) {
    this.o = options;
    this.now = options.now ?? Date.now;
  }

  current(namespace: string, name: string) {
    return this.plans.get(`${namespace}/${name}`);
  }

  async reconcile(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const [namespace, name] = key.split("/") as [string, string];
    const jg = this.o.graphs.get(namespace, name);
    if (!jg) {
      this.plans.delete(key);
      return;
    }
    const log = this.o.logger.child({ jobgraph: key });
    if (jg.metadata.deletionTimestamp) return this.finalize(jg, log);
    if (!(jg.metadata.finalizers ?? []).includes(FINALIZER)) {
      await this.o.client.mergePatch(JOBGRAPHS, namespace, name, {
        metadata: { finalizers: [...(jg.metadata.finalizers ?? []), FINALIZER], resourceVersion: jg.metadata.resourceVersion },
      });
      return; // the update comes back through the watch
    }
    const now = new Date(this.now());
    const generation = jg.metadata.generation;
    let conditions: Condition[] = jg.status?.conditions ?? [];
    const problems = this.check(jg);
    if (problems.kind === "invalid") {
      this.plans.set(key, { problem: `JobGraph '${name}' is not valid: ${problems.message}` });
      conditions = setCondition(conditions, { type: "Valid", status: "False", reason: problems.reason, message: problems.message }, generation, now);
      conditions = setCondition(conditions, { type: "Ready", status: "False", reason: "Invalid", message: "the graph is not valid; no runners are started (see the Valid condition)" }, generation, now);
      if (conditionOf(jg.status?.conditions, "Valid")?.message !== problems.message) {
        this.o.events.event(jg, "Warning", problems.reason, problems.message.slice(0, 1000));
      }
      const drained = await this.drainOldVersions(jg, undefined, log);
      await this.writeStatus(jg, { ...jg.status, observedGeneration: generation, conditions, versions: drained });
      return { requeueAfterMs: 5000 };
    }
    const plan = problems.plan;
    conditions = setCondition(conditions, { type: "Valid", status: "True", reason: "Valid", message: `${plan.instances.length} instance(s), ${plan.pools.length} pool(s)` }, generation, now);

    let conn;
    try {
      conn = await this.o.connections.get(namespace, jg.spec.nats);
      if (!this.ensured.has(`${key}@${plan.version}`)) {
        await ensureVersion(conn.nc, plan);
        this.ensured.add(`${key}@${plan.version}`);
        log.info({ version: plan.version, graphId: plan.graphId }, "graph version ready in NATS");
      }
    } catch (err) {
      const message = `NATS is not reachable for this graph: ${(err as Error).message}`;
      conditions = setCondition(conditions, { type: "Ready", status: "False", reason: "NatsUnavailable", message }, generation, now);
      await this.writeStatus(jg, { ...jg.status, observedGeneration: generation, conditions });
      return { requeueAfterMs: 2000 };
    }
    this.plans.set(key, { plan, graph: jg });

    const owner = { name, uid: jg.metadata.uid! };
    const cmName = (configMapFor(namespace, owner, plan).metadata as { name: string }).name;
    if (!(await this.o.client.get(CORE.configMaps, namespace, cmName))) {
      await this.o.client.create(CORE.configMaps, configMapFor(namespace, owner, plan) as KubeObject).catch((e: unknown) => {
        if (!isConflict(e) && !(e as { status?: number }).status?.toString().startsWith("409")) throw e;
      });
    }
    const settings: RunnerSettings = jg.spec.nats
      ? { natsUrl: jg.spec.nats.url ?? this.o.natsUrl, natsSecret: jg.spec.nats.secretRef?.name }
      : { natsUrl: this.o.natsUrl, natsSecret: this.o.natsSecret };
    const poolStatus: NonNullable<JobGraphStatus["pools"]> = [];
    const notReady: string[] = [];
    for (const pool of plan.pools) {
      const st = await this.scalePool(jg, plan, pool, conn.nc, settings, log);
      poolStatus.push(st.status);
      if (st.problem) notReady.push(st.problem);
    }
    const versions = await this.drainOldVersions(jg, plan, log);
    const ready = notReady.length === 0;
    conditions = setCondition(
      conditions,
      ready
        ? { type: "Ready", status: "True", reason: "PoolsReady", message: poolStatus.map((p) => `${p.name}: ${p.readyReplicas}/${p.desiredReplicas}`).join(", ") }
        : { type: "Ready", status: "False", reason: notReady.some((p) => p.includes("cannot serve")) ? "RunnerProblem" : "PoolsNotReady", message: notReady.join("; ") },
      generation,
      now,
    );
    const status: JobGraphStatus = {
      observedGeneration: generation,
      conditions,
      pools: poolStatus,
      poolsReady: `${poolStatus.reduce((n, p) => n + p.readyReplicas, 0)}/${poolStatus.reduce((n, p) => n + p.desiredReplicas, 0)}`,
      backlog: poolStatus.reduce((n, p) => n + p.backlog, 0),
      heads: plan.instances[0]!.heads,
      tails: plan.instances[0]!.tails,
      instances: plan.instances.map((i) => i.id),
      version: plan.version,
      versions,
    };
    await this.writeStatus(jg, status);
    return { requeueAfterMs: SCALE_INTERVAL_MS };
  }

  private check(jg: JobGraph): { kind: "invalid"; reason: string; message: string } | { kind: "valid"; plan: GraphPlan } {
    const parsed = parseJobGraphSpec(jg.spec);
    if (!parsed.ok) return { kind: "invalid", reason: "InvalidSpec", message: parsed.problems.join("; ") };
    const spec = parsed.value;
    const image = spec.image ?? this.o.runnerImage;
    if (spec.image && this.o.allowedImages && !this.o.allowedImages.some((p) => spec.image!.startsWith(p))) {
      return {
        kind: "invalid",
        reason: "ImageNotAllowed",
        message: `spec.image '${image}' is not allowed by this operator (allowed: ${this.o.allowedImages.join(", ")}); use an image under one of these prefixes`,
      };
    }
    const planned = planGraph(
      { namespace: jg.metadata.namespace!, name: jg.metadata.name },
      spec,
      // Otherwise job types are checked by the runners, which know what their image holds, and reported in Ready.
      { defaultImage: this.o.runnerImage, knownTypes: spec.image ? undefined : this.o.defaultImageJobTypes },
    );
    if (!planned.ok) {
      const unknownType = planned.problems.some((p) => p.includes("unknown job type"));
      return { kind: "invalid", reason: unknownType ? "UnknownJobType" : "InvalidGraph", message: planned.problems.join("; ") };
    }
    return { kind: "valid", plan: planned.plan };
  }

  private async scalePool(
    jg: JobGraph,
    plan: GraphPlan,
    pool: PoolPlan,
    nc: Parameters<typeof poolBacklog>[0],
    settings: RunnerSettings,
    log: Logger,
  ): Promise<{ status: NonNullable<JobGraphStatus["pools"]>[number]; problem?: string }> {
    const namespace = jg.metadata.namespace!;
    const owner = { name: jg.metadata.name, uid: jg.metadata.uid! };
    const key = `${namespace}/${jg.metadata.name}@${plan.version}/${pool.name}`;
    const state = this.pools.get(key) ?? { lowSince: undefined, rate: undefined, lastAcknowledged: undefined, lastAt: undefined, backlog: 0 };
    this.pools.set(key, state);
    const desiredObject = deploymentFor(namespace, owner, plan, pool, 0, settings);
    const name = (desiredObject.metadata as { name: string }).name;
    const existing = this.o.deployments.get(namespace, name);
    const current = existing?.spec?.replicas ?? Math.max(pool.min, 0);
    const ready = existing?.status?.readyReplicas ?? 0;

    const now = this.now();
    const { backlog, acknowledged } = await poolBacklog(nc, plan.instances.map((i) => i.id), pool.nodes).catch(() => ({ backlog: state.backlog, acknowledged: state.lastAcknowledged ?? 0 }));
    if (state.lastAcknowledged !== undefined && state.lastAt !== undefined && ready > 0) {
      state.rate = smoothRate(state.rate, (acknowledged - state.lastAcknowledged) / ready, (now - state.lastAt) / 1000);
    }
    state.lastAcknowledged = acknowledged;
    state.lastAt = now;
    state.backlog = backlog;
    const decision = decide({
      min: pool.min,
      max: pool.max,
      current,
      backlog,
      ratePerReplica: state.rate,
      concurrency: pool.concurrency ?? 256,
      scaleDownDelayMs: pool.scaleDownDelaySeconds * 1000,
      now,
      lowSince: state.lowSince,
    });
    state.lowSince = decision.lowSince;
    const replicas = existing ? decision.desired : Math.max(decision.desired, pool.min);
    const desired = deploymentFor(namespace, owner, plan, pool, replicas, settings);
    if (!existing) {
      await this.o.client.apply(APPS.deployments, desired as KubeObject, { fieldManager: FIELD_MANAGER, force: true });
      this.o.events.event(jg, "Normal", "PoolCreated", `pool '${pool.name}' (version ${plan.version}): Deployment ${name} with ${replicas} replica(s)`);
    } else if (replicas !== current || this.templateChanged(existing, desired)) {
      await this.o.client.apply(APPS.deployments, desired as KubeObject, { fieldManager: FIELD_MANAGER, force: true });
      if (replicas !== current) {
        const verb = replicas > current ? "ScaledUp" : "ScaledDown";
        this.o.metrics.scaleDecisions.inc({ direction: replicas > current ? "up" : "down" });
        this.o.events.event(jg, "Normal", verb, `pool '${pool.name}': ${current} → ${replicas} replicas (${decision.reason})`);
        log.info({ pool: pool.name, from: current, to: replicas, backlog, reason: decision.reason }, "scaled");
      }
    }
    let problem: string | undefined;
    const report = await runnerReport(nc, plan, pool);
    if (report && !report.ok) {
      problem = `pool '${pool.name}': runners cannot serve this graph: ${(report.problems ?? []).join("; ")}`;
    } else if (replicas > 0 && ready === 0) {
      problem = `pool '${pool.name}': no runner ready yet (0/${replicas})`;
    }
    return { status: { name: pool.name, replicas: existing?.status?.replicas ?? 0, readyReplicas: ready, desiredReplicas: replicas, backlog }, problem };
  }

  /** The parts of the pod template the operator owns, compared by value (the server adds defaults around them). */
  private templateChanged(existing: Deployment, desired: Record<string, unknown>): boolean {
    const pick = (d: unknown) => {
      const c = (d as { spec?: { template?: { spec?: { containers?: { image?: string; args?: string[]; env?: unknown; resources?: unknown }[] } } } })
        .spec?.template?.spec?.containers?.[0];
      return JSON.stringify([c?.image, c?.args, c?.env, c?.resources ?? {}]);
    };
    return pick(existing) !== pick(desired);
  }

  /**
   * Old versions keep their runners until nothing of theirs is left: no message in their streams and no
   * unfinished JobTask accepted under them. Then their Deployments, ConfigMap and streams go.
   */
  private async drainOldVersions(jg: JobGraph, plan: GraphPlan | undefined, log: Logger): Promise<JobGraphStatus["versions"]> {
    const namespace = jg.metadata.namespace!;
    const name = jg.metadata.name;
    const old = this.o.deployments
      .list(namespace)
      .filter((d) => d.metadata.labels?.[LABELS.graph] === name && d.metadata.labels?.[VERSION_LABEL] !== plan?.version);
    const byVersion = new Map<string, Deployment[]>();
    for (const d of old) {
      const v = d.metadata.labels![VERSION_LABEL]!;
      byVersion.set(v, [...(byVersion.get(v) ?? []), d]);
    }
    const versions: NonNullable<JobGraphStatus["versions"]> = plan
      ? [{ hash: plan.version, instances: plan.instances.map((i) => i.id), draining: false }]
      : [];
    for (const [version, deployments] of byVersion) {
      const graphId = `${namespace}_${name}_${version}`;
      const instances = this.knownInstances(jg, graphId);
      const unfinished = this.o.tasks
        .list(namespace)
        .some((t) => t.spec.graph === name && t.status?.instance !== undefined && t.status.instance.split("/")[0] === graphId && !TERMINAL.has(t.status.phase ?? ""));
      let backlog = 0;
      try {
        const conn = await this.o.connections.get(namespace, jg.spec.nats);
        // The old version's own streams: its nodes may differ from the current spec's.
        backlog = await streamBacklog(conn.nc, instances);
        if (!unfinished && backlog === 0) {
          for (const d of deployments) await this.o.client.delete(APPS.deployments, namespace, d.metadata.name, { propagationPolicy: "Background" });
          await this.o.client.delete(CORE.configMaps, namespace, configMapName(name, version)).catch(() => false);
          await removeInstances(conn.nc, instances);
          this.o.events.event(jg, "Normal", "VersionRemoved", `version ${version} drained: its runners and streams are removed`);
          log.info({ version }, "old version drained and removed");
          continue;
        }
      } catch (err) {
        log.warn({ version, err: (err as Error).message }, "could not check an old version's backlog");
      }
      versions.push({ hash: version, instances, draining: true, backlog });
    }
    return versions;
  }

  /** The instance ids of a version, from the status that recorded them (parameter groups). */
  private knownInstances(jg: JobGraph, graphId: string): string[] {
    const recorded = (jg.status?.versions ?? []).find((v) => `${jg.metadata.namespace}_${jg.metadata.name}_${v.hash}` === graphId)?.instances;
    if (recorded && recorded.length > 0) return recorded;
    const groups = Object.keys(jg.spec.parameters ?? {});
    return groups.length > 0 ? groups.map((g) => `${graphId}/${g}`) : [graphId];
  }

  private async finalize(jg: JobGraph, log: Logger): Promise<void> {
    const namespace = jg.metadata.namespace!;
    if (!(jg.metadata.finalizers ?? []).includes(FINALIZER)) return;
    const alias = `${namespace}_${jg.metadata.name}`;
    const ids = new Set<string>();
    for (const v of jg.status?.versions ?? []) for (const id of this.knownInstances(jg, `${alias}_${v.hash}`)) ids.add(id);
    for (const id of jg.status?.instances ?? []) {
      ids.add(id);
      // and the alias each instance was published under
      const group = id.split("/")[1];
      ids.add(group === undefined ? alias : `${alias}/${group}`);
    }
    ids.add(alias);
    try {
      const conn = await this.o.connections.get(namespace, jg.spec.nats);
      await removeInstances(conn.nc, [...ids]);
    } catch (err) {
      // NATS unreachable: do not hold the deletion forever; the streams stay and `jobchain nats cleanup` removes them
      log.warn({ err: (err as Error).message }, "could not remove the graph's NATS streams");
      this.o.events.event(jg, "Warning", "CleanupFailed", `NATS streams of ${alias} were not removed: ${(err as Error).message}`);
    }
    try {
      await this.o.client.mergePatch(JOBGRAPHS, namespace, jg.metadata.name, {
        metadata: { finalizers: (jg.metadata.finalizers ?? []).filter((f) => f !== FINALIZER), resourceVersion: jg.metadata.resourceVersion },
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.plans.delete(`${namespace}/${jg.metadata.name}`);
    log.info({ removed: [...ids] }, "graph deleted; NATS streams removed");
  }

  private async writeStatus(jg: JobGraph, status: JobGraphStatus): Promise<void> {
    const old = jg.status ?? {};
    const strip = (s: JobGraphStatus) => JSON.stringify({ ...s, conditions: (s.conditions ?? []).map(({ lastTransitionTime: _t, ...c }) => c) });
    if (strip(old) === strip(status)) return;
    await this.o.client.mergePatch(JOBGRAPHS, jg.metadata.namespace, jg.metadata.name, { status }, { subresource: "status" });
  }
}
