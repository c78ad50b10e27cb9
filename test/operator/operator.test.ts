// The operator end to end against the real control plane and a real nats-server, with the Deployment stand-in
// running runner "pods" as local processes: JobGraphs valid and invalid, JobTasks with exact results and
// status, parameter groups, a missing graph that appears later, scale to zero and back, a spec change with
// tasks in flight (none runs on two versions), TTL, the image policy, direct NATS submissions by alias.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { controlPlaneSuiteSkip } from "../harness/controlplane-vitest.ts";
import { APPS, CORE, type KubeObject } from "../../operator/kube/index.ts";
import { JOBGRAPHS, JOBTASKS, LABELS } from "../../operator/api/index.ts";
import { readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { REPO, cli } from "../helpers/cli.ts";
import { until } from "../helpers/until.ts";
import { condition, jobGraph, jobTask, startOperatorEnv, waitFor, type OperatorEnv } from "./env.ts";

const skip = controlPlaneSuiteSkip("operator");
type Obj = KubeObject & { spec?: Record<string, unknown>; status?: Record<string, any> };

const ECHO_GRAPH = {
  jobs: { first: { type: "Echo", properties: { add: { first: 1 } } }, second: { type: "Echo", properties: { add: { second: 2 } } } },
  graph: { first: { next: ["second"] }, second: { next: [] } },
};

describe.skipIf(skip)("operator", () => {
  let env: OperatorEnv;
  const ns = "default";

  beforeAll(async () => {
    env = await startOperatorEnv();
    await env.startOperator({ allowedImages: ["jobchain:", "jobchain-test:"] });
  }, 180_000);
  afterAll(async () => env?.stop(), 60_000);

  it("runs a JobGraph on runner Deployments and a JobTask to Succeeded with its exact result", async () => {
    await env.kube.create(JOBGRAPHS, jobGraph("echo", ECHO_GRAPH));
    const jg = await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "echo", (g) => condition(g, "Ready")?.status === "True", 90_000);
    expect(condition(jg, "Valid")).toMatchObject({ status: "True" });
    expect(jg.status!.heads).toEqual(["first"]);
    expect(jg.status!.tails).toEqual(["second"]);
    expect(jg.status!.instances).toEqual([`default_echo_${jg.status!.version}`]);
    expect(jg.status!.observedGeneration).toBe(jg.metadata.generation);
    expect(jg.status!.pools).toEqual([expect.objectContaining({ name: "default", readyReplicas: 1, desiredReplicas: 1 })]);
    const deps = await env.kube.list<Obj>(APPS.deployments, { namespace: ns, labelSelector: `${LABELS.graph}=echo` });
    expect(deps.items).toHaveLength(1);
    const d = deps.items[0]!;
    expect(d.metadata.labels).toMatchObject({ [LABELS.graph]: "echo", [LABELS.pool]: "default", [LABELS.managedBy]: "jobchain" });
    expect(d.metadata.ownerReferences?.[0]).toMatchObject({ kind: "JobGraph", name: "echo", uid: jg.metadata.uid, controller: true });
    const pod = (d.spec as any).template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers[0].securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true });
    const cms = await env.kube.list<Obj>(CORE.configMaps, { namespace: ns, labelSelector: `${LABELS.graph}=echo` });
    expect(cms.items).toHaveLength(1);
    expect((cms.items[0] as any).immutable).toBe(true);

    await env.kube.create(JOBTASKS, jobTask("echo-1", { graph: "echo", input: { text: "hi" } }));
    const jt = await waitFor<Obj>(env.kube, JOBTASKS, ns, "echo-1", (t) => t.status?.phase === "Succeeded");
    // Every job gets the original task: the tail's output is the task plus what it adds.
    expect(jt.status!.result).toEqual({ text: "hi", second: 2 });
    expect(jt.status!.progress).toBe("2/2");
    expect(jt.status!.nodes.first.phase).toBe("Succeeded");
    expect(jt.status!.nodes.second.phase).toBe("Succeeded");
    expect(jt.status!.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(jt.status!.taskId).toBe(jt.metadata.uid);
    expect(Date.parse(jt.status!.completionTime)).toBeGreaterThanOrEqual(Date.parse(jt.status!.startTime));
    expect(condition(jt, "Succeeded")).toMatchObject({ status: "True" });
    expect(condition(jt, "Failed")).toMatchObject({ status: "False" });
  }, 180_000);

  it("reports every problem of an invalid JobGraph in Valid and starts no runners", async () => {
    await env.kube.create(
      JOBGRAPHS,
      jobGraph("broken", {
        jobs: { a: { type: "NoSuchJob" }, b: { type: "Echo" }, c: { type: "Echo", properties: { x: "$missing" } } },
        graph: { a: { next: ["b"] }, b: { next: ["c"] }, c: { next: ["b"] } },
      }),
    );
    const jg = await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "broken", (g) => condition(g, "Valid")?.status === "False");
    const msg = condition(jg, "Valid")!.message!;
    expect(msg).toContain("NoSuchJob");
    expect(msg).toMatch(/cycle/i);
    expect(msg).toMatch(/b.*c|c.*b/);
    expect(condition(jg, "Ready")).toMatchObject({ status: "False" });
    const deps = await env.kube.list<Obj>(APPS.deployments, { namespace: ns, labelSelector: `${LABELS.graph}=broken` });
    expect(deps.items).toHaveLength(0);
    // A JobTask for it waits, naming the problem.
    await env.kube.create(JOBTASKS, jobTask("broken-1", { graph: "broken", input: {} }));
    const jt = await waitFor<Obj>(env.kube, JOBTASKS, ns, "broken-1", (t) => condition(t, "Submitted")?.reason === "GraphInvalid");
    expect(jt.status!.phase).toBe("Pending");
  }, 120_000);

  it("refuses a graph at admission when a next names no job, and an image outside --allowed-images", async () => {
    await expect(
      env.kube.create(JOBGRAPHS, jobGraph("badnext", { jobs: { a: { type: "Echo" } }, graph: { a: { next: ["nowhere"] } } })),
    ).rejects.toThrow(/spec\.graph.*`next` must be a node of spec\.graph/);
    await env.kube.create(JOBGRAPHS, jobGraph("evil", { ...ECHO_GRAPH, image: "registry.example/evil:1" }));
    const jg = await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "evil", (g) => condition(g, "Valid")?.status === "False");
    expect(condition(jg, "Valid")).toMatchObject({ reason: "ImageNotAllowed" });
    expect(condition(jg, "Valid")!.message).toContain("registry.example/evil:1");
  }, 60_000);

  it("keeps a JobTask for a missing graph Pending and runs it when the graph appears", async () => {
    await env.kube.create(JOBTASKS, jobTask("later-1", { graph: "later", input: { n: 1 } }));
    let jt = await waitFor<Obj>(env.kube, JOBTASKS, ns, "later-1", (t) => condition(t, "Submitted")?.reason === "GraphNotFound");
    expect(jt.status!.phase).toBe("Pending");
    expect(condition(jt, "Submitted")!.message).toContain("later");
    await env.kube.create(JOBGRAPHS, jobGraph("later", ECHO_GRAPH));
    jt = await waitFor<Obj>(env.kube, JOBTASKS, ns, "later-1", (t) => t.status?.phase === "Succeeded", 90_000);
    expect(jt.status!.result).toEqual({ n: 1, second: 2 });
  }, 150_000);

  it("runs parameter groups, and fails a JobTask without a group on a multi-group graph, listing the groups", async () => {
    await env.kube.create(
      JOBGRAPHS,
      jobGraph("grouped", {
        jobs: { tag: { type: "Echo", properties: { add: "$extra" } } },
        graph: { tag: { next: [] } },
        parameters: { small: { tag: { extra: { size: "s" } } }, large: { tag: { extra: { size: "l" } } } },
      }),
    );
    await env.kube.create(JOBTASKS, jobTask("grouped-none", { graph: "grouped", input: {} }));
    const failed = await waitFor<Obj>(env.kube, JOBTASKS, ns, "grouped-none", (t) => t.status?.phase === "Failed", 90_000);
    expect(failed.status!.error.message).toMatch(/small/);
    expect(failed.status!.error.message).toMatch(/large/);
    expect(condition(failed, "Failed")).toMatchObject({ status: "True" });
    await env.kube.create(JOBTASKS, jobTask("grouped-large", { graph: "grouped", group: "large", input: { k: 1 } }));
    const ok = await waitFor<Obj>(env.kube, JOBTASKS, ns, "grouped-large", (t) => t.status?.phase === "Succeeded", 90_000);
    expect(ok.status!.result).toEqual({ k: 1, size: "l" });
  }, 150_000);

  it("refuses a change of a JobTask's spec, and deletes a finished JobTask after its TTL", async () => {
    await env.kube.create(JOBTASKS, jobTask("short-lived", { graph: "echo", input: { t: 1 }, ttlSecondsAfterFinished: 1 }));
    await expect(env.kube.mergePatch(JOBTASKS, ns, "short-lived", { spec: { input: { t: 2 } } })).rejects.toThrow(/immutable/);
    await until(async () => (await env.kube.get(JOBTASKS, ns, "short-lived")) === undefined, 60_000, "JobTask deleted after its TTL");
  }, 90_000);

  it("reaches the same graph from jobchain submit by its alias, creating no resources", async () => {
    const before = (await env.kube.list(JOBTASKS, { namespace: ns })).items.length;
    const r = await cli(["submit", "--graph", "default_echo", "--input", '{"id":"direct-1","via":"nats"}', "--nats", env.nats.url]);
    expect(r.code, r.stderr).toBe(0);
    const line = JSON.parse(r.stdout.trim().split("\n")[0]!);
    expect(line).toMatchObject({ id: "direct-1", status: "succeeded", result: { id: "direct-1", via: "nats", second: 2 } });
    expect((await env.kube.list(JOBTASKS, { namespace: ns })).items.length).toBeLessThanOrEqual(before);
  }, 60_000);

  it("scales a pool to zero when idle and back up when a task arrives", async () => {
    await env.kube.create(
      JOBGRAPHS,
      jobGraph("zero", { ...ECHO_GRAPH, pools: [{ name: "main", replicas: { min: 0, max: 2 }, scaleDownDelaySeconds: 2 }] }),
    );
    await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "zero", (g) => g.status?.pools?.[0]?.desiredReplicas === 0 && condition(g, "Ready")?.status === "True", 90_000);
    await env.kube.create(JOBTASKS, jobTask("zero-1", { graph: "zero", input: { z: 1 } }));
    const jt = await waitFor<Obj>(env.kube, JOBTASKS, ns, "zero-1", (t) => t.status?.phase === "Succeeded", 90_000);
    expect(jt.status!.result).toEqual({ z: 1, second: 2 });
    await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "zero", (g) => g.status?.pools?.[0]?.desiredReplicas === 0, 60_000);
    await until(async () => {
      const events = await env.kube.list<Obj & { reason?: string }>(CORE.events, { namespace: ns, fieldSelector: "involvedObject.name=zero" });
      const reasons = events.items.map((e) => e.reason);
      return reasons.includes("ScaledUp") && reasons.includes("ScaledDown");
    }, 30_000, "ScaledUp and ScaledDown events");
  }, 200_000);

  it("finishes tasks accepted before a spec change on their version, new ones on the new version, then removes the old one", async () => {
    const spec = (tag: string) => ({
      image: "jobchain-test:1",
      jobs: { slow: { type: "Count", properties: { ms: 1500, tag } }, after: { type: "Count", properties: { tag } } },
      graph: { slow: { next: ["after"] }, after: { next: [] } },
    });
    await env.kube.create(JOBGRAPHS, jobGraph("versions", spec("v1")));
    const v1 = await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "versions", (g) => condition(g, "Ready")?.status === "True", 90_000);
    const names = Array.from({ length: 6 }, (_, i) => `old-${i}`);
    for (const n of names) await env.kube.create(JOBTASKS, jobTask(n, { graph: "versions", input: { n } }));
    await until(async () => {
      const all = await Promise.all(names.map((n) => env.kube.get<Obj>(JOBTASKS, ns, n)));
      return all.every((t) => t?.status?.submitted);
    }, 60_000, "old tasks submitted");
    await env.kube.mergePatch(JOBGRAPHS, ns, "versions", { spec: spec("v2") });
    const v2 = await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "versions", (g) => g.status?.version !== v1.status!.version && condition(g, "Ready")?.status === "True", 90_000);
    await env.kube.create(JOBTASKS, jobTask("new-0", { graph: "versions", input: { n: "new-0" } }));
    for (const n of names) {
      const t = await waitFor<Obj>(env.kube, JOBTASKS, ns, n, (x) => x.status?.phase === "Succeeded", 90_000);
      expect(t.status!.result).toEqual({ n, after: "v1" });
      expect(t.status!.instance).toBe(v1.status!.instances[0]);
    }
    const t = await waitFor<Obj>(env.kube, JOBTASKS, ns, "new-0", (x) => x.status?.phase === "Succeeded", 90_000);
    expect(t.status!.result).toEqual({ n: "new-0", after: "v2" });
    expect(t.status!.instance).toBe(v2.status!.instances[0]);
    // Each job of each task ran once.
    const ex = env.executions();
    for (const n of [...names, "new-0"]) {
      const uid = (await env.kube.get<Obj>(JOBTASKS, ns, n))!.metadata.uid!;
      expect(ex.get(`${uid}|slow`)).toBe(1);
      expect(ex.get(`${uid}|after`)).toBe(1);
    }
    await until(async () => {
      const deps = await env.kube.list<Obj>(APPS.deployments, { namespace: ns, labelSelector: `${LABELS.graph}=versions` });
      return deps.items.length === 1 && deps.items[0]!.metadata.labels!["jobchain.dev/version"] === v2.status!.version;
    }, 90_000, "old version's Deployment removed");
  }, 300_000);

  it("runs the example pipeline from `jobchain manifest` with the results of `jobchain run`", async () => {
    const m = await cli(["manifest", "examples/pipeline", "--graph", "text_report", "--name", "pipeline", "--image", "jobchain-test:1"]);
    expect(m.code, m.stderr).toBe(0);
    await env.kube.create(JOBGRAPHS, YAML.parse(m.stdout));
    await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "pipeline", (g) => condition(g, "Ready")?.status === "True", 90_000);
    const task = JSON.parse(readFileSync(path.join(REPO, "examples/pipeline/tasks.jsonl"), "utf8").split("\n")[0]!);
    const local = await cli(["run", "examples/pipeline", "--graph", "text_report/brief", "--input", JSON.stringify(task)]);
    expect(local.code, local.stderr).toBe(0);
    await env.kube.create(JOBTASKS, jobTask("pipeline-1", { graph: "pipeline", group: "brief", input: task }));
    const jt = await waitFor<Obj>(env.kube, JOBTASKS, ns, "pipeline-1", (t) => t.status?.phase === "Succeeded", 90_000);
    expect(jt.status!.result).toEqual(JSON.parse(local.stdout.trim()).result);
    expect(jt.status!.progress).toBe("4/4");
  }, 150_000);

  it("reports a job type the runner image lacks in Ready", async () => {
    await env.kube.create(
      JOBGRAPHS,
      jobGraph("lacking", { image: "jobchain-test:1", jobs: { a: { type: "NotInImage" } }, graph: { a: { next: [] } } }),
    );
    const jg = await waitFor<Obj>(env.kube, JOBGRAPHS, ns, "lacking", (g) => condition(g, "Ready")?.reason === "RunnerProblem", 60_000);
    expect(condition(jg, "Ready")!.message).toContain("NotInImage");
    expect(condition(jg, "Ready")!.message).toMatch(/\ba\b/);
  }, 90_000);

  it("removes a deleted graph's NATS streams before the resource goes", async () => {
    await env.kube.delete(JOBGRAPHS, ns, "echo");
    await until(async () => (await env.kube.get(JOBGRAPHS, ns, "echo")) === undefined, 30_000, "JobGraph gone");
    const r = await cli(["submit", "--graph", "default_echo", "--input", "{}", "--nats", env.nats.url]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not known/);
  }, 60_000);
});
