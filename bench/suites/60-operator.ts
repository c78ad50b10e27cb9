// The operator on the real control plane (kube-apiserver + etcd), a real nats-server and the Deployment stand-in
// (runner "pods" as local processes), with its floor measured on the same apiserver in the same run: a trivial
// custom resource created and its status patched once, from the same 16 clients.
//   JobTask created → Succeeded at 50/s on a one-job graph (p50/p99), sustained JobTasks/s (2,000 from 16 clients),
//   backlog appearing → replicas raised, scale from zero → first JobTask Succeeded, status writes per JobTask on a
//   4-job graph, operator RSS idle and with 10,000 finished JobTasks, its restart → first reconcile time then.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { connect } from "@nats-io/transport-node";
import { startControlPlane, type ControlPlane } from "../../test/harness/controlplane.ts";
import { startNats, type NatsServerHandle } from "../../test/harness/nats.ts";
import { startDeploymentRunner, type DeploymentRunner } from "../../test/harness/deployments.ts";
import { installCrds } from "../../test/harness/services.ts";
import { APPS, createKubeClient, loadKubeConfig, type KubeObject } from "../../operator/kube/index.ts";
import { JOBGRAPHS, JOBTASKS } from "../../operator/api/index.ts";
import { JobChainClient } from "../../runner/index.ts";
import type { BenchRow, BenchSuite } from "../types.ts";
import { CLI, spawnCli, type CliProcess } from "./lib/procs.ts";
import { fmtInt, percentiles, sleep } from "./lib/stats.ts";
import { CLIENTS, createMany, crFloor, graphReady, latencies, succeededTimes, until, type Obj } from "./lib/kube.ts";

const NS = "default";
const SUSTAINED = Number(process.env.BENCH_OPERATOR_TASKS ?? 2000);
const FINISHED = Number(process.env.BENCH_OPERATOR_FINISHED ?? 10_000);

const graph = (name: string, spec: Record<string, unknown>): KubeObject => ({ apiVersion: "jobchain.dev/v1alpha1", kind: "JobGraph", metadata: { name, namespace: NS }, spec } as KubeObject);
const echo = (n: number) => ({
  jobs: Object.fromEntries(Array.from({ length: n }, (_, i) => [`j${i}`, { type: "Echo" }])),
  graph: Object.fromEntries(Array.from({ length: n }, (_, i) => [`j${i}`, { next: i + 1 < n ? [`j${i + 1}`] : [] }])),
});

async function scrape(port: number, metric: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith(metric)).reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
}

const suite: BenchSuite = {
  name: "operator",
  async run(): Promise<BenchRow[]> {
    const rows: BenchRow[] = [];
    let cp: ControlPlane | undefined;
    let nats: NatsServerHandle | undefined;
    let pods: DeploymentRunner | undefined;
    let op: CliProcess | undefined;
    const dir = mkdtempSync(path.join(os.tmpdir(), "jobchain-bench-op-"));
    try {
      cp = await startControlPlane();
      nats = await startNats();
      const kube = createKubeClient(loadKubeConfig({ kubeconfig: cp.adminKubeconfig }), { qps: 10_000, burst: 10_000 });
      await installCrds(kube);
      pods = await startDeploymentRunner({
        kubeconfig: cp.adminKubeconfig,
        commandMap: (argv) => [process.execPath, CLI, ...argv.slice(1).map((a, i, all) => (all[i - 1] === "--metrics-port" ? "0" : a))],
        env: { ...process.env, JOBCHAIN_LOG_LEVEL: "warn" },
      });
      const startOperator = async () => {
        const port = 20_000 + Math.floor(Math.random() * 20_000);
        const p = spawnCli(["operator", "--kubeconfig", cp!.adminKubeconfig, "--nats", nats!.url, "--metrics-port", String(port)], { name: "operator", env: { JOBCHAIN_LOG_LEVEL: "warn" } });
        await p.waitFor(/started as/, 60_000);
        return { p, port };
      };
      let o = await startOperator();
      op = o.p;
      // Idle: started, caches synced, nothing to do yet.
      await sleep(5000);
      const idle = op.rssMB()!;

      // ---- floor: the same apiserver, a trivial custom resource created and its status patched once
      const floor = await crFloor(kube, NS, SUSTAINED);

      // ---- a one-job graph; sustained JobTasks/s from 16 clients
      await kube.create(JOBGRAPHS, graph("one", { ...echo(1), pools: [{ name: "main", replicas: { min: 1, max: 4 } }] }));
      await until(async () => graphReady(await kube.get<Obj>(JOBGRAPHS, NS, "one")), 120_000, "graph one Ready");
      const watch = succeededTimes(kube, NS);
      await watch.informer.start();
      const task = (name: string, g = "one") => ({ apiVersion: "jobchain.dev/v1alpha1", kind: "JobTask", metadata: { name, namespace: NS }, spec: { graph: g, input: { name } } } as KubeObject);
      const t0 = performance.now();
      await createMany(SUSTAINED, (i) => kube.create(JOBTASKS, task(`s${i}`)));
      await until(() => watch.times.size >= SUSTAINED, 600_000, "sustained JobTasks Succeeded");
      const sustained = SUSTAINED / ((Math.max(...watch.times.values()) - t0) / 1000);
      rows.push({
        name: `sustained JobTasks/s (${fmtInt(SUSTAINED)} from ${CLIENTS} clients, one-job graph)`,
        value: sustained,
        unit: "tasks/s",
        target: ">= 100 and >= 0.5x floor",
        met: sustained >= 100 && sustained >= 0.5 * floor,
        note: `${(sustained / floor).toFixed(2)}x floor: ${fmtInt(floor)} trivial CRs/s created + status patched once, same apiserver and run; Argo: 35 workflows/s published (50 nodes, QPS 20)`,
      });

      // ---- latency at 50/s
      const N = 500;
      const lat = await latencies(kube, watch.times, N, 20, (name) => task(name), "l");
      const [p50, p99] = percentiles(lat, [50, 99]);
      rows.push({ name: "JobTask created → Succeeded p50, one-job graph at 50/s", value: p50!, unit: "ms", target: "<= 250", met: p50! <= 250 });
      rows.push({ name: "JobTask created → Succeeded p99, one-job graph at 50/s", value: p99!, unit: "ms", target: "<= 1000", met: p99! <= 1000, note: `${N} JobTasks` });

      // ---- status writes per JobTask on a 4-job graph
      await kube.create(JOBGRAPHS, graph("four", { ...echo(4), pools: [{ name: "main", replicas: { min: 1, max: 2 } }] }));
      await until(async () => graphReady(await kube.get<Obj>(JOBGRAPHS, NS, "four")), 120_000, "graph four Ready");
      const writesBefore = await scrape(o.port, "jobchain_jobtask_status_writes_total");
      await createMany(200, (i) => kube.create(JOBTASKS, task(`f${i}`, "four")));
      await until(() => Array.from({ length: 200 }, (_, i) => `f${i}`).every((k) => watch.times.has(k)), 120_000, "4-job JobTasks Succeeded");
      await sleep(500);
      const writes = (await scrape(o.port, "jobchain_jobtask_status_writes_total")) - writesBefore;
      rows.push({ name: "status writes per JobTask, 4-job graph", value: writes / 200, unit: "patches", note: "coalesced: submitted, node progress, result" });

      // ---- backlog appearing → replicas raised
      await kube.create(JOBGRAPHS, graph("burst", {
        jobs: { wait: { type: "Delay", properties: { ms: 1000 } } },
        graph: { wait: { next: [] } },
        pools: [{ name: "main", replicas: { min: 1, max: 4 }, concurrency: 4 }],
      }));
      await until(async () => graphReady(await kube.get<Obj>(JOBGRAPHS, NS, "burst")), 120_000, "graph burst Ready");
      const nc = await connect({ servers: nats.url });
      const client = new JobChainClient({ nc });
      const burstAt = performance.now();
      await Promise.all(Array.from({ length: 100 }, (_, i) => client.submit({ i }, { graph: "default_burst", id: `b${i}` })));
      await until(async () => {
        const d = (await kube.list<Obj>(APPS.deployments, { namespace: NS, labelSelector: "jobchain.dev/graph=burst" })).items[0];
        return (d?.spec?.replicas ?? 0) > 1;
      }, 60_000, "replicas raised");
      const raised = performance.now() - burstAt;
      rows.push({ name: "backlog appears → replicas raised", value: raised, unit: "ms", target: "<= 3000", met: raised <= 3000, note: "100 tasks over NATS, pool concurrency 4; KEDA polls every 30 s by default" });

      // ---- scale from zero → first JobTask Succeeded
      await kube.create(JOBGRAPHS, graph("cold", { ...echo(1), pools: [{ name: "main", replicas: { min: 0, max: 2 }, scaleDownDelaySeconds: 1 }] }));
      await until(async () => {
        const g = await kube.get<Obj>(JOBGRAPHS, NS, "cold");
        return g?.status?.pools?.[0]?.desiredReplicas === 0 && g.status.pools[0].replicas === 0;
      }, 120_000, "graph cold at zero");
      const coldAt = performance.now();
      await kube.create(JOBTASKS, task("cold-1", "cold"));
      await until(() => watch.times.has("cold-1"), 120_000, "first JobTask from zero");
      rows.push({ name: "scale from zero → first JobTask Succeeded", value: watch.times.get("cold-1")! - coldAt, unit: "ms", note: "runner pods are local processes (stand-in): node start, no image pull" });

      // ---- operator memory idle and with FINISHED finished JobTasks present; restart → first reconcile
      const have = watch.times.size;
      await createMany(Math.max(0, FINISHED - have), (i) => kube.create(JOBTASKS, task(`m${i}`)));
      await until(() => watch.times.size >= FINISHED, 900_000, `${FINISHED} JobTasks Succeeded`);
      await sleep(3000);
      const loaded = op.rssMB()!;
      rows.push({ name: "operator RSS idle (started, caches synced, no work)", value: idle, unit: "MB", target: "<= 100", met: idle <= 100 });
      rows.push({ name: `operator RSS with ${fmtInt(FINISHED)} finished JobTasks`, value: loaded, unit: "MB", target: "<= 300", met: loaded <= 300 });
      await op.stop();
      await kube.create(JOBTASKS, task("after-restart"));
      const restartAt = performance.now();
      o = await startOperator();
      op = o.p;
      await until(() => watch.times.has("after-restart"), 120_000, "first JobTask after restart");
      rows.push({ name: `operator restart → first JobTask reconciled, ${fmtInt(FINISHED)} present`, value: watch.times.get("after-restart")! - restartAt, unit: "ms", note: "from process start: list + sync + submit + result" });
      watch.informer.stop();
      await client.close();
      await nc.close();
    } finally {
      await op?.stop().catch(() => undefined);
      await pods?.stop().catch(() => undefined);
      await nats?.stop().catch(() => undefined);
      await cp?.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
    return rows;
  },
};
export default suite;
