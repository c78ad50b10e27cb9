// What the operator suites measure with on a Kubernetes API: concurrent creates, when JobTasks turn Succeeded,
// and the apiserver's own floor (a trivial custom resource created and its status patched once).
import { APIEXTENSIONS, Informer, type KubeClient, type KubeObject } from "../../../operator/kube/index.ts";
import { JOBTASKS } from "../../../operator/api/index.ts";
import { sleep } from "./stats.ts";

export type Obj = KubeObject & { spec?: any; status?: any };
export const CLIENTS = 16;

/** Runs `count` calls of `make` from CLIENTS concurrent loops. */
export async function createMany(count: number, make: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < count) await make(next++);
  }));
}

/** Watches JobTasks in `namespace` and records when each was first seen Succeeded (performance.now()). */
export function succeededTimes(kube: KubeClient, namespace: string): { times: Map<string, number>; informer: Informer<Obj> } {
  const times = new Map<string, number>();
  const informer = new Informer<Obj>(kube, JOBTASKS, { namespace });
  const seen = (t: Obj) => {
    if (t.status?.phase === "Succeeded" && !times.has(t.metadata.name)) times.set(t.metadata.name, performance.now());
  };
  informer.onAdd(seen);
  informer.onUpdate((_o, t) => seen(t));
  return { times, informer };
}

export async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

export const graphReady = (g: Obj | undefined): boolean => g?.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True") ?? false;

/** Custom resources per second the apiserver takes when each is created and its status patched once. */
export async function crFloor(kube: KubeClient, namespace: string, count: number): Promise<number> {
  const widget = { group: "bench.jobchain.test", version: "v1", plural: "widgets", kind: "Widget", namespaced: true };
  await kube.create(APIEXTENSIONS.customResourceDefinitions, {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: "widgets.bench.jobchain.test" },
    spec: {
      group: widget.group,
      scope: "Namespaced",
      names: { plural: "widgets", singular: "widget", kind: "Widget" },
      versions: [{ name: "v1", served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } } }],
    },
  } as KubeObject);
  await until(() => kube.list(widget, { namespace }).then(() => true, () => false), 30_000, "widget CRD served");
  const t0 = performance.now();
  await createMany(count, async (i) => {
    await kube.create(widget, { apiVersion: "bench.jobchain.test/v1", kind: "Widget", metadata: { name: `w${i}`, namespace }, spec: { i } } as KubeObject);
    await kube.mergePatch(widget, namespace, `w${i}`, { status: { phase: "Succeeded" } }, { subresource: "status" });
  });
  return count / ((performance.now() - t0) / 1000);
}

/** JobTasks created one every `intervalMs` (an open loop); resolves with each one's create → Succeeded latency. */
export async function latencies(
  kube: KubeClient,
  times: Map<string, number>,
  count: number,
  intervalMs: number,
  task: (name: string) => KubeObject,
  prefix: string,
): Promise<number[]> {
  const created = new Map<string, number>();
  const start = performance.now();
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    const at = start + i * intervalMs;
    await sleep(Math.max(0, at - performance.now()));
    created.set(`${prefix}${i}`, performance.now());
    await kube.create(JOBTASKS, task(`${prefix}${i}`));
  }));
  await until(() => [...created.keys()].every((k) => times.has(k)), 180_000, "latency JobTasks Succeeded");
  return [...created].map(([k, t]) => times.get(k)! - t);
}
