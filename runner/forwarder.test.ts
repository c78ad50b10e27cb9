import { describe, expect, it } from "vitest";
import type { WorkBatch, WorkEnvelope } from "./envelope.ts";
import { Forwarder, type ForwardSink } from "./forwarder.ts";

const env = (id: string, pad = ""): WorkEnvelope => ({ v: 1, id, graph: "g", task: { id, pad }, inputs: { a: { ok: true } }, submitted: 1 });

interface Sent {
  to: string;
  body: WorkEnvelope | WorkBatch;
  msgId: string;
  single: string | undefined;
}

/** Records what would be published; `acks` decides each publish's outcome (default: stored, not a duplicate). */
function recorder(acks: (s: Sent) => Promise<{ duplicate: boolean }> = async () => ({ duplicate: false })) {
  const sent: Sent[] = [];
  const sink: ForwardSink = {
    publish(to, body, msgId, task) {
      const s = { to, body: JSON.parse(body) as WorkEnvelope | WorkBatch, msgId, single: task?.id };
      sent.push(s);
      return acks(s);
    },
  };
  return { sent, sink };
}

/** A schedule the test runs by hand: one "turn of the event loop" ends when `endTurn()` is called. */
function manualTurns() {
  let queued: (() => void)[] = [];
  return {
    schedule: (fn: () => void) => void queued.push(fn),
    endTurn() {
      const run = queued;
      queued = [];
      for (const fn of run) fn();
    },
  };
}

describe("Forwarder", () => {
  it("sends a task that finishes alone as a plain message with its own id", async () => {
    const { sent, sink } = recorder();
    const turns = manualTurns();
    const f = new Forwarder(sink, { maxTasks: 100, maxBytes: 1e6 }, turns.schedule);
    const done = f.send("b", env("t1"), "t1|a|b");
    expect(sent).toEqual([]);
    turns.endTurn();
    expect(await done).toBe(false);
    expect(sent).toEqual([{ to: "b", body: env("t1"), msgId: "t1|a|b", single: "t1" }]);
  });

  it("gathers what goes to the same node in one turn into one batch, per node, in order", async () => {
    const { sent, sink } = recorder();
    const turns = manualTurns();
    const f = new Forwarder(sink, { maxTasks: 100, maxBytes: 1e6 }, turns.schedule);
    const all = [f.send("b", env("t1"), "t1|a|b"), f.send("c", env("t1"), "t1|a|c"), f.send("b", env("t2"), "t2|a|b"), f.send("b", env("t3"), "t3|a|b")];
    turns.endTurn();
    await Promise.all(all);
    expect(sent.map((s) => [s.to, s.single])).toEqual([
      ["b", undefined],
      ["c", "t1"],
    ]);
    expect((sent[0]!.body as WorkBatch).batch.map((e) => e.id)).toEqual(["t1", "t2", "t3"]);
    expect((sent[0]!.body as WorkBatch).batch[1]).toEqual(env("t2"));
    expect(sent[0]!.msgId).toMatch(/^batch:[\w-]{32}\|b$/);
  });

  it("derives a batch's id from its members, so the same batch sent again is recognised", async () => {
    /** The message id of a batch of these tasks sent together in one turn. */
    const idOf = async (ids: string[]): Promise<string> => {
      const { sent, sink } = recorder();
      const turns = manualTurns();
      const f = new Forwarder(sink, { maxTasks: 100, maxBytes: 1e6 }, turns.schedule);
      const p = ids.map((id) => f.send("b", env(id), `${id}|a|b`));
      turns.endTurn();
      await Promise.all(p);
      return sent[0]!.msgId;
    };
    const first = await idOf(["t1", "t2"]);
    expect(await idOf(["t1", "t2"])).toBe(first);
    expect(await idOf(["t1", "t3"])).not.toBe(first);
  });

  it("closes a batch at its task limit and at its byte limit without waiting for the turn to end", async () => {
    const { sent, sink } = recorder();
    const turns = manualTurns();
    const f = new Forwarder(sink, { maxTasks: 2, maxBytes: 1e6 }, turns.schedule);
    const p = [1, 2, 3, 4, 5].map((i) => f.send("b", env(`t${i}`), `t${i}|a|b`));
    expect(sent.map((s) => ("batch" in s.body ? s.body.batch.length : 1))).toEqual([2, 2]);
    turns.endTurn();
    await Promise.all(p);
    expect(sent.map((s) => ("batch" in s.body ? s.body.batch.length : 1))).toEqual([2, 2, 1]);

    const big = recorder();
    const size = JSON.stringify(env("t1", "x".repeat(300))).length;
    const g = new Forwarder(big.sink, { maxTasks: 100, maxBytes: 2 * size + 40 }, turns.schedule);
    const q = [1, 2, 3].map((i) => g.send("b", env(`t${i}`, "x".repeat(300)), `t${i}|a|b`));
    turns.endTurn();
    await Promise.all(q);
    expect(big.sent.map((s) => ("batch" in s.body ? s.body.batch.length : 1))).toEqual([2, 1]);
    for (const s of big.sent) expect(JSON.stringify(s.body).length).toBeLessThanOrEqual(2 * size + 40);
  });

  it("resolves every member with the batch's outcome: duplicate, or the publish error", async () => {
    let n = 0;
    const { sink } = recorder(async () => {
      n++;
      if (n === 1) return { duplicate: true };
      throw new Error("no JetStream acknowledgement");
    });
    const turns = manualTurns();
    const f = new Forwarder(sink, { maxTasks: 100, maxBytes: 1e6 }, turns.schedule);
    const first = [f.send("b", env("t1"), "t1|a|b"), f.send("b", env("t2"), "t2|a|b")];
    turns.endTurn();
    expect(await Promise.all(first)).toEqual([true, true]);
    const second = [f.send("b", env("t3"), "t3|a|b"), f.send("b", env("t4"), "t4|a|b")];
    turns.endTurn();
    for (const r of await Promise.allSettled(second)) expect(r).toMatchObject({ status: "rejected", reason: { message: "no JetStream acknowledgement" } });
  });

  it("gathers within a real turn of the event loop (setImmediate by default)", async () => {
    const { sent, sink } = recorder();
    const f = new Forwarder(sink, { maxTasks: 100, maxBytes: 1e6 });
    await Promise.all([f.send("b", env("t1"), "t1|a|b"), Promise.resolve().then(() => f.send("b", env("t2"), "t2|a|b"))]);
    expect(sent).toHaveLength(1);
    await f.send("b", env("t3"), "t3|a|b");
    expect(sent).toHaveLength(2);
    expect(sent[1]!.single).toBe("t3");
  });
});
