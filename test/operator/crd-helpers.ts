// Shared by the CRD suites: the committed CRDs installed on a test control plane, and sample objects.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { API_VERSION, JOBGRAPHS, JOBTASKS, type JobGraphSpec } from "../../operator/api/index.ts";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { kubeHttp, waitFor, type KubeHttp } from "./kube-http.ts";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const NS = "default";
export const GV = `/apis/${JOBGRAPHS.group}/${JOBGRAPHS.version}`;
export const graphsPath = `${GV}/namespaces/${NS}/${JOBGRAPHS.plural}`;
export const tasksPath = `${GV}/namespaces/${NS}/${JOBTASKS.plural}`;

export function validGraphSpec(): JobGraphSpec {
  return {
    jobs: { fetch: { type: "Fetch", properties: { url: "$url" }, retry: { attempts: 3, backoff: { initial: 1, factor: 2 } } }, count: { type: "WordCount", timeout: 5 } },
    graph: { fetch: { next: ["count"] }, count: null },
    parameters: { docs: { fetch: { url: "https://example.org" } } },
    pools: [
      { name: "io", jobs: ["fetch"], replicas: { min: 0, max: 4 }, resources: { requests: { cpu: "250m", memory: 268435456 } } },
      { name: "rest", replicas: { min: 1, max: 2 }, tolerations: [{ key: "k", operator: "Exists", effect: "NoSchedule" }], nodeSelector: { disk: "ssd" } },
    ],
    nats: { url: "nats://nats:4222", secretRef: { name: "nats-creds" } },
  };
}

export function graphObject(name: string, spec: unknown) {
  return { apiVersion: API_VERSION, kind: JOBGRAPHS.kind, metadata: { name }, spec };
}
export function taskObject(name: string, spec: unknown) {
  return { apiVersion: API_VERSION, kind: JOBTASKS.kind, metadata: { name }, spec };
}

/** Reads the committed CRD files (what users install), not freshly generated ones. */
export function committedCrds(): any[] {
  return ["jobgraphs.jobchain.dev.yaml", "jobtasks.jobchain.dev.yaml"].map((f) => YAML.parse(readFileSync(path.join(root, "crds", f), "utf8")));
}

/** Installs the CRDs and waits until both are Established and their endpoints answer. */
export async function installCrds(api: KubeHttp): Promise<void> {
  for (const crd of committedCrds()) {
    const r = await api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
    if (r.status !== 201) throw new Error(`creating CRD ${crd.metadata.name}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  for (const crd of committedCrds()) {
    await waitFor(`${crd.metadata.name} Established`, async () => {
      const r = await api.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
      const conds: { type: string; status: string }[] = r.body?.status?.conditions ?? [];
      return conds.some((c) => c.type === "Established" && c.status === "True") ? true : undefined;
    });
  }
  for (const p of [graphsPath, tasksPath]) await waitFor(`${p} served`, async () => ((await api.get(p)).status === 200 ? true : undefined));
}


/** A fresh control plane with the committed CRDs installed, and a client for it. */
export async function startWithCrds(): Promise<{ cp: ControlPlane; api: KubeHttp; stop: () => Promise<void> }> {
  const cp = await startControlPlane();
  const api = kubeHttp(cp);
  try {
    await installCrds(api);
  } catch (err) {
    api.close();
    await cp.stop();
    throw err;
  }
  return {
    cp,
    api,
    stop: async () => {
      api.close();
      await cp.stop();
    },
  };
}
