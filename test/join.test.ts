// Fan-in joins in the JOIN bucket against a real nats-server: inputs of one task that race (two replicas, or two
// branches arriving together) must complete the set exactly once, and a join that is done stays done.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InstanceBus } from "../runner/index.ts";
import { startNats, type NatsServerHandle } from "./harness/nats.ts";

let nats: NatsServerHandle;
let ncs: NatsConnection[];
let buses: InstanceBus[];

beforeAll(async () => {
  nats = await startNats();
  // Two connections, like two replicas of the fan-in's predecessors.
  ncs = await Promise.all([0, 1].map(() => connect(nats.connectOptions)));
  buses = await Promise.all(ncs.map((nc) => InstanceBus.open(nc, "joins", {}, { nodes: [], update: true })));
});

afterAll(async () => {
  for (const nc of ncs ?? []) await nc.close();
  await nats?.stop();
});

const env = (id: string) => ({ id, task: { id }, submitted: 1 });

describe("join inputs", () => {
  it("complete each task's set exactly once when its inputs race, with every input in it", async () => {
    const N = 300;
    const results = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const id = `t${i}`;
        // a, b and c for the same task at once, from both connections.
        const outcomes = await Promise.all(
          (["a", "b", "c"] as const).map((from, k) => buses[k % 2]!.addJoinInput(env(id), "d", ["a", "b", "c"], from, { from, i }, undefined)),
        );
        return outcomes.filter((o) => o !== undefined);
      }),
    );
    for (const [i, completed] of results.entries()) {
      expect(completed).toHaveLength(1);
      expect(completed[0]).toMatchObject({ inputs: { a: { from: "a", i }, b: { from: "b", i }, c: { from: "c", i } }, task: { id: `t${i}` } });
    }
  });

  it("answers 'done' to an input that comes again after the join's message went out", async () => {
    const first = await buses[0]!.addJoinInput(env("again"), "d", ["a", "b"], "a", { v: 1 }, undefined);
    expect(first).toBeUndefined();
    const second = await buses[1]!.addJoinInput(env("again"), "d", ["a", "b"], "b", { v: 2 }, undefined);
    expect(second).toMatchObject({ inputs: { a: { v: 1 }, b: { v: 2 } } });
    await buses[1]!.markJoinDone("again", "d");
    // A redelivered input (its runner died before acknowledging) must not start the join a second time.
    expect(await buses[0]!.addJoinInput(env("again"), "d", ["a", "b"], "a", { v: 1 }, undefined)).toBe("done");
  });
});
