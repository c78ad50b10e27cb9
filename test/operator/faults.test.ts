// Operator faults that count: every accepted JobTask ends Succeeded with its exact result, and each job of each
// task completes exactly once (counted by the Count job in the runner "pods", not just by results) when the
// operator is killed with -9, when the leader of two dies, and when its watches are cut and etcd is compacted
// under them (410 → relist). Killing a runner pod and restarting nats-server lose nothing either; there a job
// may start again after the crash (at-least-once execution, docs/operator.md), so those runs are counted and
// reported, and completions are checked to be at most one per crashed delivery.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { controlPlaneSuiteSkip } from "../harness/controlplane-vitest.ts";
import { compactEtcd } from "../harness/controlplane.ts";
import { COORDINATION, type KubeObject } from "../../operator/kube/index.ts";
import { JOBGRAPHS, JOBTASKS } from "../../operator/api/index.ts";
import { until } from "../helpers/until.ts";
import type { Proc } from "../helpers/procs.ts";
import { startTcpProxy } from "./tcp-proxy.ts";
import { condition, jobGraph, jobTask, startOperatorEnv, waitFor, type OperatorEnv } from "./env.ts";

const skip = controlPlaneSuiteSkip("operator faults");
type Obj = KubeObject & { spec?: Record<string, unknown>; status?: Record<string, any> };
const ns = "default";

function countGraph(ms: number, replicas = 2) {
  return {
    image: "jobchain-test:1",
    jobs: { work: { type: "Count", properties: { ms } }, finish: { type: "Count" } },
    graph: { work: { next: ["finish"] }, finish: { next: [] } },
    pools: [{ name: "main", replicas: { min: replicas, max: replicas } }],
  };
}

async function createTasks(env: OperatorEnv, prefix: string, n: number, graph: string, parallel = 16): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < names.length) {
        const name = names[next++]!;
        await env.kube.create(JOBTASKS, jobTask(name, { graph, input: { name } }));
      }
    }),
  );
  return names;
}

/** Every task Succeeded with its exact result; returns their uids. */
async function allSucceeded(env: OperatorEnv, names: string[], timeoutMs = 240_000): Promise<string[]> {
  const done = new Map<string, Obj>();
  await until(async () => {
    const list = await env.kube.list<Obj>(JOBTASKS, { namespace: ns });
    for (const t of list.items) if (t.status?.phase === "Succeeded" || t.status?.phase === "Failed") done.set(t.metadata.name, t);
    return names.every((n) => done.has(n));
  }, timeoutMs, `${names.length} JobTasks finished (${done.size} so far)`);
  for (const n of names) {
    const t = done.get(n)!;
    expect(t.status!.phase, `${n}: ${JSON.stringify(t.status?.error)}`).toBe("Succeeded");
    expect(t.status!.result).toEqual({ name: n, finish: true });
    expect(condition(t, "Succeeded")?.status).toBe("True");
  }
  return names.map((n) => done.get(n)!.metadata.uid!);
}

function expectOncePerJob(env: OperatorEnv, uids: string[]): void {
  const ex = env.executions();
  const wrong = uids.flatMap((u) => ["work", "finish"].filter((j) => ex.get(`${u}|${j}`) !== 1).map((j) => `${u}|${j}=${ex.get(`${u}|${j}`) ?? 0}`));
  expect(wrong, "jobs that did not complete exactly once").toEqual([]);
}

describe.skipIf(skip)("operator faults", () => {
  let env: OperatorEnv;
  const procs: Proc[] = [];

  beforeAll(async () => {
    // Without a watch cache for JobTasks, a watch from a compacted revision gets 410 Gone from etcd itself.
    env = await startOperatorEnv({ apiserverArgs: ["--watch-cache-sizes=jobtasks.jobchain.dev#0"] });
  }, 180_000);
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.kill("SIGKILL").catch(() => undefined);
    await env.operator?.stop().catch(() => undefined);
    env.operator = undefined;
    // Leave no tasks behind for the next scenario.
    for (const t of (await env.kube.list<Obj>(JOBTASKS, { namespace: ns })).items) await env.kube.delete(JOBTASKS, ns, t.metadata.name).catch(() => false);
  }, 120_000);
  afterAll(async () => env?.stop(), 60_000);

  it("kill -9 of the operator with 500 JobTasks in flight: each completes once, none lost", async () => {
    const first = env.operatorProcess();
    procs.push(first);
    await first.waitFor("started as", 60_000);
    await env.kube.create(JOBGRAPHS, jobGraph("killop", countGraph(300)));
    await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "killop", (g) => condition(g, "Ready")?.status === "True", 120_000);
    const creating = createTasks(env, "killop", 500, "killop");
    // Kill it while tasks are being created, submitted and finished.
    await until(async () => {
      const list = await env.kube.list<Obj>(JOBTASKS, { namespace: ns });
      return list.items.filter((t) => t.status?.submitted).length >= 100;
    }, 120_000, "100 JobTasks submitted");
    await first.kill("SIGKILL");
    await creating;
    const again = env.operatorProcess();
    procs.push(again);
    const uids = await allSucceeded(env, await creating);
    expectOncePerJob(env, uids);
    await env.kube.delete(JOBGRAPHS, ns, "killop");
  }, 420_000);

  it("two operators with leader election: one acts; kill -9 of the leader hands over, nothing lost or run twice", async () => {
    const args = ["--leader-elect", "--lease-name", "faults-operator", "--lease-namespace", ns, "--lease-duration", "4"];
    const a = env.operatorProcess(args);
    const b = env.operatorProcess(args);
    procs.push(a, b);
    await Promise.all([a.waitFor("started as", 60_000), b.waitFor("started as", 60_000)]);
    const idOf = (p: Proc) => /started as (\S+)/.exec(p.stderr())![1]!;
    let holder = "";
    await until(async () => {
      const lease = await env.kube.get<Obj & { spec?: { holderIdentity?: string } }>(COORDINATION.leases, ns, "faults-operator");
      holder = lease?.spec?.holderIdentity ?? "";
      return holder === idOf(a) || holder === idOf(b);
    }, 60_000, "a leader");
    await env.kube.create(JOBGRAPHS, jobGraph("leader", countGraph(200)));
    await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "leader", (g) => condition(g, "Ready")?.status === "True", 120_000);
    const names = await createTasks(env, "leader", 150, "leader");
    const [leader, standby] = holder === idOf(a) ? [a, b] : [b, a];
    await leader.kill("SIGKILL");
    await until(async () => {
      const lease = await env.kube.get<Obj & { spec?: { holderIdentity?: string } }>(COORDINATION.leases, ns, "faults-operator");
      return lease?.spec?.holderIdentity === idOf(standby);
    }, 60_000, "the standby takes the lease");
    const more = await createTasks(env, "leader-after", 50, "leader");
    const uids = await allSucceeded(env, [...names, ...more]);
    expectOncePerJob(env, uids);
    await env.kube.delete(JOBGRAPHS, ns, "leader");
  }, 420_000);

  it("watches cut and etcd compacted while JobTasks are created (410 → relist): each completes once", async () => {
    const u = new URL(env.cp.server);
    const proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port) });
    try {
      await env.startOperator({ kubeconfig: proxy.kubeconfig(env.cp.adminKubeconfig, `${env.cp.dir}/via-proxy.kubeconfig`) });
      await env.kube.create(JOBGRAPHS, jobGraph("cut", countGraph(50)));
      await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "cut", (g) => condition(g, "Ready")?.status === "True", 120_000);
      const before = await createTasks(env, "cut-a", 50, "cut");
      proxy.cut();
      const during = await createTasks(env, "cut-b", 50, "cut");
      await compactEtcd(env.cp);
      proxy.restore();
      const after = await createTasks(env, "cut-c", 50, "cut");
      const uids = await allSucceeded(env, [...before, ...during, ...after]);
      expectOncePerJob(env, uids);
      await env.kube.delete(JOBGRAPHS, ns, "cut");
    } finally {
      await proxy.close();
    }
  }, 420_000);

  it("kill -9 of a runner pod and a nats-server restart mid-run: every JobTask succeeds, each result once", async () => {
    await env.startOperator();
    await env.kube.create(JOBGRAPHS, jobGraph("crash", countGraph(400)));
    await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "crash", (g) => condition(g, "Ready")?.status === "True", 120_000);
    const names = await createTasks(env, "crash", 200, "crash");
    await until(async () => env.executions().size >= 40, 120_000, "work under way");
    const pod = env.pods.processes().find((p) => p.deployment.startsWith("crash-") && p.running)!;
    pod.kill("SIGKILL");
    await until(async () => env.executions().size >= 150, 120_000, "work under way after the runner crash");
    await env.nats.restart();
    const uids = await allSucceeded(env, names);
    const ex = env.executions();
    // Every job of every task completed; a delivery that a crash interrupted may complete on another runner
    // too (at-least-once execution), which is counted here, never more than twice.
    const runs = uids.flatMap((u) => ["work", "finish"].map((j) => ex.get(`${u}|${j}`) ?? 0));
    expect(runs.every((n) => n >= 1 && n <= 2)).toBe(true);
    console.log(`runner kill + NATS restart: ${runs.filter((n) => n === 2).length} of ${runs.length} job runs completed twice`);
    await env.kube.delete(JOBGRAPHS, ns, "crash");
  }, 420_000);
});
