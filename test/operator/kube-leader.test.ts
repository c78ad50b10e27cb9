// operator/kube's LeaderElector against the real control plane: two candidates, exactly one leads; stop() of
// the leader releases the lease and the other takes over without waiting for it to expire; a leader killed with
// SIGKILL (no release) is replaced once its lease expires; a leader that cannot renew (its RBAC grant revoked)
// steps down.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COORDINATION, LeaderElector, createKubeClient, loadKubeConfig, type KubeClient, type KubeObject } from "../../operator/kube/index.ts";
import { RESTRICTED_USER, startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { controlPlaneSuiteSkip } from "../harness/controlplane-vitest.ts";
import { until } from "../helpers/until.ts";

const skip = controlPlaneSuiteSkip("operator/kube leader election");
const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "elector.ts");

interface Lease extends KubeObject {
  spec?: { holderIdentity?: string; leaseTransitions?: number; leaseDurationSeconds?: number };
}

const RBAC_ROLES = { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", namespaced: true };
const RBAC_BINDINGS = { group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", kind: "RoleBinding", namespaced: true };

/** A candidate in this process that records when it leads; `overlap` counts moments two led at once. */
function candidate(client: KubeClient, name: string, identity: string, timing: { lease: number; renew: number; retry: number }, shared: { leading: Set<string>; overlaps: number }) {
  const state = { started: 0, stopped: 0, signal: undefined as AbortSignal | undefined };
  const elector = new LeaderElector(client, {
    namespace: "default",
    name,
    identity,
    leaseDurationMs: timing.lease,
    renewDeadlineMs: timing.renew,
    retryPeriodMs: timing.retry,
    onStartedLeading: (signal) => {
      state.started++;
      state.signal = signal;
      if (shared.leading.size > 0) shared.overlaps++;
      shared.leading.add(identity);
      signal.addEventListener("abort", () => shared.leading.delete(identity));
    },
    onStoppedLeading: () => void state.stopped++,
  });
  const running = elector.run();
  return { elector, state, running };
}

describe.skipIf(skip)("operator/kube LeaderElector against kube-apiserver", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    cp = await startControlPlane();
    client = createKubeClient(loadKubeConfig({ kubeconfig: cp.adminKubeconfig }));
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await cp?.stop();
  });

  it("lets exactly one of two candidates lead, and stop() hands the lease over at once", async () => {
    const shared = { leading: new Set<string>(), overlaps: 0 };
    // A long lease: a hand-over well inside it can only come from the release.
    const timing = { lease: 30_000, renew: 20_000, retry: 300 };
    const a = candidate(client, "handover", "a", timing, shared);
    const b = candidate(client, "handover", "b", timing, shared);
    await until(() => shared.leading.size === 1, 30_000, "one leader");
    // Several retry periods pass; the other keeps trying and must not get in.
    await new Promise((r) => setTimeout(r, 2000));
    expect(shared.leading.size).toBe(1);
    expect(a.elector.isLeader !== b.elector.isLeader).toBe(true);
    const [leader, follower] = a.elector.isLeader ? [a, b] : [b, a];
    expect(follower.elector.leader).toBe(leader === a ? "a" : "b");

    const stoppedAt = Date.now();
    await leader.elector.stop();
    await leader.running;
    expect(leader.state.stopped).toBe(1);
    expect(leader.state.signal?.aborted).toBe(true);
    await until(() => follower.elector.isLeader, 25_000, "the other candidate leads");
    expect(Date.now() - stoppedAt).toBeLessThan(timing.lease); // it did not wait for the lease to expire
    const lease = await client.get<Lease>(COORDINATION.leases, "default", "handover");
    expect(lease?.spec?.holderIdentity).toBe(follower === a ? "a" : "b");
    expect(lease?.spec?.leaseTransitions).toBe(1);
    expect(shared.overlaps).toBe(0);
    await follower.elector.stop();
  });

  it("takes over from a killed leader (no release) only after its lease expires", async () => {
    // The child must not miss its own renew deadline on a loaded machine: a generous one.
    const timing = { lease: 8000, renew: 6000, retry: 500 };
    const child = spawn(process.execPath, [FIXTURE, cp.adminKubeconfig, "default", "killed", "child", String(timing.lease), String(timing.renew), String(timing.retry)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(child);
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    await until(() => out.includes("LEADING"), 60_000, "the child process leads");

    const shared = { leading: new Set<string>(), overlaps: 0 };
    const me = candidate(client, "killed", "parent", timing, shared);
    await new Promise((r) => setTimeout(r, 1500));
    expect(me.elector.isLeader).toBe(false); // the child renews; the lease is not free
    expect(me.elector.leader).toBe("child");

    expect(me.state.started).toBe(0);
    child.kill("SIGKILL");
    await until(() => me.elector.isLeader, 30_000, "the survivor leads");
    expect(out).not.toContain("STOPPED"); // it died without stepping down or releasing
    const lease = await client.get<Lease>(COORDINATION.leases, "default", "killed");
    expect(lease?.spec?.holderIdentity).toBe("parent");
    expect(lease?.spec?.leaseTransitions).toBe(1);
    await me.elector.stop();
  });

  it("steps down when renewing fails (RBAC grant revoked): aborts the work, calls onStoppedLeading, run() returns", async () => {
    await client.create(RBAC_ROLES, {
      metadata: { name: "leases", namespace: "default" },
      rules: [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] }],
    });
    await client.create(RBAC_BINDINGS, {
      metadata: { name: "leases", namespace: "default" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "leases" },
      subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: RESTRICTED_USER }],
    });
    const restricted = createKubeClient(loadKubeConfig({ kubeconfig: cp.restrictedKubeconfig }));
    const shared = { leading: new Set<string>(), overlaps: 0 };
    const me = candidate(restricted, "revoked", "restricted", { lease: 4000, renew: 3000, retry: 500 }, shared);
    await until(() => me.elector.isLeader, 30_000, "the restricted user leads");
    await client.delete(RBAC_BINDINGS, "default", "leases");
    await until(() => !me.elector.isLeader, 30_000, "it stepped down");
    await me.running;
    expect(me.state.signal?.aborted).toBe(true);
    expect(me.state.stopped).toBe(1);
    const lease = await client.get<Lease>(COORDINATION.leases, "default", "revoked");
    expect(lease?.spec?.holderIdentity).toBe("restricted"); // it could not release either: the lease expires on its own
  });
});
