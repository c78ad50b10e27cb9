// The elector's timing rules against an in-memory Lease store with resourceVersion checks, on a fake clock. The
// suite against a real API server (two candidates, a killed leader, a revoked grant) is
// test/operator/kube-leader.test.ts.
import { describe, expect, it } from "vitest";
import { FakeClock, settle } from "../../test/helpers/fake-clock.ts";
import type { KubeClient } from "./client.ts";
import { KubeApiError } from "./errors.ts";
import { LeaderElector } from "./leader.ts";
import type { KubeObject } from "./resources.ts";

interface Lease extends KubeObject {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; leaseTransitions?: number };
}

class LeaseStore {
  lease: Lease | undefined;
  rv = 0;
  down = false;
  writes: string[] = [];
  private check(): void {
    if (this.down) throw new KubeApiError("connection refused", { status: 0, request: "GET lease" });
  }
  async get(): Promise<Lease | undefined> {
    this.check();
    return this.lease && structuredClone(this.lease);
  }
  async create(_t: unknown, obj: Lease): Promise<Lease> {
    this.check();
    if (this.lease) throw new KubeApiError("exists", { status: 409, reason: "AlreadyExists", request: "POST lease" });
    this.lease = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    this.writes.push(`create ${obj.spec?.holderIdentity}`);
    return structuredClone(this.lease);
  }
  async replace(_t: unknown, obj: Lease): Promise<Lease> {
    this.check();
    if (obj.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) {
      throw new KubeApiError("conflict", { status: 409, reason: "Conflict", request: "PUT lease" });
    }
    this.lease = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    this.writes.push(`replace ${obj.spec?.holderIdentity}`);
    return structuredClone(this.lease);
  }
  /** Someone else holds the lease and renews it now. */
  renewAs(holder: string): void {
    this.lease = {
      metadata: { name: "l", namespace: "ns", resourceVersion: String(++this.rv) },
      spec: { holderIdentity: holder, leaseDurationSeconds: 15, renewTime: `t${this.rv}`, leaseTransitions: 0 },
    };
  }
}

function elector(store: LeaseStore, clock: FakeClock, identity = "me") {
  const events: string[] = [];
  let signal: AbortSignal | undefined;
  const e = new LeaderElector(store as unknown as KubeClient, {
    namespace: "ns",
    name: "l",
    identity,
    clock,
    onStartedLeading: (s) => {
      signal = s;
      events.push("started");
    },
    onStoppedLeading: () => events.push("stopped"),
    onNewLeader: (id) => events.push(`leader ${id}`),
  });
  return { e, events, signal: () => signal };
}

describe("LeaderElector (in-memory lease, fake clock)", () => {
  it("acquires a free lease at once and renews it every retry period", async () => {
    const store = new LeaseStore();
    const clock = new FakeClock();
    const { e, events } = elector(store, clock);
    const run = e.run();
    await settle();
    expect(e.isLeader).toBe(true);
    expect(events).toEqual(["leader me", "started"]);
    await clock.advance(2000);
    await clock.advance(2000);
    expect(store.writes).toEqual(["create me", "replace me", "replace me"]);
    await e.stop();
    await run;
    expect(store.lease?.spec?.holderIdentity).toBe(""); // released
    expect(events).toEqual(["leader me", "started", "stopped"]);
  });

  it("waits while another holder keeps renewing, and takes over leaseDuration after its last renewal", async () => {
    const store = new LeaseStore();
    const clock = new FakeClock();
    store.renewAs("other");
    const { e, events } = elector(store, clock);
    void e.run();
    for (let i = 0; i < 10; i++) {
      await clock.advance(2000);
      store.renewAs("other");
    }
    expect(e.isLeader).toBe(false);
    expect(events).toEqual(["leader other"]);
    // The holder stops renewing; 15 s (leaseDurationSeconds) after we last saw a change, at our next retry (every
    // 2–2.4 s), we take it: never before 15 s have passed since the renewal, and by 15 + 2 × 2.4 s.
    await clock.advance(14_999);
    expect(e.isLeader).toBe(false);
    await clock.advance(4801);
    expect(e.isLeader).toBe(true);
    expect(store.lease?.spec?.leaseTransitions).toBe(1);
    await e.stop();
  });

  it("steps down once no renewal succeeded for renewDeadline, without releasing", async () => {
    const store = new LeaseStore();
    const clock = new FakeClock();
    const { e, events, signal } = elector(store, clock);
    const run = e.run();
    await settle();
    expect(e.isLeader).toBe(true);
    store.down = true;
    await clock.advance(8000);
    expect(e.isLeader).toBe(true); // 8 s without a renewal: still inside the 10 s deadline
    await clock.advance(2000);
    await run;
    expect(e.isLeader).toBe(false);
    expect(signal()?.aborted).toBe(true);
    expect(events).toEqual(["leader me", "started", "stopped"]);
    store.down = false;
    expect(store.lease?.spec?.holderIdentity).toBe("me");
  });

  it("loses a race for a free lease to the candidate whose write landed first (409)", async () => {
    const store = new LeaseStore();
    const clock = new FakeClock();
    const a = elector(store, clock, "a");
    const b = elector(store, clock, "b");
    void a.e.run();
    void b.e.run();
    await settle();
    expect([a.e.isLeader, b.e.isLeader].filter(Boolean)).toHaveLength(1);
    for (let i = 0; i < 5; i++) await clock.advance(2000);
    expect([a.e.isLeader, b.e.isLeader].filter(Boolean)).toHaveLength(1);
    await a.e.stop();
    await b.e.stop();
  });

  it("refuses timings that cannot work", () => {
    const store = new LeaseStore();
    const base = { namespace: "ns", name: "l", identity: "x", onStartedLeading: () => {} };
    expect(() => new LeaderElector(store as unknown as KubeClient, { ...base, leaseDurationMs: 5000, renewDeadlineMs: 5000 })).toThrow(/leaseDurationMs must be greater/);
    expect(() => new LeaderElector(store as unknown as KubeClient, { ...base, renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toThrow(/renewDeadlineMs must be greater/);
    expect(() => new LeaderElector(store as unknown as KubeClient, { ...base, identity: "" })).toThrow(/identity is required/);
  });
});
