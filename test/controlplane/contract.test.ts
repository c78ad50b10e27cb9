// The kube-apiserver behaviour the operator relies on, pinned against the real control plane (kube-apiserver +
// etcd from test/harness/controlplane.ts) through @kubernetes/client-node 2.x. If one of these fails after a
// Kubernetes or client upgrade, the operator's assumptions need another look.
//
// Skipped — with the reason on stderr and as a skip note — where the control plane cannot be built (no Go).
import {
  ApiException,
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  Watch,
  setHeaderOptions,
  type KubernetesObject,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RESTRICTED_USER, startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { controlPlaneSuiteSkip } from "../harness/controlplane-vitest.ts";
import { startDeploymentRunner, type DeploymentRunner } from "../harness/deployments.ts";

const skip = controlPlaneSuiteSkip("kube-apiserver contract");

const GROUP = "contract.jobchain.test";
const VERSION = "v1";
const PLURAL = "widgets";
const NS = "default";
const FINALIZER = `${GROUP}/hold`;

interface Widget extends KubernetesObject {
  spec?: { size?: number; color?: string; [k: string]: unknown };
  status?: { phase?: string; observed?: number; [k: string]: unknown };
}

const widgetCrd: V1CustomResourceDefinition = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${PLURAL}.${GROUP}` },
  spec: {
    group: GROUP,
    scope: "Namespaced",
    names: { plural: PLURAL, singular: "widget", kind: "Widget", listKind: "WidgetList" },
    versions: [
      {
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                required: ["size"],
                properties: {
                  size: { type: "integer", minimum: 1 },
                  color: { type: "string", _enum: ["red", "green", "blue"] },
                },
              },
              status: {
                type: "object",
                properties: { phase: { type: "string" }, observed: { type: "integer" } },
              },
            },
          },
        },
      },
    ],
  },
};

/** The HTTP status of a rejected client-node call (fails the test if the call succeeded). */
async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiException) return e.code;
    throw e;
  }
  throw new Error("expected the request to fail");
}

function bodyOf(e: unknown): { reason?: string; message?: string; details?: { causes?: { field?: string }[] } } {
  if (!(e instanceof ApiException)) throw e;
  return typeof e.body === "string" ? JSON.parse(e.body) : e.body;
}

interface WatchEvent {
  type: string;
  object: Widget & { code?: number; reason?: string };
}

/** A watch that records its events; `next()` waits for the next one matching. */
async function recordWatch(kc: KubeConfig, query: Record<string, string | number | boolean | undefined>) {
  const events: WatchEvent[] = [];
  let notify = () => {};
  let closed: unknown = undefined;
  let isClosed = false;
  const abort = await new Watch(kc).watch(
    `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${PLURAL}`,
    query,
    (type, object) => {
      events.push({ type, object });
      notify();
    },
    (err) => {
      isClosed = true;
      closed = err;
      notify();
    },
  );
  let cursor = 0;
  return {
    events,
    get closed() {
      return isClosed ? (closed ?? "closed") : undefined;
    },
    async next(match: (e: WatchEvent) => boolean = () => true, timeoutMs = 10_000): Promise<WatchEvent> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (cursor < events.length) {
          const e = events[cursor++]!;
          if (match(e)) return e;
        }
        if (isClosed) throw new Error(`watch closed: ${String(closed)}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching watch event in ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => e.type))}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          notify = () => {
            clearTimeout(t);
            r();
          };
        });
      }
    },
    stop: () => abort.abort(),
  };
}

describe.skipIf(skip)("kube-apiserver contract", () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let restricted: KubeConfig;
  let crs: CustomObjectsApi;
  let rvBeforeCrd = "";
  let n = 0;
  const name = (prefix: string) => `${prefix}-${++n}`;

  const create = (w: Widget) =>
    crs.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, body: w }) as Promise<Widget>;
  const get = (name: string) =>
    crs.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name }) as Promise<Widget>;
  const replace = (w: Widget) =>
    crs.replaceNamespacedCustomObject({
      group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name: w.metadata!.name!, body: w,
    }) as Promise<Widget>;
  const replaceStatus = (w: Widget) =>
    crs.replaceNamespacedCustomObjectStatus({
      group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name: w.metadata!.name!, body: w,
    }) as Promise<Widget>;
  const mergePatch = (name: string, body: unknown) =>
    crs.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name, body },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    ) as Promise<Widget>;
  const del = (name: string) =>
    crs.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name });
  const widget = (name: string, spec: Widget["spec"], extra: Partial<Widget> = {}): Widget => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "Widget",
    ...extra,
    metadata: { name, ...extra.metadata },
    spec,
  });

  beforeAll(async () => {
    cp = await startControlPlane();
    console.info(`control plane ready in ${cp.startupMs} ms (kube-apiserver ${cp.versions.kubernetes})`);
    kc = new KubeConfig();
    kc.loadFromFile(cp.adminKubeconfig);
    restricted = new KubeConfig();
    restricted.loadFromFile(cp.restrictedKubeconfig);
    crs = kc.makeApiClient(CustomObjectsApi);

    const ext = kc.makeApiClient(ApiextensionsV1Api);
    rvBeforeCrd = (await kc.makeApiClient(CoreV1Api).listNamespace()).metadata!.resourceVersion!;
    await ext.createCustomResourceDefinition({ body: widgetCrd });
    // Wait until the CRD is Established and its resource is served.
    for (const deadline = Date.now() + 30_000; ; ) {
      const crd = await ext.readCustomResourceDefinition({ name: widgetCrd.metadata!.name! });
      const established = crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
      if (established) {
        try {
          await crs.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL });
          break;
        } catch {
          /* not served yet */
        }
      }
      if (Date.now() > deadline) throw new Error("CRD not established in 30 s");
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(async () => {
    await cp?.stop();
  });

  it("creates, gets and lists a custom resource; the server sets uid, resourceVersion, generation 1", async () => {
    const nm = name("crud");
    const created = await create(widget(nm, { size: 1, color: "red" }, { metadata: { labels: { tier: "a" } } }));
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect(created.metadata?.generation).toBe(1);
    expect(created.metadata?.creationTimestamp).toBeTruthy();

    const got = await get(nm);
    expect(got.spec).toEqual({ size: 1, color: "red" });
    expect(got.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);

    await create(widget(name("crud"), { size: 2 }, { metadata: { labels: { tier: "b" } } }));
    const list = (await crs.listNamespacedCustomObject({
      group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, labelSelector: "tier=a",
    })) as { kind: string; metadata: { resourceVersion: string }; items: Widget[] };
    expect(list.kind).toBe("WidgetList");
    expect(list.items.map((i) => i.metadata?.name)).toEqual([nm]);
    expect(Number(list.metadata.resourceVersion)).toBeGreaterThanOrEqual(Number(created.metadata?.resourceVersion));

    expect(await statusOf(create(widget(nm, { size: 1 })))).toBe(409); // AlreadyExists
    expect(await statusOf(get("no-such-widget"))).toBe(404);
  });

  it("drops status on create when the status subresource is enabled", async () => {
    const created = await create(widget(name("nostatus"), { size: 1 }, { status: { phase: "Done" } }));
    expect(created.status).toBeUndefined();
  });

  it("status writes leave spec alone and keep generation; spec writes leave status alone and bump generation", async () => {
    const nm = name("status");
    const w = await create(widget(nm, { size: 1 }));

    // /status with a changed spec: only the status is taken.
    const s1 = await replaceStatus({ ...w, spec: { size: 99 }, status: { phase: "Running", observed: 1 } });
    expect(s1.status).toEqual({ phase: "Running", observed: 1 });
    expect(s1.spec).toEqual({ size: 1 });
    expect(s1.metadata?.generation).toBe(1);
    expect(Number(s1.metadata?.resourceVersion)).toBeGreaterThan(Number(w.metadata?.resourceVersion));

    // Main resource with a changed status: only the spec (and metadata) is taken; generation + 1.
    const s2 = await replace({ ...s1, spec: { size: 2 }, status: { phase: "Hacked" } });
    expect(s2.spec).toEqual({ size: 2 });
    expect(s2.status).toEqual({ phase: "Running", observed: 1 });
    expect(s2.metadata?.generation).toBe(2);

    // Metadata-only changes do not bump generation.
    const s3 = await mergePatch(nm, { metadata: { labels: { touched: "yes" }, annotations: { a: "b" } } });
    expect(s3.metadata?.generation).toBe(2);
    expect(s3.metadata?.labels).toEqual({ touched: "yes" });

    // A spec patch does.
    const s4 = await mergePatch(nm, { spec: { color: "blue" } });
    expect(s4.metadata?.generation).toBe(3);
    expect(s4.spec).toEqual({ size: 2, color: "blue" });

    // A no-op write changes neither resourceVersion nor generation.
    const s5 = await mergePatch(nm, { spec: { color: "blue" } });
    expect(s5.metadata?.resourceVersion).toBe(s4.metadata?.resourceVersion);
    expect(s5.metadata?.generation).toBe(3);
  });

  it("rejects a write with a stale resourceVersion with 409 Conflict (optimistic concurrency)", async () => {
    const nm = name("conflict");
    const v1 = await create(widget(nm, { size: 1 }));
    const v2 = await replace({ ...v1, spec: { size: 2 } });
    expect(v2.metadata?.resourceVersion).not.toBe(v1.metadata?.resourceVersion);

    let err: unknown;
    try {
      await replace({ ...v1, spec: { size: 3 } });
    } catch (e) {
      err = e;
    }
    expect((err as ApiException<unknown>).code).toBe(409);
    expect(bodyOf(err).reason).toBe("Conflict");
    expect(await statusOf(replaceStatus({ ...v1, status: { phase: "x" } }))).toBe(409);
    // A merge patch carrying the old resourceVersion is a conditional write as well.
    expect(await statusOf(mergePatch(nm, { metadata: { resourceVersion: v1.metadata?.resourceVersion }, spec: { size: 4 } }))).toBe(409);
    // An update without resourceVersion is invalid for custom resources.
    const { resourceVersion: _drop, ...meta } = v2.metadata!;
    expect(await statusOf(replace({ ...v2, metadata: meta }))).toBe(422);
    expect((await get(nm)).spec).toEqual({ size: 2 });
  });

  it("watches: from a list's resourceVersion, only later events arrive, in order", async () => {
    const before = name("watch");
    await create(widget(before, { size: 1 }));
    const list = (await crs.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL })) as {
      metadata: { resourceVersion: string };
    };
    const w = await recordWatch(kc, { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: false });
    try {
      const nm = name("watch");
      const created = await create(widget(nm, { size: 1 }));
      const updated = await mergePatch(nm, { spec: { size: 5 } });
      await del(nm);
      const e1 = await w.next();
      const e2 = await w.next();
      const e3 = await w.next();
      expect([e1.type, e2.type, e3.type]).toEqual(["ADDED", "MODIFIED", "DELETED"]);
      expect(e1.object.metadata?.name).toBe(nm);
      expect(e1.object.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);
      expect(e2.object.metadata?.resourceVersion).toBe(updated.metadata?.resourceVersion);
      expect(e2.object.spec?.size).toBe(5);
      // Nothing about the object created before the list's resourceVersion.
      expect(w.events.some((e) => e.object.metadata?.name === before)).toBe(false);
    } finally {
      w.stop();
    }
  });

  it("watches without a resourceVersion: synthetic ADDED events for existing objects first", async () => {
    const nm = name("initial");
    await create(widget(nm, { size: 1 }));
    const w = await recordWatch(kc, {});
    try {
      const e = await w.next((ev) => ev.object.metadata?.name === nm);
      expect(e.type).toBe("ADDED");
    } finally {
      w.stop();
    }
  });

  it("answers a watch from a resourceVersion older than the server keeps with 410 Gone (Expired)", async () => {
    // `rvBeforeCrd` predates the CRD, so it is older than anything the watch cache of this resource holds; and
    // etcd is compacted past it as well (kube-apiserver compacts every 5 minutes on its own).
    const nm = name("expired");
    const created = await create(widget(nm, { size: 1 }));
    const res = await fetch(`${cp.etcdUrl}/v3/kv/compaction`, {
      method: "POST",
      body: JSON.stringify({ revision: created.metadata!.resourceVersion, physical: true }),
    });
    expect(res.status).toBe(200);
    const w = await recordWatch(kc, { resourceVersion: rvBeforeCrd });
    try {
      const e = await w.next();
      expect(e.type).toBe("ERROR");
      expect(e.object.code).toBe(410);
      expect(e.object.reason).toBe("Expired");
    } finally {
      w.stop();
    }
    // A list at that exact resourceVersion is gone too.
    expect(
      await statusOf(
        crs.listNamespacedCustomObject({
          group: GROUP, version: VERSION, namespace: NS, plural: PLURAL,
          resourceVersion: rvBeforeCrd, resourceVersionMatch: "Exact",
        }),
      ),
    ).toBe(410);
  });

  it("finalizers delay deletion: deletionTimestamp is set, the object stays until the last finalizer is removed", async () => {
    const nm = name("final");
    const created = await create(widget(nm, { size: 1 }, { metadata: { finalizers: [FINALIZER] } }));
    const w = await recordWatch(kc, { resourceVersion: created.metadata!.resourceVersion! });
    try {
      await del(nm);
      const terminating = await get(nm);
      expect(terminating.metadata?.deletionTimestamp).toBeTruthy();
      expect(terminating.metadata?.finalizers).toEqual([FINALIZER]);
      const modified = await w.next((e) => e.object.metadata?.name === nm);
      expect(modified.type).toBe("MODIFIED");
      expect(modified.object.metadata?.deletionTimestamp).toBeTruthy();

      // Adding a finalizer to an object being deleted is forbidden.
      expect(await statusOf(mergePatch(nm, { metadata: { finalizers: [FINALIZER, `${GROUP}/other`] } }))).toBe(422);
      // Status can still be written while terminating.
      await replaceStatus({ ...terminating, status: { phase: "Terminating" } });

      await mergePatch(nm, { metadata: { finalizers: null } });
      expect(await statusOf(get(nm))).toBe(404);
      const gone = await w.next((e) => e.object.metadata?.name === nm && e.type === "DELETED");
      expect(gone.object.metadata?.deletionTimestamp).toBeTruthy();
    } finally {
      w.stop();
    }
  });

  it("validates against the CRD schema (422 Invalid with causes) and prunes unknown fields", async () => {
    let err: unknown;
    try {
      await create(widget(name("invalid"), { size: 0, color: "purple" }));
    } catch (e) {
      err = e;
    }
    expect((err as ApiException<unknown>).code).toBe(422);
    const body = bodyOf(err);
    expect(body.reason).toBe("Invalid");
    const fields = (body.details?.causes ?? []).map((c) => c.field).sort();
    expect(fields).toEqual(["spec.color", "spec.size"]);
    expect(await statusOf(create(widget(name("invalid"), { color: "red" })))).toBe(422); // size is required
    expect(await statusOf(create(widget(name("invalid"), { size: "big" as unknown as number })))).toBe(422);

    const nm = name("pruned");
    const created = await create({ ...widget(nm, { size: 1, unknownField: "x" }), extraTop: { a: 1 } } as Widget);
    expect(created.spec).toEqual({ size: 1 });
    expect((created as Record<string, unknown>).extraTop).toBeUndefined();
    const w = await get(nm);
    const s = await replaceStatus({ ...w, status: { phase: "ok", bogus: true } });
    expect(s.status).toEqual({ phase: "ok" });
  });

  it("forbids (403) the restricted user what RBAC does not grant, and allows what a Role grants", async () => {
    const rcrs = restricted.makeApiClient(CustomObjectsApi);
    const rcore = restricted.makeApiClient(CoreV1Api);
    const nm = name("rbac");
    await create(widget(nm, { size: 1 }));
    const list = () => rcrs.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL });
    expect(await statusOf(list())).toBe(403);
    expect(await statusOf(rcore.listNamespacedSecret({ namespace: NS }))).toBe(403);
    expect(await statusOf(rcore.listNamespace())).toBe(403);

    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: NS,
      body: {
        metadata: { name: "widget-reader" },
        rules: [{ apiGroups: [GROUP], resources: [PLURAL], verbs: ["get", "list", "watch"] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: NS,
      body: {
        metadata: { name: "widget-reader" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "widget-reader" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: RESTRICTED_USER }],
      },
    });
    // The RBAC authorizer sees new bindings through its informer: allow a moment.
    for (const deadline = Date.now() + 10_000; ; ) {
      try {
        await list();
        break;
      } catch (e) {
        if (!(e instanceof ApiException) || e.code !== 403 || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const got = (await rcrs.getNamespacedCustomObject({
      group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name: nm,
    })) as Widget;
    expect(got.metadata?.name).toBe(nm);
    // Reading is granted, writing is not: neither the resource nor its status subresource.
    const rw = restricted.makeApiClient(CustomObjectsApi);
    expect(
      await statusOf(rw.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, body: widget(name("rbac"), { size: 1 }) })),
    ).toBe(403);
    expect(
      await statusOf(rw.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, name: nm, body: { ...got, status: { phase: "x" } } })),
    ).toBe(403);
    expect(await statusOf(rcrs.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "kube-system", plural: PLURAL }))).toBe(403);
  });

  describe("deployments stand-in (kubelet + Deployment controller for e2e tests)", () => {
    let runner: DeploymentRunner;
    beforeAll(async () => {
      runner = await startDeploymentRunner({ kubeconfig: cp.adminKubeconfig, namespace: NS });
    });
    afterAll(async () => {
      await runner?.stop();
    });

    it("runs spec.replicas processes, writes status, follows scale and restarts killed processes", async () => {
      const apps = kc.makeApiClient(AppsV1Api);
      const core = kc.makeApiClient(CoreV1Api);
      await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: "sleeper" }, stringData: { token: "s3cret" } } });
      const labels = { "app.kubernetes.io/name": "sleeper", "app.kubernetes.io/component": "runner" };
      await apps.createNamespacedDeployment({
        namespace: NS,
        body: {
          metadata: { name: "sleeper", labels },
          spec: {
            replicas: 2,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: {
                terminationGracePeriodSeconds: 1,
                containers: [
                  {
                    name: "sleeper",
                    image: "node:24",
                    command: ["node"],
                    args: ["-e", "console.log(`up ${process.env.MODE} ${process.env.TOKEN} ${process.env.POD}`); setInterval(() => {}, 1000)"],
                    env: [
                      { name: "MODE", value: "test" },
                      { name: "TOKEN", valueFrom: { secretKeyRef: { name: "sleeper", key: "token" } } },
                      { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                    ],
                  },
                ],
              },
            },
          },
        },
      });
      const status = async () => (await apps.readNamespacedDeploymentStatus({ name: "sleeper", namespace: NS })).status ?? {};
      const until = async (what: string, ok: () => Promise<boolean>, timeoutMs = 15_000) => {
        for (const deadline = Date.now() + timeoutMs; !(await ok()); ) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };

      await runner.waitFor((ps) => ps.filter((p) => p.running).length === 2);
      await until("readyReplicas 2", async () => (await status()).readyReplicas === 2);
      const st = await status();
      expect(st).toMatchObject({ replicas: 2, readyReplicas: 2, availableReplicas: 2, updatedReplicas: 2, observedGeneration: 1 });
      const procs = runner.processes({ deployment: "sleeper" });
      await until("output", async () => procs.every((p) => p.output().includes("up test s3cret")));
      expect(procs[0]!.output()).toContain(procs[0]!.podName);

      // A killed process is restarted, like a container with restartPolicy Always.
      const victim = procs[0]!;
      victim.kill();
      await runner.waitFor((ps) => ps.some((p) => p.podName === victim.podName && p.restarts === 1 && p.running));

      // Scale down to 1.
      await apps.patchNamespacedDeploymentScale(
        { name: "sleeper", namespace: NS, body: { spec: { replicas: 1 } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      await runner.waitFor((ps) => ps.length === 1);
      await until("replicas 1", async () => {
        const s = await status();
        return s.replicas === 1 && s.readyReplicas === 1 && s.observedGeneration === 2;
      });
      const survivor = runner.processes()[0]!;
      expect(survivor.running).toBe(true);
      expect(process.kill(survivor.pid!, 0)).toBe(true);
    });

    it("rolls the processes on a pod template change and stops them when the Deployment goes", async () => {
      const apps = kc.makeApiClient(AppsV1Api);
      // Not a `component=runner` Deployment: the runner of the test above must leave it alone.
      const labels = { "app.kubernetes.io/name": "roller" };
      const template = (version: string) => ({
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: "roller",
              image: "node:24",
              command: ["sleeper"],
              args: ["-e", "console.log(`version ${process.env.VERSION}`); setInterval(() => {}, 1000)"],
              env: [{ name: "VERSION", value: version }],
            },
          ],
        },
      });
      const mapped = await startDeploymentRunner({
        kubeconfig: cp.adminKubeconfig,
        namespace: NS,
        labelSelector: "app.kubernetes.io/name=roller",
        commandMap: { sleeper: [process.execPath] },
      });
      try {
        await apps.createNamespacedDeployment({
          namespace: NS,
          body: { metadata: { name: "roller", labels }, spec: { replicas: 2, selector: { matchLabels: labels }, template: template("1") } },
        });
        await mapped.waitFor((ps) => ps.length === 2 && ps.every((p) => p.running && p.output().includes("version 1")));
        const firstHash = mapped.processes()[0]!.templateHash;
        expect(mapped.processes()[0]!.argv[0]).toBe(process.execPath);

        await apps.patchNamespacedDeployment(
          { name: "roller", namespace: NS, body: { spec: { template: template("2") } } },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
        await mapped.waitFor(
          (ps) => ps.length === 2 && ps.every((p) => p.templateHash !== firstHash && p.running && p.output().includes("version 2")),
        );
        for (const deadline = Date.now() + 15_000; ; ) {
          const s = (await apps.readNamespacedDeploymentStatus({ name: "roller", namespace: NS })).status;
          if (s?.observedGeneration === 2 && s.updatedReplicas === 2 && s.readyReplicas === 2 && s.replicas === 2) break;
          if (Date.now() > deadline) throw new Error(`status not rolled: ${JSON.stringify(s)}`);
          await new Promise((r) => setTimeout(r, 50));
        }

        await apps.deleteNamespacedDeployment({ name: "roller", namespace: NS });
        await mapped.waitFor((ps) => ps.length === 0);
      } finally {
        await mapped.stop();
      }
    });
  });
});
