// The operator's security promises against the real control plane: it runs with exactly the least-privilege
// role of config/rbac/role.yaml (not as admin) and does its whole job; the runner pod template passes the
// PodSecurity `restricted` profile (a server-side dry run of a Pod built from it in a namespace that enforces
// it, while a privileged Pod is refused there); NATS credentials travel only as Secret references.
import { readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { controlPlaneSuiteSkip } from "../harness/controlplane-vitest.ts";
import { RESTRICTED_USER } from "../harness/controlplane.ts";
import { APPS, CORE, type KubeObject, type ResourceType } from "../../operator/kube/index.ts";
import { JOBGRAPHS, JOBTASKS } from "../../operator/api/index.ts";
import { REPO } from "../helpers/cli.ts";
import { until } from "../helpers/until.ts";
import { condition, jobGraph, jobTask, startOperatorEnv, waitFor, type OperatorEnv } from "./env.ts";

const skip = controlPlaneSuiteSkip("operator security");
type Obj = KubeObject & { spec?: any; status?: any };
const rbac = (plural: string, namespaced = true): ResourceType => ({ group: "rbac.authorization.k8s.io", version: "v1", plural, kind: "", namespaced });

describe.skipIf(skip)("operator security", () => {
  let env: OperatorEnv;

  beforeAll(async () => {
    env = await startOperatorEnv();
    const [clusterRole, role] = YAML.parseAllDocuments(readFileSync(path.join(REPO, "config/rbac/role.yaml"), "utf8")).map((d) => d.toJSON());
    await env.kube.create(rbac("clusterroles", false), clusterRole);
    await env.kube.create(rbac("roles"), { ...role, metadata: { ...role.metadata, namespace: "default" } });
    const subjects = [{ kind: "User", name: RESTRICTED_USER, apiGroup: "rbac.authorization.k8s.io" }];
    await env.kube.create(rbac("clusterrolebindings", false), {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "jobchain-operator" },
      subjects,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole.metadata.name },
    } as KubeObject);
    await env.kube.create(rbac("rolebindings"), {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "jobchain-operator-leader-election", namespace: "default" },
      subjects,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
    } as KubeObject);
    // With leader election (the Lease is the Role's part) and a graph that names a NATS Secret.
    await env.startOperator({ kubeconfig: env.cp.restrictedKubeconfig, leaderElect: true, leaseNamespace: "default", natsSecret: "nats-creds" });
    await env.operator!.leading();
  }, 180_000);
  afterAll(async () => env?.stop(), 60_000);

  it("does its whole job with exactly the role in config/rbac/role.yaml", async () => {
    await env.kube.create(CORE.secrets, { apiVersion: "v1", kind: "Secret", metadata: { name: "nats-creds", namespace: "default" }, stringData: {} } as KubeObject);
    await env.kube.create(JOBGRAPHS, jobGraph("rbac", {
      jobs: { a: { type: "Echo", properties: { add: { ok: true } } } },
      graph: { a: { next: [] } },
      nats: { url: env.nats.url, secretRef: { name: "nats-creds" } },
    }));
    await waitFor<Obj>(env.kube, JOBGRAPHS, "default", "rbac", (g) => condition(g, "Ready")?.status === "True", 90_000);
    await env.kube.create(JOBTASKS, jobTask("rbac-1", { graph: "rbac", input: { x: 1 }, ttlSecondsAfterFinished: 1 }));
    const t = await waitFor<Obj>(env.kube, JOBTASKS, "default", "rbac-1", (x) => x.status?.phase === "Succeeded");
    expect(t.status.result).toEqual({ x: 1, ok: true });
    // TTL (delete) and events work under the role too.
    await until(async () => (await env.kube.get(JOBTASKS, "default", "rbac-1")) === undefined, 30_000, "JobTask deleted after its TTL");
    const events = await env.kube.list<Obj>(CORE.events, { namespace: "default", fieldSelector: "involvedObject.name=rbac" });
    expect(events.items.map((e) => (e as any).reason)).toContain("PoolCreated");
    // The Secret is referenced, never copied: the Deployment names it, no ConfigMap or status holds its data.
    const deps = await env.kube.list<Obj>(APPS.deployments, { namespace: "default", labelSelector: "jobchain.dev/graph=rbac" });
    const envVars = deps.items[0]!.spec.template.spec.containers[0].env as { name: string; value?: string; valueFrom?: any }[];
    expect(envVars.filter((e) => e.valueFrom?.secretKeyRef).map((e) => e.valueFrom.secretKeyRef.name)).toEqual(["nats-creds", "nats-creds", "nats-creds"]);
    expect(envVars.every((e) => !/TOKEN|PASSWORD|USER/.test(e.name) || e.value === undefined)).toBe(true);
  }, 150_000);

  it("gives runners of graphs that name no NATS the operator's --nats-secret, by reference", async () => {
    await env.kube.create(JOBGRAPHS, jobGraph("default-nats", { jobs: { a: { type: "Echo" } }, graph: { a: { next: [] } } }));
    let deps: Obj[] = [];
    await until(async () => {
      deps = (await env.kube.list<Obj>(APPS.deployments, { namespace: "default", labelSelector: "jobchain.dev/graph=default-nats" })).items;
      return deps.length > 0;
    }, 60_000, "the graph's Deployment");
    const envVars = deps[0]!.spec.template.spec.containers[0].env as { name: string; valueFrom?: any }[];
    expect(envVars.filter((e) => e.valueFrom?.secretKeyRef).map((e) => [e.name, e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.optional])).toEqual([
      ["JOBCHAIN_NATS_TOKEN", "nats-creds", true],
      ["JOBCHAIN_NATS_USER", "nats-creds", true],
      ["JOBCHAIN_NATS_PASSWORD", "nats-creds", true],
    ]);
  }, 90_000);

  it("builds runner pods that pass the PodSecurity restricted profile", async () => {
    await env.kube.create(CORE.namespaces, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "restricted", labels: { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest" } },
    } as KubeObject);
    const deps = await env.kube.list<Obj>(APPS.deployments, { namespace: "default", labelSelector: "app.kubernetes.io/managed-by=jobchain" });
    expect(deps.items.length).toBeGreaterThan(0);
    const template = deps.items[0]!.spec.template;
    const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "runner-check", namespace: "restricted", labels: template.metadata.labels }, spec: template.spec } as KubeObject;
    await expect(env.kube.create(CORE.pods, pod, { dryRun: true })).resolves.toBeDefined();
    const privileged = structuredClone(pod) as any;
    privileged.spec.containers[0].securityContext = { privileged: true };
    await expect(env.kube.create(CORE.pods, privileged, { dryRun: true })).rejects.toThrow(/violates PodSecurity "restricted/);
  }, 60_000);
});
