// operator/kube's REST client, event recorder and client-side rate limit against the real control plane
// (kube-apiserver + etcd from test/harness/controlplane.ts): CRUD, merge patch, server-side apply, the status
// subresource, 404/409/422 classification, deletes with preconditions, and Events aggregated through the API.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CORE,
  EventRecorder,
  KubeApiError,
  Registry,
  createKubeClient,
  isAlreadyExists,
  isConflict,
  isInvalid,
  isNotFound,
  loadKubeConfig,
  type KubeClient,
  type KubeObject,
} from "../../operator/kube/index.ts";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { controlPlaneSuiteSkip } from "../harness/controlplane-vitest.ts";
import { WIDGETS, installWidgetCrd, type Widget } from "./kube-fixtures.ts";
import { parseExposition } from "../helpers/prometheus.ts";

const skip = controlPlaneSuiteSkip("operator/kube client");

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

async function rejection(p: Promise<unknown>): Promise<KubeApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KubeApiError) return e;
    throw e;
  }
  throw new Error("expected the request to fail");
}

describe.skipIf(skip)("operator/kube client against kube-apiserver", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  const metrics = new Registry();

  beforeAll(async () => {
    cp = await startControlPlane();
    client = createKubeClient(loadKubeConfig({ kubeconfig: cp.adminKubeconfig }), { metrics, qps: 200, burst: 200 });
    await installWidgetCrd(client);
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it("loads the kubeconfig's server and namespace", () => {
    const cfg = loadKubeConfig({ kubeconfig: cp.adminKubeconfig });
    expect(cfg.server).toBe(cp.server);
    expect(cfg.namespace).toBe("default");
    expect(() => loadKubeConfig({ kubeconfig: `${cp.dir}/missing` })).toThrow(/does not exist/);
    expect(() => loadKubeConfig({ kubeconfig: cp.kubeconfigPath, context: "nope" })).toThrow(/no context named nope/);
  });

  it("creates, gets, lists with pages, merge-patches, replaces and deletes ConfigMaps", async () => {
    const labels = { suite: "client-cm" };
    for (let i = 0; i < 5; i++) {
      const made = await client.create<ConfigMap>(CORE.configMaps, { metadata: { name: `cm-${i}`, namespace: "default", labels }, data: { i: String(i) } });
      expect(made.metadata.uid).toBeTruthy();
    }
    const got = await client.get<ConfigMap>(CORE.configMaps, "default", "cm-2");
    expect(got?.data).toEqual({ i: "2" });
    expect(await client.get(CORE.configMaps, "default", "absent")).toBeUndefined();

    const names: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    do {
      const page = await client.list<ConfigMap>(CORE.configMaps, { namespace: "default", labelSelector: "suite=client-cm", limit: 2, ...(cont ? { continue: cont } : {}) });
      expect(page.resourceVersion).toMatch(/^\d+$/);
      names.push(...page.items.map((c) => c.metadata.name));
      expect(page.items.every((c) => c.kind === "ConfigMap" && c.apiVersion === "v1")).toBe(true);
      cont = page.continue;
      pages++;
    } while (cont);
    expect(pages).toBe(3);
    expect(names.sort()).toEqual(["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);

    const patched = await client.mergePatch<ConfigMap>(CORE.configMaps, "default", "cm-2", { data: { extra: "yes", i: null } });
    expect(patched.data).toEqual({ extra: "yes" });

    // Optimistic concurrency: a replace with a stale resourceVersion is a Conflict.
    const stale = { ...got!, data: { i: "stale" } };
    const conflict = await rejection(client.replace(CORE.configMaps, stale));
    expect(conflict.status).toBe(409);
    expect(isConflict(conflict)).toBe(true);
    expect(isAlreadyExists(conflict)).toBe(false);
    // So is a merge patch carrying a stale resourceVersion.
    expect(isConflict(await rejection(client.mergePatch(CORE.configMaps, "default", "cm-2", { metadata: { resourceVersion: got!.metadata.resourceVersion }, data: { x: "1" } })))).toBe(true);
    const fresh = await client.replace<ConfigMap>(CORE.configMaps, { ...patched, data: { i: "new" } });
    expect(fresh.data).toEqual({ i: "new" });

    const dup = await rejection(client.create(CORE.configMaps, { metadata: { name: "cm-0", namespace: "default" } }));
    expect(isAlreadyExists(dup)).toBe(true);
    expect(isConflict(dup)).toBe(false);
    expect(dup.reason).toBe("AlreadyExists");

    // A uid precondition that does not match refuses the delete.
    expect(isConflict(await rejection(client.delete(CORE.configMaps, "default", "cm-0", { uid: "00000000-0000-0000-0000-000000000000" })))).toBe(true);
    expect(await client.delete(CORE.configMaps, "default", "cm-0", { uid: (await client.get(CORE.configMaps, "default", "cm-0"))!.metadata.uid! })).toBe(true);
    expect(await client.delete(CORE.configMaps, "default", "cm-0")).toBe(false);
    expect(await client.get(CORE.configMaps, "default", "cm-0")).toBeUndefined();

    const dry = await client.create<ConfigMap>(CORE.configMaps, { metadata: { name: "dry", namespace: "default" } }, { dryRun: true });
    expect(dry.metadata.name).toBe("dry");
    expect(await client.get(CORE.configMaps, "default", "dry")).toBeUndefined();
  });

  it("writes a custom resource's status only through /status, and classifies 404 and 422", async () => {
    const w = await client.create<Widget>(WIDGETS, { metadata: { name: "w1", namespace: "default" }, spec: { size: 1 }, status: { phase: "ignored" } });
    expect(w.metadata.generation).toBe(1);
    expect(w.status).toBeUndefined(); // stripped on create with a status subresource
    const s = await client.mergePatch<Widget>(WIDGETS, "default", "w1", { status: { phase: "Ready", observed: 1 } }, { subresource: "status" });
    expect(s.status).toEqual({ phase: "Ready", observed: 1 });
    expect(s.metadata.generation).toBe(1);
    const viaMain = await client.mergePatch<Widget>(WIDGETS, "default", "w1", { spec: { size: 2 }, status: { phase: "Nope" } });
    expect(viaMain.spec?.size).toBe(2);
    expect(viaMain.status?.phase).toBe("Ready");
    expect(viaMain.metadata.generation).toBe(2);
    const put = await client.replace<Widget>(WIDGETS, { ...viaMain, status: { phase: "Put", observed: 2 } }, { subresource: "status" });
    expect(put.status).toEqual({ phase: "Put", observed: 2 });

    const invalid = await rejection(client.create(WIDGETS, { metadata: { name: "bad", namespace: "default" }, spec: { size: 0 } }));
    expect(invalid.status).toBe(422);
    expect(isInvalid(invalid)).toBe(true);
    expect(invalid.message).toMatch(/spec\.size/);

    const missing = await rejection(client.mergePatch(WIDGETS, "default", "nope", { spec: { size: 1 } }));
    expect(isNotFound(missing)).toBe(true);
    expect(missing.reason).toBe("NotFound");
    expect(await client.delete(WIDGETS, "default", "w1")).toBe(true);
  });

  it("server-side applies objects and their status with a field manager, refusing a conflicting manager unless forced", async () => {
    const applied = await client.apply<Widget>(WIDGETS, { metadata: { name: "w-apply", namespace: "default" }, spec: { size: 3, color: "red" } }, { fieldManager: "machinery-a" });
    expect(applied.spec).toEqual({ size: 3, color: "red" });
    const again = await client.apply<Widget>(WIDGETS, { metadata: { name: "w-apply", namespace: "default" }, spec: { size: 3, color: "red" } }, { fieldManager: "machinery-a" });
    expect(again.metadata.resourceVersion).toBe(applied.metadata.resourceVersion); // no-op
    const clash = await rejection(client.apply(WIDGETS, { metadata: { name: "w-apply", namespace: "default" }, spec: { size: 3, color: "blue" } }, { fieldManager: "machinery-b" }));
    expect(clash.status).toBe(409);
    const forced = await client.apply<Widget>(WIDGETS, { metadata: { name: "w-apply", namespace: "default" }, spec: { size: 3, color: "blue" } }, { fieldManager: "machinery-b", force: true });
    expect(forced.spec?.color).toBe("blue");
    const status = await client.apply<Widget>(WIDGETS, { metadata: { name: "w-apply", namespace: "default" }, status: { phase: "Applied" } }, { fieldManager: "machinery-a", subresource: "status" });
    expect(status.status?.phase).toBe("Applied");
    const cm = await client.apply<ConfigMap>(CORE.configMaps, { metadata: { name: "applied", namespace: "default" }, data: { a: "1" } }, { fieldManager: "machinery-a" });
    expect(cm.data).toEqual({ a: "1" });
  });

  it("reports refused requests with the Status from the server (403 for a user without RBAC grants)", async () => {
    const restricted = createKubeClient(loadKubeConfig({ kubeconfig: cp.restrictedKubeconfig }));
    const e = await rejection(restricted.list(CORE.configMaps, { namespace: "default" }));
    expect(e.status).toBe(403);
    expect(e.reason).toBe("Forbidden");
    expect(e.message).toMatch(/GET \/api\/v1\/namespaces\/default\/configmaps: 403 Forbidden/);
  });

  it("records requests by verb and code", () => {
    const parsed = parseExposition(metrics.render());
    const samples = parsed.get("rest_client_requests_total")!.samples;
    const count = (verb: string, code: string) => samples.find((s) => s.labels.verb === verb && s.labels.code === code)?.value ?? 0;
    expect(count("POST", "201")).toBeGreaterThan(0);
    expect(count("PUT", "409")).toBeGreaterThan(0);
    expect(count("GET", "404")).toBeGreaterThan(0);
  });

  it("limits requests with a token bucket (qps=5, burst=5: 20 GETs wait ≥ ~3 s for tokens) but never watches", async () => {
    const limited = createKubeClient(loadKubeConfig({ kubeconfig: cp.adminKubeconfig }), { qps: 5, burst: 5, metrics: new Registry() });
    await Promise.all(Array.from({ length: 20 }, () => limited.get(CORE.configMaps, "default", "cm-1")));
    expect(limited.stats.requests).toBe(20);
    expect(limited.stats.throttled).toBe(15);
    // The 20th token is due 15 / 5 = 3 s after the first five; timers only ever fire late, never early.
    expect(limited.stats.maxThrottleWaitMs).toBeGreaterThanOrEqual(2900);
    expect(limited.stats.throttleWaitMs).toBeGreaterThanOrEqual(20_000);

    // The bucket is empty now; watches start without waiting for it.
    const before = { ...limited.stats };
    const ctl = new AbortController();
    const opened: Promise<void>[] = [];
    const answered = new Set<number>();
    for (let i = 0; i < 5; i++) {
      opened.push(limited.watch(CORE.configMaps, { namespace: "default", resourceVersion: "0", timeoutSeconds: 30 }, () => void answered.add(i), ctl.signal));
    }
    // resourceVersion "0" replays the current objects as ADDED: each watch answers at once.
    while (answered.size < 5) await new Promise((r) => setTimeout(r, 20));
    expect(limited.stats.throttled).toBe(before.throttled);
    expect(limited.stats.requests).toBe(before.requests + 5);
    ctl.abort();
    await Promise.all(opened);
  });

  it("aggregates repeated Events: one Event whose count grows, visible through the API", async () => {
    const recorder = new EventRecorder(client, { component: "machinery-test", host: "test-host" });
    const target = (await client.get<ConfigMap>(CORE.configMaps, "default", "cm-1"))!;
    for (let i = 0; i < 5; i++) recorder.event(target, "Warning", "Broken", "the widget is broken");
    recorder.event(target, "Normal", "Fixed", "the widget works");
    await recorder.flush();
    for (let i = 0; i < 2; i++) recorder.event(target, "Warning", "Broken", "the widget is broken");
    await recorder.flush();
    expect(recorder.counts.failed).toBe(0);
    const events = await client.list<KubeObject & { reason?: string; count?: number; type?: string; involvedObject?: { uid?: string; kind?: string }; source?: { component?: string } }>(
      CORE.events,
      { namespace: "default", fieldSelector: "involvedObject.name=cm-1" },
    );
    const byReason = Object.fromEntries(events.items.map((e) => [e.reason, e]));
    expect(events.items).toHaveLength(2);
    expect(byReason.Broken?.count).toBe(7);
    expect(byReason.Broken?.type).toBe("Warning");
    expect(byReason.Broken?.involvedObject?.uid).toBe(target.metadata.uid);
    expect(byReason.Broken?.source?.component).toBe("machinery-test");
    expect(byReason.Fixed?.count).toBe(1);

    // event() never throws and never blocks, even when the write fails.
    recorder.event({ metadata: { name: "x", namespace: "no-such-namespace" } }, "Normal", "Nowhere", "lost");
    await recorder.flush();
    expect(recorder.counts.failed).toBe(1);
  });
});
