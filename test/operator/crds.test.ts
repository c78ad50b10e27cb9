// The generated CRDs (crds/*.yaml) on the real kube-apiserver + etcd of test/harness/controlplane.ts: they install
// and become Established, valid objects are accepted, every admission rule refuses its mistake with its message,
// printer columns and discovery hints appear, and config/rbac/role.yaml grants exactly what it says.
//
// Skipped — with the reason on stderr and as a skip note — where the control plane cannot be built (no Go).
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { IMMUTABLE_SPEC_MESSAGE, LIMITS, parseJobGraphSpec } from "../../operator/api/index.ts";
import { RESTRICTED_USER, type ControlPlane } from "../harness/controlplane.ts";
import { controlPlaneSuiteSkip } from "../harness/controlplane-vitest.ts";
import { GV, NS, graphObject, graphsPath, startWithCrds, taskObject, tasksPath, validGraphSpec } from "./crd-helpers.ts";
import { waitFor, type KubeHttp, type KubeResponse } from "./kube-http.ts";

const skip = controlPlaneSuiteSkip("JobChain CRDs");
import { root } from "./crd-helpers.ts";

/** The message of a refused request (fails when the request was accepted). */
function refusal(r: KubeResponse): string {
  expect(r.status, `expected a refusal, got ${r.status}: ${JSON.stringify(r.body)}`).toBeGreaterThanOrEqual(400);
  return String(r.body?.message ?? JSON.stringify(r.body));
}

function causesOf(r: KubeResponse): { field?: string; message?: string }[] {
  return r.body?.details?.causes ?? [];
}

describe.skipIf(skip)("JobChain CRDs on a real kube-apiserver", () => {
  let cp: ControlPlane;
  let api: KubeHttp;
  let stop = async () => {};

  beforeAll(async () => {
    ({ cp, api, stop } = await startWithCrds());
  });

  afterAll(() => stop());

  it("both CRDs are Established with their names accepted, served and stored as v1alpha1", async () => {
    for (const name of ["jobgraphs.jobchain.dev", "jobtasks.jobchain.dev"]) {
      const r = await api.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const conds = Object.fromEntries((r.body.status.conditions as { type: string; status: string }[]).map((c) => [c.type, c.status]));
      expect(conds).toMatchObject({ Established: "True", NamesAccepted: "True" });
      expect(r.body.status.storedVersions).toEqual(["v1alpha1"]);
    }
  });

  it("discovery lists both kinds with short names, the jobchain category and the status subresource", async () => {
    const r = await api.get(GV);
    expect(r.status).toBe(200);
    const byName = Object.fromEntries((r.body.resources as { name: string }[]).map((x) => [x.name, x]));
    expect(byName.jobgraphs).toMatchObject({ kind: "JobGraph", namespaced: true, shortNames: ["jg"], categories: ["jobchain"], singularName: "jobgraph" });
    expect(byName.jobtasks).toMatchObject({ kind: "JobTask", namespaced: true, shortNames: ["jt"], categories: ["jobchain"], singularName: "jobtask" });
    expect(byName["jobgraphs/status"]).toBeDefined();
    expect(byName["jobtasks/status"]).toBeDefined();
  });

  it("accepts a valid JobGraph and keeps every field (nothing pruned)", async () => {
    const spec = validGraphSpec();
    const r = await api.post(`${graphsPath}?fieldValidation=Strict`, graphObject("valid", spec));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.spec).toEqual(spec);
    expect(r.body.metadata.generation).toBe(1);
  });

  it("accepts a single-job graph whose node is an empty mapping, and tails written as next: []", async () => {
    const r = await api.post(graphsPath, graphObject("tiny", { jobs: { only: { type: "Echo" } }, graph: { only: {} } }));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const r2 = await api.post(graphsPath, graphObject("tails", { jobs: { a: { type: "A" }, b: { type: "B" } }, graph: { a: { next: ["b"] }, b: { next: [] } } }));
    expect(r2.status, JSON.stringify(r2.body)).toBe(201);
  });

  it("accepts a valid JobTask, and its status can be written through /status", async () => {
    const spec = { graph: "valid", group: "docs", input: { url: "https://example.org", nested: { list: [1, "two", null] } }, timeoutSeconds: 30, ttlSecondsAfterFinished: 60 };
    const r = await api.post(`${tasksPath}?fieldValidation=Strict`, taskObject("t1", spec));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.spec).toEqual(spec);
    const status = {
      phase: "Succeeded",
      progress: "2/2",
      nodes: { fetch: { phase: "Succeeded", attempts: 1, startTime: "2026-01-01T00:00:00Z", completionTime: "2026-01-01T00:00:01Z" } },
      result: { words: 3, by: { the: 1 } },
      startTime: "2026-01-01T00:00:00Z",
      completionTime: "2026-01-01T00:00:02Z",
      traceId: "0af7651916cd43dd8448eb211c80319c",
      conditions: [{ type: "Succeeded", status: "True", reason: "Completed", message: "", lastTransitionTime: "2026-01-01T00:00:02Z", observedGeneration: 1 }],
      observedGeneration: 1,
      instance: "valid/docs",
      taskId: "abc",
      submitted: true,
    };
    const s = await api.mergePatch(`${tasksPath}/t1/status?fieldValidation=Strict`, { status });
    expect(s.status, JSON.stringify(s.body)).toBe(200);
    expect(s.body.status).toEqual(status);
  });

  describe("admission rules", () => {
    async function refused(name: string, spec: unknown): Promise<{ message: string; causes: { field?: string; message?: string }[] }> {
      const r = await api.post(`${graphsPath}?fieldValidation=Strict`, graphObject(name, spec));
      return { message: refusal(r), causes: causesOf(r) };
    }

    it("a next naming an unknown job", async () => {
      const spec = validGraphSpec();
      spec.graph = { fetch: { next: ["cuont"] }, count: null };
      const { message, causes } = await refused("bad-next", spec);
      expect(message).toContain("every name in `next` must be a node of spec.graph");
      expect(causes.map((c) => c.field)).toContain("spec.graph");
    });

    it("a graph node that is not a job", async () => {
      const spec = validGraphSpec();
      spec.graph = { ...spec.graph, extra: null };
      const { message } = await refused("bad-node", spec);
      expect(message).toContain("spec.graph: Invalid value: every node of spec.graph must be a job of spec.jobs");
    });

    it("next as a single name (the CRD takes the list form)", async () => {
      const spec = validGraphSpec() as any;
      spec.graph.fetch = { next: "count" };
      const { message, causes } = await refused("string-next", spec);
      expect(causes.map((c) => c.field)).toContain("spec.graph.fetch.next");
      expect(message).toMatch(/must be of type array/);
    });

    it("a pool naming a job that does not exist", async () => {
      const spec = validGraphSpec();
      spec.pools![0]!.jobs = ["fecth"];
      const { message, causes } = await refused("bad-pool-job", spec);
      expect(message).toContain("every job a pool names must be a job of spec.jobs");
      expect(causes.map((c) => c.field)).toContain("spec.pools");
    });

    it("replicas.min above replicas.max", async () => {
      const spec = validGraphSpec();
      spec.pools![1]!.replicas = { min: 5, max: 2 };
      const { message, causes } = await refused("min-max", spec);
      expect(message).toContain("replicas.min must not exceed replicas.max");
      expect(causes.map((c) => c.field)).toContain("spec.pools[1].replicas.min");
    });

    it("two pools with the same name", async () => {
      const spec = validGraphSpec();
      spec.pools![1]!.name = "io";
      delete spec.pools![1]!.tolerations;
      const { message, causes } = await refused("dup-pool", spec);
      expect(message).toMatch(/Duplicate value/);
      expect(causes.map((c) => c.field)).toContain("spec.pools[1]");
    });

    it("two pools naming the same job, and two pools without jobs", async () => {
      const spec = validGraphSpec();
      spec.pools!.push({ name: "io2", jobs: ["fetch"], replicas: { min: 0, max: 1 } });
      expect((await refused("job-twice", spec)).message).toContain("a job may be named by one pool only");
      const spec2 = validGraphSpec();
      spec2.pools!.push({ name: "rest2", replicas: { min: 0, max: 1 } });
      expect((await refused("two-defaults", spec2)).message).toContain("at most one pool may omit `jobs`");
    });

    it("parameters for a job outside the graph, and a parameter value that is not a mapping", async () => {
      const spec = validGraphSpec();
      spec.parameters = { docs: { nope: { a: 1 } } };
      expect((await refused("param-job", spec)).message).toContain("every job named in spec.parameters must be a node of spec.graph");
      const spec2 = validGraphSpec() as any;
      spec2.parameters = { docs: { fetch: 5 } };
      expect((await refused("param-value", spec2)).message).toContain("spec.parameters.docs.fetch in body must be of type object");
      // Files may give a list of one mapping; the CRD takes the mapping (what `jobchain manifest` writes).
      spec2.parameters = { docs: { fetch: [{ url: "a" }] } };
      expect((await refused("param-list", spec2)).message).toContain("spec.parameters.docs.fetch in body must be of type object");
    });

    it("bad job names, a bad quantity, an unknown field (and a bad backoff, which the operator reports)", async () => {
      const spec = validGraphSpec() as any;
      spec.jobs["bad name"] = { type: "X" };
      expect((await refused("job-name", spec)).message).toMatch(/every job name must be at most 63 letters/);
      // A backoff is a number or an object, which has no structural type: admission takes any value, and the
      // operator's parse reports it (in the Valid condition).
      const spec2 = validGraphSpec() as any;
      spec2.jobs.fetch.retry.backoff = "soon";
      const stored = await api.post(`${graphsPath}?dryRun=All`, graphObject("backoff", spec2));
      expect(stored.status).toBe(201);
      const parsed = parseJobGraphSpec(stored.body.spec);
      expect(parsed.ok ? [] : parsed.problems).toEqual([expect.stringMatching(/^spec\.jobs\.fetch\.retry\.backoff: /)]);
      const spec3 = validGraphSpec() as any;
      spec3.pools[0].resources.limits = { cpu: "lots" };
      const q = await refused("quantity", spec3);
      expect(q.causes.map((c) => c.field)).toContain("spec.pools[0].resources.limits.cpu");
      const spec4 = validGraphSpec() as any;
      spec4.jobs.count.colour = "red";
      expect((await refused("unknown-field", spec4)).message).toMatch(/unknown field "spec\.jobs\.count\.colour"/);
    });

    it("a JobGraph name that cannot be a label value or a Deployment name prefix", async () => {
      const { message } = await refused("a.b", validGraphSpec());
      expect(message).toMatch(/a JobGraph name must be at most 63 lowercase letters/);
    });

    it("a JobTask spec cannot change after creation; its status and labels can", async () => {
      const created = await api.post(tasksPath, taskObject("immutable", { graph: "valid", input: { n: 1 } }));
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const changed = await api.mergePatch(`${tasksPath}/immutable`, { spec: { input: { n: 2 } } });
      expect(refusal(changed)).toContain(IMMUTABLE_SPEC_MESSAGE);
      const added = await api.mergePatch(`${tasksPath}/immutable`, { spec: { timeoutSeconds: 5 } });
      expect(refusal(added)).toContain(IMMUTABLE_SPEC_MESSAGE);
      const status = await api.mergePatch(`${tasksPath}/immutable/status`, { status: { phase: "Running", progress: "0/2" } });
      expect(status.status, JSON.stringify(status.body)).toBe(200);
      const labels = await api.mergePatch(`${tasksPath}/immutable`, { metadata: { labels: { team: "a" } } });
      expect(labels.status, JSON.stringify(labels.body)).toBe(200);
      const unchanged = await api.mergePatch(`${tasksPath}/immutable`, { spec: { input: { n: 1 } } });
      expect(unchanged.status).toBe(200);
    });

    it("a JobTask with a bad graph name, a non-object input, a bad timeout", async () => {
      const r = await api.post(tasksPath, taskObject("bad-task", { graph: "Not_A_Graph", input: [1], timeoutSeconds: 0 }));
      refusal(r);
      const fields = causesOf(r).map((c) => c.field);
      expect(fields).toEqual(expect.arrayContaining(["spec.graph", "spec.input", "spec.timeoutSeconds"]));
    });

    it("JobGraph spec changes are allowed (a new generation)", async () => {
      const spec = validGraphSpec();
      const r = await api.mergePatch(`${graphsPath}/valid`, { spec: { pools: [{ ...spec.pools![0]!, replicas: { min: 1, max: 8 } }] } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.metadata.generation).toBe(2);
    });
  });

  it("the rules stay within the CEL cost budget at the size limits", async () => {
    // The largest spec the schema admits for the quadratic rules: every job in the graph, each with a full next.
    const names = Array.from({ length: LIMITS.jobs }, (_, i) => `j${i}`);
    const jobs = Object.fromEntries(names.map((n) => [n, { type: "Echo" }]));
    const graph = Object.fromEntries(names.map((n, i) => [n, { next: names.slice(i + 1, i + 1 + LIMITS.next) }]));
    const pools = Array.from({ length: LIMITS.pools }, (_, p) => ({
      name: `p${p}`,
      jobs: names.filter((_, i) => i % LIMITS.pools === p),
      replicas: { min: 0, max: 1 },
    }));
    const r = await api.post(`${graphsPath}?dryRun=All`, graphObject("big", { jobs, graph, pools }));
    expect(r.status, JSON.stringify(r.body).slice(0, 2000)).toBe(201);
  });

  it("printer columns: JobGraph Ready, Pools, Backlog, Age; JobTask Graph, Phase, Progress, Age, Completed", async () => {
    const st = await api.mergePatch(`${graphsPath}/valid/status`, {
      status: {
        conditions: [{ type: "Ready", status: "True", reason: "PoolsReady", message: "", lastTransitionTime: "2026-01-01T00:00:00Z" }],
        poolsReady: "3/4",
        backlog: 17,
      },
    });
    expect(st.status, JSON.stringify(st.body)).toBe(200);
    const table = (p: string) => api.get(p, { accept: "application/json;as=Table;v=v1;g=meta.k8s.io" });

    const g = await table(`${graphsPath}/valid`);
    expect(g.body.kind).toBe("Table");
    const gCols = (g.body.columnDefinitions as { name: string }[]).map((c) => c.name);
    expect(gCols).toEqual(["Name", "Ready", "Valid", "Pools", "Backlog", "Version", "Age"]);
    const gRow = g.body.rows[0].cells as unknown[];
    expect(gRow.slice(0, 5)).toEqual(["valid", "True", null, "3/4", 17]);

    const t = await table(`${tasksPath}/t1`);
    const tCols = (t.body.columnDefinitions as { name: string }[]).map((c) => c.name);
    expect(tCols).toEqual(["Name", "Graph", "Group", "Phase", "Progress", "Age", "Completed"]);
    const tRow = t.body.rows[0].cells as unknown[];
    expect(tRow.slice(0, 5)).toEqual(["t1", "valid", "docs", "Succeeded", "2/2"]);
    expect(typeof tRow[6]).toBe("string"); // Completed renders as a relative time
  });

  it("config/rbac/role.yaml allows what the operator does and nothing more", async () => {
    const docs = YAML.parseAllDocuments(readFileSync(path.join(root, "config/rbac/role.yaml"), "utf8")).map((d) => d.toJSON());
    const clusterRole = docs.find((d) => d.kind === "ClusterRole");
    const role = docs.find((d) => d.kind === "Role");
    const opNs = "jobchain-system";
    const rbac = "/apis/rbac.authorization.k8s.io/v1";
    const created = [
      await api.post("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: opNs } }),
      await api.post(`${rbac}/clusterroles`, clusterRole),
      await api.post(`${rbac}/namespaces/${opNs}/roles`, role),
      await api.post(`${rbac}/clusterrolebindings`, {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: "jobchain-operator" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole.metadata.name },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: RESTRICTED_USER }],
      }),
      await api.post(`${rbac}/namespaces/${opNs}/rolebindings`, {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "jobchain-operator-leader-election" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: RESTRICTED_USER }],
      }),
    ];
    for (const c of created) expect(c.status, JSON.stringify(c.body)).toBe(201);

    type Check = [verb: string, group: string, resource: string, subresource: string, namespace: string];
    const allowed: Check[] = [
      ...["get", "list", "watch", "update", "patch"].map((v): Check => [v, "jobchain.dev", "jobgraphs", "", NS]),
      ...["get", "list", "watch", "update", "patch", "delete"].map((v): Check => [v, "jobchain.dev", "jobtasks", "", NS]),
      ["patch", "jobchain.dev", "jobgraphs", "status", NS],
      ["update", "jobchain.dev", "jobtasks", "status", NS],
      ["update", "jobchain.dev", "jobgraphs", "finalizers", NS],
      ...["get", "list", "watch", "create", "update", "patch", "delete"].map((v): Check => [v, "apps", "deployments", "", NS]),
      ...["get", "list", "watch", "create", "update", "patch", "delete"].map((v): Check => [v, "", "configmaps", "", NS]),
      ["get", "", "secrets", "", NS],
      ["create", "", "events", "", NS],
      ["patch", "events.k8s.io", "events", "", NS],
      ...["get", "create", "update"].map((v): Check => [v, "coordination.k8s.io", "leases", "", opNs]),
    ];
    const denied: Check[] = [
      ["create", "jobchain.dev", "jobgraphs", "", NS],
      ["delete", "jobchain.dev", "jobgraphs", "", NS],
      ["create", "jobchain.dev", "jobtasks", "", NS],
      ["list", "", "secrets", "", NS],
      ["watch", "", "secrets", "", NS],
      ["create", "", "secrets", "", NS],
      ["list", "", "pods", "", NS],
      ["create", "", "pods", "", NS],
      ["get", "coordination.k8s.io", "leases", "", NS],
      ["delete", "coordination.k8s.io", "leases", "", opNs],
      ["create", "apiextensions.k8s.io", "customresourcedefinitions", "", ""],
      ["create", "rbac.authorization.k8s.io", "rolebindings", "", NS],
      ["update", "jobchain.dev", "jobtasks", "finalizers", NS],
      ["create", "", "serviceaccounts", "", NS],
    ];
    async function can([verb, group, resource, subresource, namespace]: Check): Promise<boolean> {
      const r = await api.post(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        { apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview", spec: { resourceAttributes: { verb, group, resource, subresource, namespace } } },
        { token: cp.restrictedToken },
      );
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.status.allowed === true;
    }
    // The authorizer sees new bindings through its informers: wait until both bindings are in effect.
    await waitFor("the ClusterRoleBinding in effect", async () => ((await can(["list", "jobchain.dev", "jobgraphs", "", NS])) ? true : undefined));
    await waitFor("the RoleBinding in effect", async () => ((await can(["get", "coordination.k8s.io", "leases", "", opNs])) ? true : undefined));
    const wrong: string[] = [];
    for (const c of allowed) if (!(await can(c))) wrong.push(`denied but needed: ${c.join(" ")}`);
    for (const c of denied) if (await can(c)) wrong.push(`allowed but not needed: ${c.join(" ")}`);
    expect(wrong).toEqual([]);

    // And through the real endpoints: the operator's status write works, a spec create does not.
    const patched = await api.mergePatch(`${graphsPath}/valid/status`, { status: { backlog: 3 } }, { token: cp.restrictedToken });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    const create = await api.post(graphsPath, graphObject("by-operator", validGraphSpec()), { token: cp.restrictedToken });
    expect(create.status).toBe(403);
  });
});
