// The Helm chart charts/jobchain with helm 4 (scripts/helm/build.sh): it lints strictly, renders, its schema and
// its checks refuse bad values with clear messages, its copies of the CRDs and RBAC rules are the repository's,
// the operator Deployment has what the product needs, and every manifest it renders (default and production
// values, CRDs included) is accepted by a real kube-apiserver in a server-side dry run.
//
// Skipped — with the reason on stderr and as a skip note — where helm or the control plane cannot be built (no Go).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { generatedFiles } from "../../operator/api/generate.ts";
import { CHART_DIR, RBAC_SOURCE, chartFiles } from "../../scripts/chart-files.ts";
import { controlPlaneSuiteSkip } from "../harness/controlplane-vitest.ts";
import { helm, helmBinary, HelmError } from "../harness/helm.ts";
import { findNatsServer } from "../harness/nats.ts";
import { installCrds, root } from "../operator/crd-helpers.ts";
import { kubeHttp, type KubeHttp } from "../operator/kube-http.ts";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";

const CHART = path.join(root, CHART_DIR);
const PRODUCTION = path.join(CHART, "ci/production-values.yaml");
const RELEASE_NS = "jobchain-system";

const bin = helmBinary();
const helmSkip = bin.available ? undefined : bin.reason;
if (helmSkip) {
  console.warn(`SKIPPED Helm chart: ${helmSkip}`);
  it("Helm chart (needs helm)", (ctx) => ctx.skip(helmSkip));
}

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: any };

async function template(args: string[] = []): Promise<Manifest[]> {
  const { stdout } = await helm(["template", "rel", CHART, "--namespace", RELEASE_NS, ...args]);
  return YAML.parseAllDocuments(stdout)
    .map((d) => d.toJSON() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

/** The error helm printed for a command that must fail. */
async function failure(args: string[]): Promise<string> {
  const err = await helm(args).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `helm ${args.join(" ")} succeeded`).toBeInstanceOf(HelmError);
  return (err as HelmError).stderr;
}

function find(ms: Manifest[], kind: string, suffix = ""): Manifest {
  const m = ms.find((x) => x.kind === kind && x.metadata.name.endsWith(suffix));
  if (!m) throw new Error(`no ${kind} *${suffix} among ${ms.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")}`);
  return m;
}

// Needs no helm: a stale copy fails wherever the tests run.
it("its CRDs and RBAC rules are byte-identical to crds/*.yaml and config/rbac/role.yaml (`make crds`)", () => {
  const copies = chartFiles(generatedFiles(), root);
  expect(copies.map((f) => f.path).sort()).toEqual([`${CHART_DIR}/crds/jobgraphs.jobchain.dev.yaml`, `${CHART_DIR}/crds/jobtasks.jobchain.dev.yaml`, `${CHART_DIR}/files/rbac.yaml`]);
  for (const f of copies) expect(readFileSync(path.join(root, f.path), "utf8"), `${f.path} is stale: run \`make crds\``).toBe(f.text);
  for (const name of ["jobgraphs.jobchain.dev.yaml", "jobtasks.jobchain.dev.yaml"]) {
    expect(readFileSync(path.join(CHART, "crds", name), "utf8")).toBe(readFileSync(path.join(root, "crds", name), "utf8"));
  }
});

describe.skipIf(helmSkip)("Helm chart charts/jobchain", () => {
  it("passes helm lint --strict with the default values and with the production values", async () => {
    await helm(["lint", "--strict", CHART]);
    await helm(["lint", "--strict", CHART, "-f", PRODUCTION]);
  });

  it("renders the ClusterRole and the leader-election Role with exactly the rules of config/rbac/role.yaml", async () => {
    const source = YAML.parseAllDocuments(readFileSync(path.join(root, RBAC_SOURCE), "utf8")).map((d) => d.toJSON() as Manifest);
    const ms = await template();
    const clusterRole = find(ms, "ClusterRole");
    const role = find(ms, "Role");
    expect(clusterRole.rules).toEqual(source.find((m) => m.kind === "ClusterRole")!.rules);
    expect(role.rules).toEqual(source.find((m) => m.kind === "Role")!.rules);
    expect(role.metadata.namespace).toBe(RELEASE_NS);
    // Prefixed with the release's full name, so that two releases do not collide.
    for (const m of ms) expect(m.metadata.name.startsWith("rel-jobchain"), `${m.kind}/${m.metadata.name}`).toBe(true);
    const binding = find(ms, "ClusterRoleBinding");
    expect(binding.roleRef.name).toBe(clusterRole.metadata.name);
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: find(ms, "ServiceAccount").metadata.name, namespace: RELEASE_NS }]);
  });

  it("the operator Deployment: 2 replicas, leader election, restricted security context, probes, resources", async () => {
    const ms = await template();
    const dep = find(ms, "Deployment", "-operator");
    expect(dep.spec.replicas).toBe(2);
    const pod = dep.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } });
    const c = pod.containers[0];
    expect(c.command).toEqual(["jobchain"]);
    const args: string[] = c.args;
    expect(args[0]).toBe("operator");
    expect(args).toContain("--leader-elect");
    expect(args[args.indexOf("--lease-name") + 1]).toBe("rel-jobchain-operator");
    expect(args[args.indexOf("--lease-namespace") + 1]).toBe(RELEASE_NS);
    expect(args[args.indexOf("--metrics-port") + 1]).toBe("9090");
    expect(args[args.indexOf("--nats") + 1]).toBe(`nats://rel-jobchain-nats.${RELEASE_NS}.svc.cluster.local:4222`);
    expect(args[args.indexOf("--runner-image") + 1]).toBe("jobchain.local/jobchain:0.1.0");
    expect(args).not.toContain("--nats-secret");
    expect(c.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(c.volumeMounts).toContainEqual({ name: "tmp", mountPath: "/tmp" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "metrics" });
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "metrics" });
    expect(c.resources.requests).toMatchObject({ cpu: expect.anything(), memory: expect.anything() });
    expect(c.resources.limits).toMatchObject({ memory: expect.anything() });
    expect(find(ms, "ServiceAccount").automountServiceAccountToken).toBe(true);
    expect(find(ms, "Service", "-metrics").spec.ports).toEqual([{ name: "metrics", port: 9090, targetPort: "metrics", protocol: "TCP" }]);
  });

  it("production values: 3 NATS servers clustered by headless DNS, credentials from the Secret, allowed images, namespaces", async () => {
    const ms = await template(["-f", PRODUCTION]);
    const c = find(ms, "Deployment", "-operator").spec.template.spec.containers[0];
    const args: string[] = c.args;
    expect(args[args.indexOf("--nats-secret") + 1]).toBe("jobchain-nats");
    expect(args[args.indexOf("--allowed-images") + 1]).toBe("registry.example.com/jobchain/,registry.example.com/pipelines/");
    expect(args.filter((_, i) => args[i - 1] === "--namespace")).toEqual(["pipelines", "scraping"]);
    expect(c.image).toBe("registry.example.com/jobchain/jobchain:0.1.0");
    for (const [key, name] of [["token", "JOBCHAIN_NATS_TOKEN"], ["user", "JOBCHAIN_NATS_USER"], ["password", "JOBCHAIN_NATS_PASSWORD"]]) {
      expect(c.env).toContainEqual({ name, valueFrom: { secretKeyRef: { name: "jobchain-nats", key, optional: true } } });
    }
    const sts = find(ms, "StatefulSet", "-nats");
    expect(sts.spec).toMatchObject({ replicas: 3, podManagementPolicy: "Parallel", serviceName: "rel-jobchain-nats-headless" });
    expect(sts.spec.volumeClaimTemplates[0].spec).toMatchObject({ storageClassName: "fast-ssd", resources: { requests: { storage: "20Gi" } } });
    const conf: string = find(ms, "ConfigMap", "-nats-config").data["nats.conf"];
    for (let i = 0; i < 3; i++) expect(conf).toContain(`nats://rel-jobchain-nats-${i}.rel-jobchain-nats-headless.${RELEASE_NS}.svc.cluster.local:6222`);
    expect(conf).toContain("server_name: $POD_NAME");
    expect(conf).toContain("token: $NATS_TOKEN");
    const nats = sts.spec.template.spec.containers[0];
    expect(nats.readinessProbe.httpGet.path).toBe("/healthz?js-enabled-only=true");
    expect(nats.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(sts.spec.template.spec.securityContext).toMatchObject({ runAsUser: 1000, fsGroup: 1000 });
  });

  it("nats-server accepts the rendered configuration, single and clustered", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "jobchain-chart-"));
    try {
      for (const args of [[], ["-f", PRODUCTION]]) {
        const conf: string = find(await template(args), "ConfigMap", "-nats-config").data["nats.conf"];
        const file = path.join(dir, "nats.conf");
        writeFileSync(file, conf);
        const r = spawnSync(findNatsServer(), ["-t", "-c", file], { env: { ...process.env, POD_NAME: "rel-jobchain-nats-0", NATS_TOKEN: "t" }, encoding: "utf8" });
        expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
        expect(`${r.stdout}${r.stderr}`).toMatch(/is valid/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the schema refuses an unknown key and a wrong type, naming them", async () => {
    const unknown = await failure(["template", "rel", CHART, "--set", "operator.replica=3"]);
    expect(unknown).toMatch(/values don't meet the specifications of the schema/);
    expect(unknown).toMatch(/operator/);
    expect(unknown).toMatch(/replica/);
    const wrongType = await failure(["template", "rel", CHART, "--set-string", "operator.replicas=two"]);
    expect(wrongType).toMatch(/replicas/);
    expect(wrongType).toMatch(/integer/);
    const replicas = await failure(["template", "rel", CHART, "--set", "nats.install.replicas=2"]);
    expect(replicas).toMatch(/replicas/);
  });

  it("without the in-chart NATS, nats.url is required, with a message saying so", async () => {
    const msg = await failure(["template", "rel", CHART, "--set", "nats.install.enabled=false"]);
    expect(msg).toContain("nats.url is required when nats.install.enabled is false");
    const ms = await template(["--set", "nats.install.enabled=false", "--set", "nats.url=nats://nats.nats:4222"]);
    expect(ms.some((m) => m.kind === "StatefulSet")).toBe(false);
    const args: string[] = find(ms, "Deployment").spec.template.spec.containers[0].args;
    expect(args[args.indexOf("--nats") + 1]).toBe("nats://nats.nats:4222");
  });
});

// ---- the apiserver's word on every rendered manifest ---------------------------------------------------------

const cpSkip = helmSkip ?? controlPlaneSuiteSkip("Helm chart on a real kube-apiserver");

const CLUSTER_SCOPED = new Set(["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace"]);

/** The REST path of an object (plural = lower-cased kind + "s", true of every kind the chart renders). */
function objectPath(m: Manifest): string {
  const base = m.apiVersion.includes("/") ? `/apis/${m.apiVersion}` : `/api/${m.apiVersion}`;
  const ns = CLUSTER_SCOPED.has(m.kind) ? "" : `/namespaces/${m.metadata.namespace ?? RELEASE_NS}`;
  return `${base}${ns}/${m.kind.toLowerCase()}s/${m.metadata.name}`;
}

describe.skipIf(cpSkip)("Helm chart on a real kube-apiserver", () => {
  let cp: ControlPlane;
  let api: KubeHttp;

  beforeAll(async () => {
    cp = await startControlPlane();
    api = kubeHttp(cp);
    await installCrds(api);
    const r = await api.post("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: RELEASE_NS } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  });

  afterAll(async () => {
    api?.close();
    await cp?.stop();
  });

  for (const [label, args] of [
    ["default values", []],
    ["production values", ["-f", PRODUCTION]],
  ] as const) {
    it(`accepts every manifest rendered with the ${label} (--include-crds), server-side apply, dry run`, async () => {
      const ms = await template(["--include-crds", ...args]);
      expect(ms.filter((m) => m.kind === "CustomResourceDefinition")).toHaveLength(2);
      expect(ms.length).toBeGreaterThan(10);
      const refused: string[] = [];
      for (const m of ms) {
        const r = await api.request("PATCH", `${objectPath(m)}?dryRun=All&fieldManager=helm&fieldValidation=Strict&force=true`, m, {
          contentType: "application/apply-patch+yaml",
        });
        if (r.status >= 300) refused.push(`${m.kind}/${m.metadata.name}: ${r.status} ${r.body?.message ?? JSON.stringify(r.body)}`);
      }
      expect(refused).toEqual([]);
    });
  }

  it("the dry run is a real check: a Deployment with an unknown field is refused", async () => {
    const dep = find(await template(), "Deployment", "-operator");
    dep.spec.template.spec.containers[0].readOnlyRootFilesytem = true;
    const r = await api.request("PATCH", `${objectPath(dep)}?dryRun=All&fieldManager=helm&fieldValidation=Strict&force=true`, dep, {
      contentType: "application/apply-patch+yaml",
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(String(r.body?.message)).toContain("readOnlyRootFilesytem");
  });
});
