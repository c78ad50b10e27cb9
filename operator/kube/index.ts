// Controller machinery for the Kubernetes operator: a REST client with QPS limits, informers, a rate-limited
// work queue and its workers, Lease leader election, Events, Prometheus metrics and health endpoints.
//
//   const metrics = new Registry();
//   const client = createKubeClient(loadKubeConfig({ kubeconfig }), { qps: 20, burst: 30, metrics });
//   const graphs = new Informer<JobGraph>(client, JOBGRAPHS, { resyncMs: 600_000, metrics });
//   const queue = new WorkQueue({ name: "jobgraph", metrics });
//   const enqueue = (o: KubeObject) => queue.add(objectKey(o.metadata.namespace, o.metadata.name));
//   graphs.onAdd(enqueue); graphs.onUpdate((_, o) => enqueue(o)); graphs.onDelete(enqueue);
//   await graphs.start();                                   // the cache is full before any reconcile
//   await runWorkers(queue, 4, async (key) => { const { namespace, name } = splitKey(key); … }, { controller: "jobgraph", metrics });
//
// Reconciles read from the informer (frozen objects: copy before changing), write through the client, and are
// level-triggered: a key says "look at this object again", never what changed.
export { APIEXTENSIONS, APPS, CORE, COORDINATION, apiVersionOf, objectKey, resourceName, resourcePath, splitKey } from "./resources.ts";
export type { KubeObject, ObjectMeta, OwnerReference, ResourceType } from "./resources.ts";
export { KubeApiError, isAlreadyExists, isConflict, isGone, isInvalid, isNotFound } from "./errors.ts";
export type { KubeStatus } from "./errors.ts";
export { KubeConfigError, loadKubeConfig } from "./config.ts";
export type { KubeConfigHandle, TlsOptions } from "./config.ts";
export { createKubeClient } from "./client.ts";
export type { ClientStats, KubeClient, KubeClientOptions, ListOptions, WatchEvent, WatchOptions } from "./client.ts";
export { Informer } from "./informer.ts";
export type { InformerOptions } from "./informer.ts";
export { WorkQueue } from "./queue.ts";
export type { WorkQueueOptions } from "./queue.ts";
export { runWorkers } from "./workers.ts";
export type { ReconcileResult, RunWorkersOptions } from "./workers.ts";
export { LeaderElector } from "./leader.ts";
export type { LeaderElectorOptions } from "./leader.ts";
export { EventRecorder } from "./events.ts";
export type { EventRecorderOptions } from "./events.ts";
export { Counter, DURATION_BUCKETS, Gauge, Histogram, Registry } from "./metrics.ts";
export type { Labels } from "./metrics.ts";
export { serveOperatorHttp } from "./http.ts";
export type { OperatorHttpOptions } from "./http.ts";
