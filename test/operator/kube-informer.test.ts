// operator/kube's Informer against the real control plane: initial sync, add/update/delete, resuming after the
// server ends a watch, 410 Gone after an etcd compaction while the watch was cut (relist with synthetic deletes),
// the watchdog restarting a watch whose connection went silent, and resync. Faults go through a TCP proxy in
// front of kube-apiserver. ConfigMaps are served without a watch cache here (--watch-cache-sizes=configmaps#0), so
// their watches read etcd and a compaction really expires their history.
import os from "node:os";
import path from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CORE, Informer, Registry, createKubeClient, loadKubeConfig, type KubeClient, type KubeObject } from "../../operator/kube/index.ts";
import { compactEtcd, startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { controlPlaneSuiteSkip } from "../harness/controlplane-vitest.ts";
import { until } from "../helpers/until.ts";
import { WIDGETS, installWidgetCrd, type Widget } from "./kube-fixtures.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

const skip = controlPlaneSuiteSkip("operator/kube informer");

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

/** Records what an informer delivers. */
function record<T extends KubeObject>(inf: Informer<T>) {
  const log: { type: "add" | "update" | "delete"; name: string; rv: string | undefined }[] = [];
  inf.onAdd((o) => log.push({ type: "add", name: o.metadata.name, rv: o.metadata.resourceVersion }));
  inf.onUpdate((_old, o) => log.push({ type: "update", name: o.metadata.name, rv: o.metadata.resourceVersion }));
  inf.onDelete((o) => log.push({ type: "delete", name: o.metadata.name, rv: o.metadata.resourceVersion }));
  return {
    log,
    of: (name: string) => log.filter((e) => e.name === name).map((e) => e.type),
  };
}

describe.skipIf(skip)("operator/kube Informer against kube-apiserver", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let proxy: TcpProxy;
  let proxied: KubeClient;
  let tmp: string;
  const informers: Informer<KubeObject>[] = [];
  const track = <T extends KubeObject>(i: Informer<T>): Informer<T> => {
    informers.push(i as unknown as Informer<KubeObject>);
    return i;
  };

  beforeAll(async () => {
    cp = await startControlPlane({ apiserverArgs: ["--watch-cache-sizes=configmaps#0"] });
    client = createKubeClient(loadKubeConfig({ kubeconfig: cp.adminKubeconfig }), { qps: 500, burst: 500 });
    await installWidgetCrd(client);
    const u = new URL(cp.server);
    proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port) });
    tmp = mkdtempSync(path.join(os.tmpdir(), "jobchain-informer-"));
    proxied = createKubeClient(loadKubeConfig({ kubeconfig: proxy.kubeconfig(cp.adminKubeconfig, path.join(tmp, "proxied.kubeconfig")) }), { qps: 500, burst: 500 });
  });
  afterAll(async () => {
    for (const i of informers) i.stop();
    await proxy?.close();
    await cp?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("syncs the existing objects (paginated) before start() resolves and delivers adds, updates and deletes", async () => {
    for (let i = 0; i < 7; i++) await client.create<Widget>(WIDGETS, { metadata: { name: `pre-${i}`, namespace: "default", labels: { set: "a" } }, spec: { size: 1 } });
    const metrics = new Registry();
    const inf = track(new Informer<Widget>(client, WIDGETS, { namespace: "default", labelSelector: "set=a", pageSize: 3, metrics }));
    const rec = record(inf);
    expect(inf.synced).toBe(false);
    await inf.start();
    expect(inf.synced).toBe(true);
    expect(rec.log.filter((e) => e.type === "add")).toHaveLength(7);
    expect(inf.list().map((o) => o.metadata.name).sort()).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `pre-${i}`));
    expect(inf.lastResourceVersion).toMatch(/^\d+$/);

    // Callers cannot corrupt the store.
    const stored = inf.get("default", "pre-0")!;
    expect(() => {
      (stored.spec as { size: number }).size = 99;
    }).toThrow(TypeError);

    await client.create<Widget>(WIDGETS, { metadata: { name: "live", namespace: "default", labels: { set: "a" } }, spec: { size: 1 } });
    await until(() => inf.get("default", "live") !== undefined, 30_000, "the new widget reaches the store");
    await client.mergePatch(WIDGETS, "default", "live", { spec: { size: 5 } });
    await until(() => inf.get("default", "live")?.spec?.size === 5, 30_000, "the update reaches the store");
    await client.delete(WIDGETS, "default", "live");
    await until(() => inf.get("default", "live") === undefined, 30_000, "the delete reaches the store");
    expect(rec.of("live")).toEqual(["add", "update", "delete"]);
    // An object outside the selector is not seen.
    await client.create<Widget>(WIDGETS, { metadata: { name: "other", namespace: "default", labels: { set: "b" } }, spec: { size: 1 } });
    expect(inf.lastResourceVersion).toMatch(/^\d+$/);
    const text = metrics.render();
    expect(text).toContain('informer_relists_total{resource="widgets.machinery.jobchain.test"} 1');
    expect(text).toContain('informer_watch_events_total{resource="widgets.machinery.jobchain.test",type="ADDED"} 1');
  });

  it("resumes from the last resourceVersion when the server ends each watch, without relisting or missing a change", async () => {
    const inf = track(new Informer<Widget>(client, WIDGETS, { namespace: "default", labelSelector: "set=resume", watchTimeoutSeconds: 1 }));
    const rec = record(inf);
    await inf.start();
    for (let i = 0; i < 12; i++) {
      await client.create<Widget>(WIDGETS, { metadata: { name: `r-${i}`, namespace: "default", labels: { set: "resume" } }, spec: { size: 1 } });
      await new Promise((r) => setTimeout(r, 300));
    }
    await until(() => inf.list().length === 12, 30_000, "every widget created across watch restarts is seen");
    await until(() => inf.counts.watches >= 3, 30_000, "several watches ended by the server");
    expect(inf.counts.lists).toBe(1);
    expect(inf.counts.gone).toBe(0);
    expect(rec.log.filter((e) => e.type === "add").map((e) => e.name).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `r-${i}`).sort());
  });

  it("relists after 410 Gone (etcd compacted while the watch was cut): sees objects created meanwhile and synthesizes deletes", async () => {
    const labels = { set: "gone" };
    for (const name of ["keep", "same", "doomed"]) await client.create<ConfigMap>(CORE.configMaps, { metadata: { name: `g-${name}`, namespace: "default", labels }, data: { v: "1" } });
    const inf = track(new Informer<ConfigMap>(proxied, CORE.configMaps, { namespace: "default", labelSelector: "set=gone", backoffMaxMs: 1000 }));
    const rec = record(inf);
    await inf.start();
    expect(inf.list()).toHaveLength(3);
    const rvBefore = inf.lastResourceVersion;

    proxy.cut();
    await client.create<ConfigMap>(CORE.configMaps, { metadata: { name: "g-born", namespace: "default", labels }, data: { v: "1" } });
    await client.delete(CORE.configMaps, "default", "g-doomed");
    await client.mergePatch(CORE.configMaps, "default", "g-keep", { data: { v: "2" } });
    // Unrelated writes so the compaction moves well past the informer's resourceVersion.
    for (let i = 0; i < 5; i++) await client.create(CORE.configMaps, { metadata: { name: `g-noise-${i}`, namespace: "default" } });
    const revision = await compactEtcd(cp);
    expect(revision).toBeGreaterThan(Number(rvBefore));
    await until(() => inf.counts.errors > 0, 30_000, "the informer noticed the cut");
    proxy.restore();

    await until(() => inf.counts.gone > 0 && inf.counts.lists >= 2, 45_000, "a 410 and a relist");
    await until(() => inf.get("default", "g-born") !== undefined && inf.get("default", "g-doomed") === undefined, 30_000, "the store matches the server");
    expect(inf.get("default", "g-keep")?.data).toEqual({ v: "2" });
    expect(rec.of("g-born")).toEqual(["add"]);
    expect(rec.of("g-doomed")).toEqual(["add", "delete"]); // synthetic: the DELETED event itself was compacted away
    expect(rec.of("g-keep")).toEqual(["add", "update"]);
    expect(rec.of("g-same")).toEqual(["add"]); // unchanged resourceVersion: no update on relist

    // And it keeps watching after the relist.
    await client.create<ConfigMap>(CORE.configMaps, { metadata: { name: "g-after", namespace: "default", labels } });
    await until(() => inf.get("default", "g-after") !== undefined, 30_000, "a change after the relist");
  });

  it("restarts a watch whose connection went silent (watchdog) and catches up from its resourceVersion", async () => {
    const inf = track(new Informer<Widget>(proxied, WIDGETS, { namespace: "default", labelSelector: "set=silent", watchdogMs: 3000 }));
    const rec = record(inf);
    await inf.start();
    await client.create<Widget>(WIDGETS, { metadata: { name: "s-1", namespace: "default", labels: { set: "silent" } }, spec: { size: 1 } });
    await until(() => inf.get("default", "s-1") !== undefined, 30_000, "s-1 seen");
    const restarts = inf.counts.watchdogRestarts;
    // Everything the server sends on the open watch connection is dropped from now on; the TCP connection stays up.
    proxy.blackhole();
    await client.create<Widget>(WIDGETS, { metadata: { name: "s-2", namespace: "default", labels: { set: "silent" } }, spec: { size: 1 } });
    // Without the watchdog this would wait for the watch's server-side timeout (5 to 7.5 minutes).
    await until(() => inf.get("default", "s-2") !== undefined, 45_000, "s-2 seen after the watchdog restarted the watch");
    expect(inf.counts.watchdogRestarts).toBeGreaterThan(restarts);
    expect(inf.counts.lists).toBe(1);
    expect(rec.of("s-2")).toEqual(["add"]);
  });

  it("re-delivers every stored object as an update on resync", async () => {
    const inf = track(new Informer<Widget>(client, WIDGETS, { namespace: "default", labelSelector: "set=a", resyncMs: 300 }));
    const resynced = new Set<string>();
    inf.onUpdate((o, n) => {
      if (o === n) resynced.add(n.metadata.name);
    });
    await inf.start();
    await until(() => resynced.size === inf.list().length && resynced.size > 0, 30_000, "every object resynced");
  });
});
