// The operator process: caches of JobGraphs, JobTasks and the Deployments it owns, one work queue per kind,
// leader election (only the leader reconciles; the others keep warm caches), /metrics and health endpoints,
// and a graceful stop.
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { createLogger, type Logger } from "../core/index.ts";
import type { NatsOptions } from "../runner/index.ts";
import {
  APPS,
  CORE,
  EventRecorder,
  Informer,
  LeaderElector,
  WorkQueue,
  createKubeClient,
  loadKubeConfig,
  runWorkers,
  serveOperatorHttp,
  type KubeClient,
  type KubeObject,
} from "./kube/index.ts";
import { JOBGRAPHS, JOBTASKS, LABELS, MANAGED_BY } from "./api/index.ts";
import { GraphController, type JobGraph, type JobTask } from "./controllers/graphs.ts";
import { TaskController } from "./controllers/tasks.ts";
import { Connections } from "./nats/connections.ts";
import { operatorMetrics, type OperatorMetrics } from "./metrics.ts";

/**
 * Client-side limit of API requests (Argo's --qps/--burst default to 20/30). A JobTask costs one or two status
 * patches, so the default leaves room for a few hundred JobTasks a second before the limit is what waits.
 */
export const DEFAULT_QPS = 200;
export const DEFAULT_BURST = 400;

export interface OperatorOptions {
  kubeconfig?: string | undefined;
  /** Namespaces to watch (default: every namespace). */
  namespaces?: string[] | undefined;
  /** NATS for graphs that name none (URL and the operator's own credentials). */
  nats: NatsOptions & { url: string };
  /**
   * Secret whose keys token/user/password the runners of graphs that name no NATS get as their credentials; a
   * Secret of this name in each graph's namespace (pods can only mount their own namespace's Secrets).
   */
  natsSecret?: string | undefined;
  /**
   * Job types the default runner image holds, when known (the project image: the built-in jobs). A graph without
   * spec.image naming another type is then refused in Valid (UnknownJobType) before any runner starts.
   */
  defaultImageJobTypes?: ReadonlySet<string> | undefined;
  /** Runner image of graphs that name none. */
  runnerImage: string;
  /** Image prefixes a JobGraph's spec.image must start with (default: any). */
  allowedImages?: string[] | undefined;
  leaderElect?: boolean | undefined;
  /** Namespace of the leader-election Lease (default: the kubeconfig context's namespace). */
  leaseNamespace?: string | undefined;
  leaseName?: string | undefined;
  leaseDurationMs?: number | undefined;
  /** Port of /metrics, /healthz and /readyz (0 picks one; undefined serves none). */
  metricsPort?: number | undefined;
  qps?: number | undefined;
  burst?: number | undefined;
  workers?: number | undefined;
  logger?: Logger | undefined;
}

export interface Operator {
  readonly metrics: OperatorMetrics;
  readonly metricsPort: number | undefined;
  readonly identity: string;
  isLeader(): boolean;
  /** Resolves once this operator leads and its caches are in sync (immediately without leader election). */
  leading(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves when the operator stopped by itself (it lost the lease). */
  done: Promise<void>;
}

export async function startOperator(options: OperatorOptions): Promise<Operator> {
  const logger = options.logger ?? createLogger({ name: "jobchain-operator" });
  const metrics = operatorMetrics();
  const config = loadKubeConfig({ kubeconfig: options.kubeconfig });
  const client = createKubeClient(config, { qps: options.qps ?? DEFAULT_QPS, burst: options.burst ?? DEFAULT_BURST, userAgent: "jobchain-operator", metrics: metrics.registry });
  const identity = `${hostname()}-${randomBytes(3).toString("hex")}`;
  const namespaces = options.namespaces?.length ? options.namespaces : [undefined];
  let leader = !options.leaderElect;
  let synced = false;
  let stopping = false;

  const http =
    options.metricsPort === undefined
      ? undefined
      : await serveOperatorHttp({ port: options.metricsPort, registry: metrics.registry, healthy: () => !stopping, ready: () => !stopping && (synced || !leader) });

  let run: Running | undefined;
  let resolveLeading!: () => void;
  const leadingP = new Promise<void>((r) => (resolveLeading = r));
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  const begin = async (signal?: AbortSignal): Promise<void> => {
    leader = true;
    metrics.leader.set(undefined, 1);
    run = await startControllers({ client, namespaces, options, logger, metrics, identity });
    synced = true;
    resolveLeading();
    logger.info({ identity }, "leading: reconciling");
    if (signal) await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
  };

  let elector: LeaderElector | undefined;
  if (options.leaderElect) {
    elector = new LeaderElector(client, {
      namespace: options.leaseNamespace ?? config.namespace,
      name: options.leaseName ?? "jobchain-operator",
      identity,
      // client-go's proportions (15 s lease, 10 s renew deadline, 2 s retry) for any lease duration.
      ...(options.leaseDurationMs !== undefined
        ? {
            leaseDurationMs: options.leaseDurationMs,
            renewDeadlineMs: Math.round((options.leaseDurationMs * 2) / 3),
            retryPeriodMs: Math.max(200, Math.round(options.leaseDurationMs / 7.5)),
          }
        : {}),
      logger,
      onStartedLeading: (signal) => begin(signal),
      onStoppedLeading: () => {
        leader = false;
        metrics.leader.set(undefined, 0);
        // A former leader stops at once: another one acts now, and two must never act together.
        if (!stopping) logger.warn({ identity }, "lost the lease: stopping");
        void run?.stop().finally(resolveDone);
      },
      onNewLeader: (id) => logger.info({ leader: id }, "leader"),
    });
    void elector.run().catch((err: unknown) => logger.error({ err: (err as Error).message }, "leader election failed"));
  } else {
    await begin();
  }

  return {
    metrics,
    metricsPort: http?.port,
    identity,
    isLeader: () => leader,
    leading: () => leadingP,
    done,
    async stop() {
      stopping = true;
      await run?.stop();
      await elector?.stop();
      await http?.close();
      resolveDone();
    },
  };
}

interface Running {
  stop(): Promise<void>;
}

async function startControllers(ctx: {
  client: KubeClient;
  namespaces: (string | undefined)[];
  options: OperatorOptions;
  logger: Logger;
  metrics: OperatorMetrics;
  identity: string;
}): Promise<Running> {
  const { client, namespaces, options, logger, metrics } = ctx;
  const informerOptions = (namespace: string | undefined, extra: Record<string, unknown> = {}) => ({
    ...(namespace ? { namespace } : {}),
    logger,
    metrics: metrics.registry,
    ...extra,
  });
  // One informer per namespace (or one for all); the controllers read through these views.
  const many = <T extends KubeObject>(make: (ns: string | undefined) => Informer<T>) => {
    const list = namespaces.map(make);
    const byNs = (ns: string | undefined) => list.find((_, i) => namespaces[i] === undefined || namespaces[i] === ns);
    return {
      list,
      view: {
        get: (ns: string | undefined, name: string) => byNs(ns)?.get(ns, name),
        list: (ns?: string) => list.flatMap((i) => i.list(ns)),
      } as unknown as Informer<T>,
    };
  };
  const graphs = many<JobGraph>((ns) => new Informer<JobGraph>(client, JOBGRAPHS, informerOptions(ns, { resyncMs: 60_000 })));
  const tasks = many<JobTask>((ns) => new Informer<JobTask>(client, JOBTASKS, informerOptions(ns, { resyncMs: 300_000 })));
  const deployments = many<KubeObject>((ns) => new Informer<KubeObject>(client, APPS.deployments, informerOptions(ns, { labelSelector: `${LABELS.managedBy}=${MANAGED_BY}` })));

  const events = new EventRecorder(client, { component: "jobchain-operator", host: ctx.identity, logger });
  const defaults: NatsOptions & { url: string } = options.nats;
  const connections = new Connections(defaults, async (ns, name) => {
    const s = await client.get<KubeObject & { data?: Record<string, string> }>(CORE.secrets, ns, name);
    if (!s) return undefined;
    return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
  });
  const graphQueue = new WorkQueue<string>({ name: "jobgraph", metrics: metrics.registry });
  const taskQueue = new WorkQueue<string>({ name: "jobtask", metrics: metrics.registry, qps: 1000, burst: 2000 });
  const graphController = new GraphController({
    client,
    graphs: graphs.view,
    deployments: deployments.view as never,
    tasks: tasks.view,
    events,
    connections,
    runnerImage: options.runnerImage,
    allowedImages: options.allowedImages,
    natsUrl: defaults.url,
    natsSecret: options.natsSecret,
    defaultImageJobTypes: options.defaultImageJobTypes,
    logger,
    metrics,
  });
  const taskController = new TaskController({ client, tasks: tasks.view, graphs: graphController, connections, events, logger, metrics });

  const keyOf = (o: KubeObject) => `${o.metadata.namespace}/${o.metadata.name}`;
  const tasksOfGraph = (g: KubeObject) => {
    for (const t of tasks.view.list(g.metadata.namespace)) if (t.spec.graph === g.metadata.name && !t.status?.submitted) taskQueue.add(keyOf(t));
  };
  for (const i of graphs.list) {
    i.onAdd((g) => graphQueue.add(keyOf(g)));
    i.onUpdate((_o, g) => graphQueue.add(keyOf(g)));
    i.onDelete((g) => graphQueue.add(keyOf(g)));
  }
  for (const i of tasks.list) {
    i.onAdd((t) => taskQueue.add(keyOf(t)));
    i.onUpdate((o, t) => {
      // Status writes of our own come back here: only a change that asks for action requeues.
      if (o.metadata.generation !== t.metadata.generation || (t.status?.phase !== o.status?.phase)) taskQueue.add(keyOf(t));
    });
    i.onDelete((t) => taskQueue.add(keyOf(t)));
  }
  for (const i of deployments.list) {
    const owner = (d: KubeObject) => {
      const g = d.metadata.labels?.[LABELS.graph];
      if (g) graphQueue.add(`${d.metadata.namespace}/${g}`);
    };
    i.onAdd(owner);
    i.onUpdate((_o, d) => owner(d));
    i.onDelete(owner);
  }
  await Promise.all([...graphs.list, ...tasks.list, ...deployments.list].map((i) => i.start()));
  // A graph that becomes valid (or appears) lets its waiting JobTasks go.
  const seenValid = new Set<string>();
  const afterGraph = async (key: string) => {
    const r = await graphController.reconcile(key);
    const cur = graphController.current(...(key.split("/") as [string, string]));
    const valid = !!cur && "plan" in cur;
    if (valid && !seenValid.has(key)) {
      seenValid.add(key);
      const [ns, name] = key.split("/") as [string, string];
      const g = graphs.view.get(ns, name);
      if (g) tasksOfGraph(g);
    } else if (!valid) seenValid.delete(key);
    return r;
  };
  const inflight = setInterval(() => metrics.tasksInFlight.set(undefined, taskController.inFlight), 2000);
  inflight.unref();
  const workers = [
    runWorkers(graphQueue, 2, afterGraph, { logger, metrics: metrics.registry, controller: "jobgraph" }),
    runWorkers(taskQueue, options.workers ?? 16, (k) => taskController.reconcile(k), { logger, metrics: metrics.registry, controller: "jobtask" }),
  ];
  return {
    async stop() {
      clearInterval(inflight);
      graphQueue.shutdown();
      taskQueue.shutdown();
      for (const i of [...graphs.list, ...tasks.list, ...deployments.list]) i.stop();
      await Promise.all(workers);
      // Status writes still queued go out, unless the API server is away: stopping must not wait for it.
      await Promise.race([taskController.writer.flush(), new Promise((r) => setTimeout(r, 5000).unref())]);
      await events.flush();
      await connections.close();
    },
  };
}
