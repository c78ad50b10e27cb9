// The recorder's queueing, coalescing and spam limit against a recording client on a fake clock; the API-level
// behaviour (one Event whose count grows) is in test/operator/kube-client.test.ts against a real server.
import { describe, expect, it } from "vitest";
import type { KubeClient } from "./client.ts";
import { KubeApiError } from "./errors.ts";
import { EventRecorder } from "./events.ts";
import type { KubeObject } from "./resources.ts";
import { FakeClock } from "../../test/helpers/fake-clock.ts";

class RecordingClient {
  readonly writes: { verb: string; name: string; body: Record<string, unknown> }[] = [];
  failNext = 0;
  gate: Promise<void> = Promise.resolve();
  async create(_t: unknown, obj: KubeObject) {
    await this.gate;
    if (this.failNext-- > 0) throw new KubeApiError("refused", { status: 500, request: "POST events" });
    this.writes.push({ verb: "create", name: obj.metadata.name, body: obj });
    return obj;
  }
  async mergePatch(_t: unknown, _ns: string, name: string, patch: Record<string, unknown>) {
    await this.gate;
    this.writes.push({ verb: "patch", name, body: patch });
    return {};
  }
}

const target: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", namespace: "ns", uid: "u1" } };

describe("EventRecorder", () => {
  it("creates one Event, then bumps its count; repeats waiting in the queue become one write", async () => {
    const client = new RecordingClient();
    const rec = new EventRecorder(client as unknown as KubeClient, { component: "c", host: "h", clock: new FakeClock() });
    for (let i = 0; i < 3; i++) rec.event(target, "Warning", "Broken", "it broke");
    await rec.flush();
    let release!: () => void;
    client.gate = new Promise((r) => (release = r));
    rec.event(target, "Warning", "Broken", "it broke");
    await Promise.resolve();
    rec.event(target, "Warning", "Broken", "it broke"); // waits behind the write in progress
    rec.event(target, "Warning", "Broken", "it broke"); // coalesced with the previous one
    release();
    await rec.flush();
    expect(client.writes.map((w) => [w.verb, w.body.count])).toEqual([
      ["create", 3],
      ["patch", 4],
      ["patch", 6],
    ]);
    const created = client.writes[0]!.body as { involvedObject: Record<string, string>; type: string; source: Record<string, string> };
    expect(created.involvedObject).toEqual({ apiVersion: "v1", kind: "ConfigMap", name: "cm", namespace: "ns", uid: "u1" });
    expect(created.type).toBe("Warning");
    expect(created.source).toEqual({ component: "c", host: "h" });
    expect(client.writes.slice(1).every((w) => w.name === client.writes[0]!.name)).toBe(true);
  });

  it("starts a new Event after the 10-minute aggregation window", async () => {
    const clock = new FakeClock();
    const client = new RecordingClient();
    const rec = new EventRecorder(client as unknown as KubeClient, { component: "c", clock });
    rec.event(target, "Normal", "Scaled", "to 3");
    await rec.flush();
    await clock.advance(10 * 60_000);
    rec.event(target, "Normal", "Scaled", "to 3");
    await rec.flush();
    expect(client.writes.map((w) => w.verb)).toEqual(["create", "create"]);
  });

  it("never throws or blocks: failed writes are counted, later events still go out", async () => {
    const client = new RecordingClient();
    client.failNext = 1;
    const rec = new EventRecorder(client as unknown as KubeClient, { component: "c", clock: new FakeClock() });
    expect(() => rec.event(target, "Normal", "A", "a")).not.toThrow();
    await rec.flush();
    rec.event(target, "Normal", "B", "b");
    await rec.flush();
    expect(rec.counts.failed).toBe(1);
    expect(client.writes.map((w) => (w.body as { reason?: string }).reason)).toEqual(["B"]);
  });

  it("limits each object to a burst of 25 events, refilled at one per 5 minutes, and bounds the queue", async () => {
    const clock = new FakeClock();
    const client = new RecordingClient();
    const rec = new EventRecorder(client as unknown as KubeClient, { component: "c", clock, maxQueue: 1000 });
    for (let i = 0; i < 40; i++) rec.event(target, "Warning", `R${i}`, "distinct");
    await rec.flush();
    expect(client.writes).toHaveLength(25);
    expect(rec.counts.dropped).toBe(15);
    await clock.advance(5 * 60_000);
    rec.event(target, "Warning", "Later", "x");
    rec.event(target, "Warning", "Later2", "x");
    await rec.flush();
    expect(client.writes).toHaveLength(26);

    const small = new EventRecorder(client as unknown as KubeClient, { component: "c", clock, maxQueue: 2 });
    for (let i = 0; i < 5; i++) small.event({ metadata: { name: `o${i}`, namespace: "ns" } }, "Normal", "X", "x");
    expect(small.counts.dropped).toBe(3);
    await small.flush();
  });
});
