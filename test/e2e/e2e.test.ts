// End to end, as a platform team and a JobChain user would do it, on a cluster with real pods (the local node by
// default, kind with JOBCHAIN_E2E_CLUSTER=kind): `helm install --wait` of charts/jobchain with the locally built
// images; the example pipeline in its own runner image (built as docs/jobs.md says) as a JobGraph from
// `jobchain manifest`; JobTasks with `kubectl create` and `kubectl wait`; 1,000 tasks through `jobchain submit`
// over the cluster's NATS; faults with counts (a runner pod deleted, a runner process SIGKILLed, the leading
// operator pod killed, the NATS pod restarted: every task's result exactly once, every job executed exactly once —
// after the SIGKILL, only the jobs the dead runner held run once more);
// scale to zero and back; `helm upgrade` to a new image tag under load; `helm uninstall` leaving only what the
// docs say.
//
// The tests run in order and share the installation. When one fails, the namespaces' pods, logs and events are
// printed. Skipped, with the reason, where no such cluster can run here.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import YAML from "yaml";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { E2ECluster } from "../harness/e2e-cluster.ts";
import { imageArchivesDir } from "../harness/node.ts";
import { kubectlWith } from "../harness/node-e2e.ts";
import { eventually } from "../harness/node-vitest.ts";
import { e2eSuiteSkip, E2E_IMAGES, startE2ECluster } from "../harness/e2e-vitest.ts";
import { helm as runHelm } from "../harness/helm.ts";
import { cli, REPO } from "../helpers/cli.ts";

const skip = e2eSuiteSkip();

const RELEASE = "jobchain";
const SYSTEM_NS = "jobchain-system";
const NS = "e2e";
const PIPELINE = path.join(REPO, "examples/pipeline");
type Obj = { metadata: { name: string; labels?: Record<string, string> }; spec?: any; status?: any };

describe.skipIf(skip)("JobChain end to end on real pods", () => {
  let cluster: E2ECluster;
  let natsUrl: string;
  let nc: NatsConnection;
  const tmp = path.join(os.tmpdir(), `jobchain-e2e-${process.pid}`);
  const k = (args: string[], input?: string) => kubectlWith(cluster.kubectl, cluster.env, args, input, 300_000);
  const helm = (args: string[]) => runHelm(args, { env: cluster.env, timeoutMs: 600_000 });
  const json = <T = Obj>(args: string[]) => JSON.parse(k([...args, "-o", "json"])) as T;
  const submit = (graph: string, inputs: string, timeoutMs = 600_000) =>
    cli(["submit", "--graph", graph, "--inputs", inputs, "--nats", natsUrl, "--timeout", "300"], { timeoutMs, env: { ...process.env, JOBCHAIN_LOG_LEVEL: "warn" } });

  const installValues = (imageTag: string, runnerImage: string) => [
    "--set", `image.tag=${imageTag}`,
    "--set", `runner.image=${runnerImage}`,
    "--set", `runner.allowedImages={jobchain.local/}`,
    "--set", "operator.leaseDurationSeconds=6",
  ];

  /** Executions recorded by Count jobs (test/e2e/image/jobs/count.ts): `<task>|<node>` → count. */
  async function executions(): Promise<Map<string, number>> {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("E2E_EXEC");
    const counts = new Map<string, number>();
    if (info.state.messages === 0) return counts;
    const consumer = await jetstream(nc).consumers.get("E2E_EXEC");
    const msgs = await consumer.fetch({ max_messages: info.state.messages, expires: 10_000 });
    let seen = 0;
    for await (const m of msgs) {
      const { id, node } = m.json<{ id: string; node: string }>();
      counts.set(`${id}|${node}`, (counts.get(`${id}|${node}`) ?? 0) + 1);
      if (++seen >= info.state.messages) break;
    }
    return counts;
  }

  /** Executions recorded so far of the tasks `<prefix>-*`. */
  const started = async (prefix: string) => [...(await executions()).keys()].filter((k) => k.startsWith(`${prefix}-`)).length;

  /** `count` tasks for the Count graph, ids `<prefix>-<n>`, each sleeping `ms` per node. */
  function countTasks(prefix: string, count: number, ms: number): string {
    const file = path.join(tmp, `${prefix}.jsonl`);
    writeFileSync(file, Array.from({ length: count }, (_, i) => JSON.stringify({ id: `${prefix}-${i}`, ms })).join("\n") + "\n");
    return file;
  }

  /**
   * Every task of `prefix` has exactly one result, succeeded, and each of its jobs ran exactly once — or, with
   * `rerunsAllowed` (after a SIGKILL, when the dead runner's jobs run again elsewhere: execution is at least once),
   * at most that many jobs ran a second time and none a third.
   */
  async function expectExactlyOnce(prefix: string, count: number, results: Record<string, unknown>[], rerunsAllowed = 0): Promise<void> {
    const ids = results.map((r) => r.id as string);
    expect(new Set(ids).size, "results delivered twice").toBe(ids.length);
    expect(ids.length, "tasks lost").toBe(count);
    expect(results.filter((r) => r.status !== "succeeded").map((r) => JSON.stringify(r)).slice(0, 3)).toEqual([]);
    // The suite's own connection may still be reconnecting after a NATS restart.
    const runs = await waitFor("the execution records", () => executions().catch(() => undefined), 120_000);
    const lost: string[] = [];
    const twice: string[] = [];
    for (let i = 0; i < count; i++) {
      for (const node of ["first", "second"]) {
        const n = runs.get(`${prefix}-${i}|${node}`) ?? 0;
        if (n === 0) lost.push(`${prefix}-${i}|${node}`);
        if (n > 1) twice.push(`${prefix}-${i}|${node} ×${n}`);
      }
    }
    console.log(`${prefix}: ${count} tasks, ${ids.length} results, ${lost.length} executions missing, ${twice.length} run twice` +
      (rerunsAllowed ? ` (re-runs of the killed runner's jobs; at most ${rerunsAllowed} allowed)` : ""));
    expect(lost, "never executed").toEqual([]);
    if (rerunsAllowed === 0) expect(twice, "executed twice").toEqual([]);
    else {
      expect(twice.length, `re-runs: ${twice.slice(0, 5).join(", ")}`).toBeLessThanOrEqual(rerunsAllowed);
      expect(twice.filter((t) => !t.endsWith("×2")), "executed more than twice").toEqual([]);
    }
  }

  /** Tasks a runner of the Count graph's pool works on at once. */
  const COUNT_CONCURRENCY = 8;

  function countGraph(name: string, min: number, max: number): string {
    return YAML.stringify({
      apiVersion: "jobchain.dev/v1alpha1",
      kind: "JobGraph",
      metadata: { name, namespace: NS },
      spec: {
        jobs: { first: { type: "Count" }, second: { type: "Count" } },
        graph: { first: { next: ["second"] }, second: { next: [] } },
        pools: [{ name: "main", replicas: { min, max }, scaleDownDelaySeconds: 5, concurrency: COUNT_CONCURRENCY }],
      },
    });
  }

  const runnerPods = (graph: string) =>
    json<{ items: Obj[] }>(["get", "pods", "-n", NS, "-l", `jobchain.dev/graph=${graph}`]).items.filter((p) => p.status?.phase === "Running");

  /** Polls until `probe` gives a value; fails naming `what` after `timeoutMs` (default 180 s). */
  const waitFor = <T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 180_000) => eventually(what, probe, timeoutMs);

  beforeAll(async () => {
    mkdirSync(tmp, { recursive: true });
    cluster = await startE2ECluster((l) => console.error(`  ${l}`));
    for (const image of E2E_IMAGES) await cluster.loadImageArchive(path.join(imageArchivesDir(), `${image}.tar`));
    const { storageClassName } = await cluster.ensureVolumes(1, "1Gi");
    await helm([
      "install", RELEASE, path.join(REPO, "charts/jobchain"), "--namespace", SYSTEM_NS, "--create-namespace", "--wait", "--timeout", "5m",
      ...installValues("dev", "jobchain.local/e2e-jobs:1"),
      "--set", `nats.install.storage.storageClassName=${storageClassName}`,
    ]);
    k(["create", "namespace", NS]);
    natsUrl = (await cluster.serviceUrl(SYSTEM_NS, `${RELEASE}-nats`, 4222, "nats")).url;
    // A Ready pod's Service may take kube-proxy a moment to program: keep dialling until it answers.
    nc = await connect({ servers: natsUrl, maxReconnectAttempts: -1, waitOnFirstConnect: true });
    await (await jetstreamManager(nc)).streams.add({ name: "E2E_EXEC", subjects: ["e2e.exec"], duplicate_window: 120_000_000_000 });
  }, 900_000);

  afterEach((ctx) => {
    if (ctx.task.result?.state === "fail") {
      for (const ns of [SYSTEM_NS, NS]) console.error(cluster.diagnostics(ns));
    }
  });

  afterAll(async () => {
    await nc?.close().catch(() => {});
    await cluster?.stop();
  }, 300_000);

  it("helm install --wait: two operator replicas, one of them leading, and a NATS server with JetStream on a volume", () => {
    const operators = json<{ items: Obj[] }>(["get", "pods", "-n", SYSTEM_NS, "-l", "app.kubernetes.io/component=operator"]).items;
    expect(operators.map((p) => p.status.phase)).toEqual(["Running", "Running"]);
    const lease = json(["get", "lease", "-n", SYSTEM_NS, "jobchain-operator"]);
    expect(operators.some((p) => lease.spec.holderIdentity.startsWith(p.metadata.name))).toBe(true);
    const pvc = json<{ items: Obj[] }>(["get", "pvc", "-n", SYSTEM_NS]).items;
    expect(pvc.map((p) => p.status.phase)).toEqual(["Bound"]);
    expect(k(["get", "crd", "jobgraphs.jobchain.dev", "jobtasks.jobchain.dev", "-o", "name"]).trim().split("\n")).toHaveLength(2);
  });

  it("runs the example pipeline from `jobchain manifest` in its own image: kubectl create, kubectl wait, exact results", async () => {
    const manifest = await cli(["manifest", PIPELINE, "--graph", "text_report", "--name", "pipeline", "--namespace", NS, "--image", "jobchain.local/pipeline:e2e"]);
    expect(manifest.code, manifest.stderr).toBe(0);
    k(["apply", "-f", "-"], manifest.stdout);
    k(["wait", "-n", NS, "--for=condition=Ready", "jobgraph/pipeline", "--timeout=180s"]);
    const tasks = readFileSync(path.join(PIPELINE, "tasks.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const local = await cli(["run", PIPELINE, "--graph", "text_report/brief", "--inputs", path.join(PIPELINE, "tasks.jsonl")]);
    expect(local.code, local.stderr).toBe(0);
    const expected = new Map(local.lines.map((l) => [l.id as string, l.result]));
    for (const task of tasks) {
      k(["create", "-f", "-"], YAML.stringify({
        apiVersion: "jobchain.dev/v1alpha1",
        kind: "JobTask",
        metadata: { name: String(task.id), namespace: NS },
        spec: { graph: "pipeline", group: "brief", input: task },
      }));
    }
    k(["wait", "-n", NS, "--for=condition=Succeeded", ...tasks.map((t) => `jobtask/${String(t.id)}`), "--timeout=180s"]);
    for (const task of tasks) {
      const jt = json(["get", "jobtask", "-n", NS, String(task.id)]);
      expect(jt.status.phase).toBe("Succeeded");
      expect(jt.status.result).toEqual(expected.get(String(task.id)));
    }
  }, 400_000);

  it("reports a job type the image lacks in the JobGraph's status", async () => {
    k(["apply", "-f", "-"], YAML.stringify({
      apiVersion: "jobchain.dev/v1alpha1",
      kind: "JobGraph",
      metadata: { name: "lacking", namespace: NS },
      spec: { image: "jobchain.local/pipeline:e2e", jobs: { a: { type: "NotInThisImage" } }, graph: { a: { next: [] } } },
    }));
    const jg = await waitFor("Ready=False naming the missing type", () => {
      const g = json(["get", "jobgraph", "-n", NS, "lacking"]);
      const ready = (g.status?.conditions ?? []).find((c: { type: string }) => c.type === "Ready");
      return ready?.status === "False" && /NotInThisImage/.test(ready.message) ? ready : undefined;
    });
    expect(jg.reason).toBe("RunnerProblem");
    k(["delete", "jobgraph", "-n", NS, "lacking", "--wait=true"]);
  }, 300_000);

  it("takes 1,000 tasks through `jobchain submit` over the cluster's NATS, with the results of `jobchain run`", async () => {
    const texts = readFileSync(path.join(PIPELINE, "tasks.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).text as string);
    const file = path.join(tmp, "thousand.jsonl");
    writeFileSync(file, Array.from({ length: 1000 }, (_, i) => JSON.stringify({ id: `t-${i}`, text: `${texts[i % texts.length]} #${i}` })).join("\n") + "\n");
    const [remote, local] = await Promise.all([
      submit(`${NS}_pipeline/brief`, file),
      cli(["run", PIPELINE, "--graph", "text_report/brief", "--inputs", file]),
    ]);
    expect(remote.code, remote.stderr.slice(-2000)).toBe(0);
    expect(local.code, local.stderr).toBe(0);
    const got = new Map(remote.lines.map((l) => [l.id as string, l.result]));
    expect(got.size).toBe(1000);
    expect(remote.lines).toHaveLength(1000);
    for (const l of local.lines) expect(got.get(l.id as string), String(l.id)).toEqual(l.result);
  }, 600_000);

  describe("faults, counted: nothing lost, nothing run twice", () => {
    beforeAll(async () => {
      k(["apply", "-f", "-"], countGraph("count", 2, 2));
      k(["wait", "-n", NS, "--for=condition=Ready", "jobgraph/count", "--timeout=180s"]);
      await waitFor("two runner pods", () => runnerPods("count").length === 2);
    }, 300_000);

    it("a runner pod deleted mid-run", async () => {
      const run = submit(`${NS}_count`, countTasks("pod", 400, 100));
      await waitFor("tasks in flight", async () => (await started("pod")) > 100 || undefined);
      const victim = runnerPods("count")[0]!.metadata.name;
      k(["delete", "pod", "-n", NS, victim, "--wait=false"]);
      const r = await run;
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      await expectExactlyOnce("pod", 400, r.lines);
    }, 600_000);

    it("a runner process killed with SIGKILL mid-run: the kubelet restarts it, only what it held runs again", async () => {
      const run = submit(`${NS}_count`, countTasks("kill", 400, 100));
      await waitFor("tasks in flight", async () => (await started("kill")) > 100 || undefined);
      const victim = runnerPods("count")[0]!;
      const restarts = (p: Obj) => (p.status.containerStatuses ?? []).reduce((n: number, c: { restartCount: number }) => n + c.restartCount, 0);
      const before = restarts(victim);
      cluster.killPodProcesses(NS, victim.metadata.name);
      const r = await run;
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      // Only what the killed runner held may run again: its pool's concurrency of tasks running and as many finished
      // whose hand-off was not yet acknowledged, both jobs of each (the graph is one pool).
      await expectExactlyOnce("kill", 400, r.lines, 2 * COUNT_CONCURRENCY * 2);
      await waitFor("the killed container restarted", () => restarts(json(["get", "pod", "-n", NS, victim.metadata.name])) > before);
    }, 600_000);

    it("the leading operator pod killed", async () => {
      const run = submit(`${NS}_count`, countTasks("operator", 300, 50));
      const lease = json(["get", "lease", "-n", SYSTEM_NS, "jobchain-operator"]);
      const leader = json<{ items: Obj[] }>(["get", "pods", "-n", SYSTEM_NS, "-l", "app.kubernetes.io/component=operator"]).items.find((p) =>
        lease.spec.holderIdentity.startsWith(p.metadata.name),
      )!;
      k(["delete", "pod", "-n", SYSTEM_NS, leader.metadata.name, "--grace-period=0", "--force"]);
      // JobTasks keep working through the new leader.
      k(["create", "-f", "-"], YAML.stringify({
        apiVersion: "jobchain.dev/v1alpha1",
        kind: "JobTask",
        metadata: { name: "after-failover", namespace: NS },
        spec: { graph: "count", input: { id: "after-failover" } },
      }));
      const r = await run;
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      await expectExactlyOnce("operator", 300, r.lines);
      k(["wait", "-n", NS, "--for=condition=Succeeded", "jobtask/after-failover", "--timeout=180s"]);
      const next = json(["get", "lease", "-n", SYSTEM_NS, "jobchain-operator"]);
      expect(next.spec.holderIdentity).not.toBe(lease.spec.holderIdentity);
    }, 600_000);

    it("the NATS pod restarted (JetStream on its volume)", async () => {
      const run = submit(`${NS}_count`, countTasks("nats", 300, 100));
      await waitFor("tasks in flight", async () => (await started("nats")) > 50 || undefined);
      k(["delete", "pod", "-n", SYSTEM_NS, `${RELEASE}-nats-0`]);
      const r = await run;
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      await expectExactlyOnce("nats", 300, r.lines);
    }, 600_000);
  });

  it("scales a pool to zero when idle and back from zero for a JobTask, with real pods", async () => {
    k(["apply", "-f", "-"], countGraph("sleepy", 0, 2));
    await waitFor("the idle pool at zero pods", () => {
      const g = json(["get", "jobgraph", "-n", NS, "sleepy"]);
      return g.status?.pools?.[0]?.desiredReplicas === 0 && runnerPods("sleepy").length === 0;
    });
    const t0 = Date.now();
    k(["create", "-f", "-"], YAML.stringify({
      apiVersion: "jobchain.dev/v1alpha1",
      kind: "JobTask",
      metadata: { name: "wake-up", namespace: NS },
      spec: { graph: "sleepy", input: { id: "wake-up" } },
    }));
    k(["wait", "-n", NS, "--for=condition=Succeeded", "jobtask/wake-up", "--timeout=180s"]);
    console.log(`scale from zero: JobTask created → Succeeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(json(["get", "jobtask", "-n", NS, "wake-up"]).status.result).toMatchObject({ id: "wake-up", second: true });
    await waitFor("back to zero pods", () => runnerPods("sleepy").length === 0);
  }, 600_000);

  it("helm upgrade to a new image tag rolls the operator and the runners without losing a task", async () => {
    const before = runnerPods("count").map((p) => p.metadata.name);
    const run = submit(`${NS}_count`, countTasks("upgrade", 400, 100));
    await waitFor("tasks in flight", async () => (await started("upgrade")) > 50 || undefined);
    await helm(["upgrade", RELEASE, path.join(REPO, "charts/jobchain"), "--namespace", SYSTEM_NS, "--reuse-values", "--wait", "--timeout", "5m",
      ...installValues("e2e-next", "jobchain.local/e2e-jobs:2")]);
    const r = await run;
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    await expectExactlyOnce("upgrade", 400, r.lines);
    await waitFor("operator pods on the new image only", () => {
      const operators = json<{ items: (Obj & { metadata: { deletionTimestamp?: string } })[] }>(["get", "pods", "-n", SYSTEM_NS, "-l", "app.kubernetes.io/component=operator"]).items;
      return operators.length === 2 && operators.every((p) => !p.metadata.deletionTimestamp && p.spec.containers[0].image === "jobchain.local/jobchain:e2e-next");
    });
    const after = await waitFor("runners on the new image only", () => {
      const pods = runnerPods("count");
      return pods.length > 0 && pods.every((p) => p.spec.containers[0].image === "jobchain.local/e2e-jobs:2") ? pods : undefined;
    });
    expect(after.some((p) => before.includes(p.metadata.name))).toBe(false);
  }, 900_000);

  it("helm uninstall leaves only the CRDs (with the resources still there) and the NATS volume", async () => {
    // JobGraphs carry the operator's finalizer: delete them while the operator runs (docs/operations.md).
    k(["delete", "jobgraphs", "--all", "-n", NS, "--wait=true", "--timeout=180s"]);
    k(["create", "-f", "-"], YAML.stringify({
      apiVersion: "jobchain.dev/v1alpha1",
      kind: "JobTask",
      metadata: { name: "left-behind", namespace: NS },
      spec: { graph: "gone", input: {} },
    }));
    await helm(["uninstall", RELEASE, "--namespace", SYSTEM_NS, "--wait", "--timeout", "5m"]);
    // The Lease is the operator's own, not the chart's: it stays (it expires and is taken over by a new install).
    const left = () => k(["get", "all,configmaps,secrets,serviceaccounts,roles,rolebindings,leases,poddisruptionbudgets", "-n", SYSTEM_NS, "-o", "name"])
      .trim().split("\n").filter((n) => n && !/configmap\/kube-root-ca.crt|serviceaccount\/default|^lease/.test(n));
    await waitFor("the release's objects and pods gone", () => left().length === 0, 120_000).catch(() => undefined);
    expect(left()).toEqual([]);
    expect(k(["get", "clusterroles,clusterrolebindings", "-o", "name"]).split("\n").filter((n) => n.includes(`/${RELEASE}-`))).toEqual([]);
    expect(k(["get", "crd", "jobgraphs.jobchain.dev", "jobtasks.jobchain.dev", "-o", "name"]).trim().split("\n")).toHaveLength(2);
    expect(json(["get", "jobtask", "-n", NS, "left-behind"]).metadata.name).toBe("left-behind");
    expect(json<{ items: Obj[] }>(["get", "pvc", "-n", SYSTEM_NS]).items.map((p) => p.metadata.name)).toEqual([`data-${RELEASE}-nats-0`]);
    expect(json<{ items: Obj[] }>(["get", "deployments", "-n", NS]).items).toEqual([]);
  }, 600_000);
});
