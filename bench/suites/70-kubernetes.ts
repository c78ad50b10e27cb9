// JobChain on real pods: the local node (test/harness/node.ts) with charts/jobchain installed by helm from the
// locally built images, runner pods of the project image under the operator's autoscaler. Measured here, with the
// apiserver's own floor in the same run (a trivial custom resource created and its status patched once):
//   JobTask created → Succeeded p50/p99 at 20/s on a one-job graph, sustained JobTasks/s from 16 clients,
//   a pool scaled to zero → first JobTask Succeeded (pod start included), a user's runner image's size.
// Fails (with the reason) where no node can run here, helm is not built, or a node is already running.
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { CORE, createKubeClient, loadKubeConfig, type KubeObject } from "../../operator/kube/index.ts";
import { JOBGRAPHS, JOBTASKS } from "../../operator/api/index.ts";
import { helm, helmBinary } from "../../test/harness/helm.ts";
import { startNodeE2ECluster } from "../../test/harness/node-e2e.ts";
import { IMAGES, imageArchivesDir, nodeAlive, nodeSkipReason, readNodeState } from "../../test/harness/node.ts";
import type { BenchRow, BenchSuite } from "../types.ts";
import { CLIENTS, createMany, crFloor, graphReady, latencies, succeededTimes, until, type Obj } from "./lib/kube.ts";
import { fmtInt, percentiles } from "./lib/stats.ts";

const NS = "bench";
const SUSTAINED = Number(process.env.BENCH_K8S_TASKS ?? 1000);
const LATENCY_TASKS = 300;
const REPO = path.resolve(import.meta.dirname, "../..");

const graph = (name: string, min: number, max: number, delaySeconds?: number): KubeObject => ({
  apiVersion: "jobchain.dev/v1alpha1",
  kind: "JobGraph",
  metadata: { name, namespace: NS },
  spec: {
    jobs: { echo: { type: "Echo", properties: { add: { ok: true } } } },
    graph: { echo: { next: [] } },
    pools: [{ name: "main", replicas: { min, max }, ...(delaySeconds !== undefined ? { scaleDownDelaySeconds: delaySeconds } : {}) }],
  },
} as KubeObject);
const task = (name: string, g: string): KubeObject =>
  ({ apiVersion: "jobchain.dev/v1alpha1", kind: "JobTask", metadata: { name, namespace: NS }, spec: { graph: g, input: { name } } }) as KubeObject;

const suite: BenchSuite = {
  name: "Kubernetes, real pods (helm-installed, local node)",
  async run(): Promise<BenchRow[]> {
    const bin = helmBinary();
    const why = nodeSkipReason({ images: ["nats-server", "jobchain"] }) ?? (bin.available ? undefined : bin.reason);
    if (why) throw new Error(`cannot run here: ${why}`);
    const running = readNodeState();
    if (running && nodeAlive(running)) throw new Error("a node is already running (make cluster-down)");
    const rows: BenchRow[] = [];
    const cluster = await startNodeE2ECluster();
    try {
      const { storageClassName } = await cluster.ensureVolumes(1, "1Gi");
      let t = performance.now();
      await helm(["install", "jobchain", path.join(REPO, "charts/jobchain"), "--namespace", "jobchain-system", "--create-namespace", "--wait", "--timeout", "5m",
        "--set", "image.tag=dev", "--set", `nats.install.storage.storageClassName=${storageClassName}`], { env: cluster.env, timeoutMs: 360_000 });
      rows.push({ name: "helm install --wait (operator ×2, NATS on a volume)", value: performance.now() - t, unit: "ms" });
      const kube = createKubeClient(loadKubeConfig({ kubeconfig: cluster.env.KUBECONFIG! }), { qps: 10_000, burst: 10_000 });
      await kube.create(CORE.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } } as KubeObject);
      const floor = await crFloor(kube, NS, SUSTAINED);

      await kube.create(JOBGRAPHS, graph("one", 2, 4));
      await until(async () => graphReady(await kube.get<Obj>(JOBGRAPHS, NS, "one")), 180_000, "graph one Ready");
      const watch = succeededTimes(kube, NS);
      await watch.informer.start();
      const lat = await latencies(kube, watch.times, LATENCY_TASKS, 50, (name) => task(name, "one"), "l");
      const [p50, p99] = percentiles(lat, [50, 99]);
      rows.push({ name: "real pods: JobTask created → Succeeded p50, one-job graph at 20/s", value: p50!, unit: "ms", target: "<= 250", met: p50! <= 250 });
      rows.push({ name: "real pods: JobTask created → Succeeded p99, one-job graph at 20/s", value: p99!, unit: "ms", target: "<= 1000", met: p99! <= 1000, note: `${LATENCY_TASKS} JobTasks, 2 runner pods` });

      t = performance.now();
      await createMany(SUSTAINED, (i) => kube.create(JOBTASKS, task(`s${i}`, "one")));
      await until(() => Array.from({ length: SUSTAINED }, (_, i) => `s${i}`).every((k) => watch.times.has(k)), 600_000, "sustained JobTasks Succeeded");
      const sustained = SUSTAINED / ((Math.max(...watch.times.values()) - t) / 1000);
      rows.push({
        name: `real pods: sustained JobTasks/s (${fmtInt(SUSTAINED)} from ${CLIENTS} clients, one-job graph)`,
        value: sustained,
        unit: "tasks/s",
        target: ">= 100 and >= 0.5x floor",
        met: sustained >= 100 && sustained >= 0.5 * floor,
        note: `${(sustained / floor).toFixed(2)}x floor: ${fmtInt(floor)} trivial CRs/s created + status patched once, same apiserver and run`,
      });

      await kube.create(JOBGRAPHS, graph("cold", 0, 2, 1));
      await until(async () => {
        const g = await kube.get<Obj>(JOBGRAPHS, NS, "cold");
        return graphReady(g) || (g?.status?.pools?.[0]?.desiredReplicas === 0 && g.status.pools[0].replicas === 0);
      }, 180_000, "graph cold at zero");
      await until(async () => (await kube.get<Obj>(JOBGRAPHS, NS, "cold"))?.status?.pools?.[0]?.replicas === 0, 180_000, "cold pool at zero pods");
      const coldAt = performance.now();
      await kube.create(JOBTASKS, task("cold-1", "cold"));
      await until(() => watch.times.has("cold-1"), 180_000, "first JobTask from zero");
      rows.push({ name: "real pods: scale from zero → first JobTask Succeeded", value: watch.times.get("cold-1")! - coldAt, unit: "ms", note: "backlog → Deployment scaled → pod started (image present) → runner ready → task" });
      watch.informer.stop();
    } finally {
      await cluster.stop();
    }
    // The project image's size is the node suite's row; this is a user's runner image built FROM it.
    const pipeline = path.join(imageArchivesDir(), "pipeline.tar");
    if (existsSync(pipeline)) {
      rows.push({ name: "image jobchain.local/pipeline:e2e (example pipeline FROM the project image), uncompressed", value: statSync(pipeline).size / 1e6, unit: "MB", note: `${IMAGES.project} + the job modules` });
    }
    return rows;
  },
};

export default suite;
