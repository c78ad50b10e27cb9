// Fault injection that counts: kill a runner, restart NATS, kill the submitting client. Every accepted task must
// end with exactly one recorded result and every result must be right: 0 lost, 0 duplicated.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { JobChainClient } from "../runner/index.ts";
import { startNats, type NatsServerHandle } from "./harness/nats.ts";
import { cli } from "./helpers/cli.ts";
import { mathConfig } from "./helpers/graphs.ts";
import { jobchain, startRunner, type Proc } from "./helpers/procs.ts";
import { until } from "./helpers/until.ts";

let config: { dir: string; cleanup: () => void };
let procs: Proc[] = [];
const ACK = ["--ack-wait", "2"];

beforeAll(() => {
  config = mathConfig();
});
afterAll(() => config?.cleanup());
afterEach(async () => {
  await Promise.all(procs.map((p) => p.kill("SIGKILL")));
  procs = [];
});

async function runners(nats: NatsServerHandle, graph: string, layout: string[][]): Promise<Proc[]> {
  const started = await Promise.all(layout.map((nodes) => startRunner(config.dir, ["--graph", graph, "--nodes", nodes.join(","), ...ACK], nats.url)));
  procs.push(...started);
  return started;
}

async function storedResults(nc: NatsConnection, stream: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.info(stream)).state.messages;
}

/** Counts every result the client sees, per task id, and checks each value. */
function tally(expected: (i: number) => number) {
  const seen = new Map<string, number>();
  let wrong = 0;
  return {
    seen,
    get wrong() {
      return wrong;
    },
    add(o: { id: string; status: string; result?: unknown }) {
      seen.set(o.id, (seen.get(o.id) ?? 0) + 1);
      const i = Number(o.id.slice(1));
      if (o.status !== "succeeded" || (o.result as { v: number }).v !== expected(i)) wrong++;
    },
    duplicates: () => [...seen.values()].filter((n) => n > 1).length,
  };
}


describe("fault injection", { timeout: 300_000 }, () => {
  it("kill -9 of a runner with 10,000 tasks in flight (3 jobs, 2 replicas each): 0 lost, 0 duplicated", async () => {
    await using nats = await startNats();
    const rs = await runners(nats, "linear", [["a"], ["a"], ["b"], ["b"], ["c"], ["c"]]);
    const nc = await connect(nats.connectOptions);
    const client = new JobChainClient({ nc });
    const t = tally((i) => i + 111);
    const abort = new AbortController();
    const collecting = (async () => {
      for await (const o of client.results("linear", abort.signal)) t.add(o);
    })();
    await client.resolveGraph("linear");
    const N = 10_000;
    const submitting = (async () => {
      const batch: Promise<unknown>[] = [];
      for (let i = 0; i < N; i++) {
        batch.push(client.submit({ v: i }, { graph: "linear", id: `t${i}` }));
        if (batch.length >= 500) await Promise.all(batch.splice(0));
      }
      await Promise.all(batch);
    })();
    await until(() => t.seen.size >= 1500, 120_000, "1,500 results before the kill");
    const victim = rs[2]!; // a replica of b, mid-stream
    expect(await victim.kill("SIGKILL")).toBe("SIGKILL");
    await submitting;
    await until(() => t.seen.size >= N, 180_000, `all ${N} results (have ${t.seen.size})`);
    await new Promise((r) => setTimeout(r, 3000)); // redeliveries after the kill would show up now
    abort.abort();
    await collecting.catch(() => undefined);
    expect({ lost: N - t.seen.size, duplicated: t.duplicates(), wrong: t.wrong }).toEqual({ lost: 0, duplicated: 0, wrong: 0 });
    expect(await storedResults(nc, "JC_linear_RESULTS")).toBe(N);
    await client.close();
    await nc.close();
  });

  it("kill -9 of a runner while batches of tasks are in flight: 0 lost, 0 duplicated", async () => {
    await using nats = await startNats();
    const rs = await runners(nats, "linear", [["a"], ["b"], ["b"], ["c"]]);
    const nc = await connect(nats.connectOptions);
    const client = new JobChainClient({ nc, batch: 50 });
    const t = tally((i) => i + 111);
    const N = 10_000;
    const ids = Array.from({ length: N }, (_, i) => `t${i}`);
    const runs = ids.map((id, i) => client.run({ v: i }, { graph: "linear", id }).then((o) => t.add(o)));
    await until(() => t.seen.size >= 1000, 120_000, "1,000 results before the kill");
    expect(await rs[1]!.kill("SIGKILL")).toBe("SIGKILL");
    await Promise.all(runs);
    expect({ lost: N - t.seen.size, duplicated: t.duplicates(), wrong: t.wrong }).toEqual({ lost: 0, duplicated: 0, wrong: 0 });
    expect(await storedResults(nc, "JC_linear_RESULTS")).toBe(N);
    await client.close();
    await nc.close();
  });

  it("a message that crashes every runner it reaches ends as a recorded failure after max_deliver deliveries", async () => {
    await using nats = await startNats();
    const rs = await Promise.all([1, 2, 3].map(() => startRunner(config.dir, ["--graph", "crashing", "--ack-wait", "1", "--max-deliver", "2"], nats.url)));
    procs.push(...rs);
    const sub = await cli(["submit", "--graph", "crashing", "--input", '{"id":"poison"}', "--no-wait", "--nats", nats.url]);
    expect(sub.code).toBe(0);
    const r = await cli(["results", "--graph", "crashing", "--id", "poison", "--wait", "60", "--nats", nats.url], { timeoutMs: 90_000 });
    expect(r.lines).toEqual([
      { id: "poison", graph: "crashing", status: "failed", task: { id: "poison" }, error: { job: "crash", message: "no runner completed this job in 2 deliveries" } },
    ]);
    expect(r.code).toBe(1);
    const died = (await Promise.all(rs.map((p) => Promise.race([p.exited, new Promise((res) => setTimeout(() => res("alive"), 100))])))).filter((x) => x === "SIGKILL");
    expect(died).toHaveLength(2);
  });

  it("a poison task in a batch fails alone: the batch that comes back is split into a message per task", async () => {
    await using nats = await startNats();
    const flags = ["--graph", "poisoned", "--ack-wait", "1", "--max-deliver", "3"];
    procs.push(await startRunner(config.dir, [...flags, "--nodes", "a"], nats.url));
    const crashers = await Promise.all([1, 2, 3, 4, 5].map(() => startRunner(config.dir, [...flags, "--nodes", "crashif"], nats.url)));
    procs.push(...crashers);
    const inputs = path.join(config.dir, "poisoned.jsonl");
    const tasks = [1, 2, 3, 4, 5, 6].map((n) => (n === 4 ? { id: "poison", n, crash: true } : { id: `ok${n}`, n }));
    writeFileSync(inputs, tasks.map((t) => JSON.stringify(t)).join("\n") + "\n");
    // One submission batch: node a sends all six on to crashif as one message.
    const r = await cli(["submit", "--graph", "poisoned", "--inputs", inputs, "--batch", "6", "--nats", nats.url], { timeoutMs: 90_000 });
    const byId = Object.fromEntries(r.lines.map((l) => [l.id, l]));
    expect(Object.keys(byId).sort()).toEqual(["ok1", "ok2", "ok3", "ok5", "ok6", "poison"]);
    for (const n of [1, 2, 3, 5, 6]) expect(byId[`ok${n}`]).toMatchObject({ status: "succeeded", result: { ok: n } });
    expect(byId.poison).toMatchObject({ status: "failed", error: { job: "crashif", message: "no runner completed this job in 3 deliveries" } });
    expect(r.code).toBe(1);
  });

  it("restart of nats-server (file storage) mid-run: 0 lost, 0 duplicated", async () => {
    await using nats = await startNats();
    await runners(nats, "diamond", [["a"], ["b", "c"], ["d"]]);
    const nc = await connect({ ...nats.connectOptions, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const client = new JobChainClient({ nc });
    // A follower of every result on a connection of its own, reading across the restart too.
    const followerNc = await connect({ ...nats.connectOptions, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const follower = new JobChainClient({ nc: followerNc });
    await follower.resolveGraph("diamond");
    const followed = tally((i) => i + 1 + 10 + i + 1 + 100);
    const abort = new AbortController();
    const following = (async () => {
      for await (const o of follower.results("diamond", abort.signal)) followed.add(o);
    })();
    const N = 3_000;
    const ids = Array.from({ length: N }, (_, i) => `t${i}`);
    // Waiting across the restart: results recorded after it reach the same waiters.
    const running = Promise.all(ids.map((id, i) => client.run({ v: i }, { graph: "diamond", id, wait: 240 })));
    await until(async () => (await storedResults(nc, "JC_diamond_RESULTS").catch(() => 0)) >= 300, 120_000, "300 results before the restart");
    await nats.restart({ kill: true });
    const outcomes = await running;
    const t = tally((i) => i + 1 + 10 + i + 1 + 100);
    for (const o of outcomes) t.add(o);
    expect({ lost: N - t.seen.size, duplicated: t.duplicates(), wrong: t.wrong }).toEqual({ lost: 0, duplicated: 0, wrong: 0 });
    expect(await storedResults(nc, "JC_diamond_RESULTS")).toBe(N);
    // The follower reads on after the restart at once (not after its consumer's heartbeats time out, 60 s).
    await until(() => followed.seen.size >= N, 30_000, `the follower to see all ${N} results (has ${followed.seen.size})`);
    abort.abort();
    await following;
    expect({ lost: N - followed.seen.size, duplicated: followed.duplicates(), wrong: followed.wrong }).toEqual({ lost: 0, duplicated: 0, wrong: 0 });
    await follower.close();
    await followerNc.close();
    await client.close();
    await nc.close();
  });

  it("kill -9 of the submitting client, then the same task ids again: each result once", async () => {
    await using nats = await startNats();
    await runners(nats, "linear", [["a", "b", "c"]]);
    const N = 5_000;
    const file = path.join(config.dir, "resubmit.jsonl");
    writeFileSync(file, Array.from({ length: N }, (_, i) => JSON.stringify({ id: `t${i}`, v: i })).join("\n") + "\n");
    const first = jobchain(["submit", "--graph", "linear", "--inputs", file, "--nats", nats.url]);
    procs.push(first);
    const nc = await connect(nats.connectOptions);
    await until(async () => (await storedResults(nc, "JC_linear_RESULTS").catch(() => 0)) >= 500, 120_000, "500 results before the kill");
    await first.kill("SIGKILL");
    const printedBefore = first.stdout().split("\n").filter(Boolean).length;
    const second = await cli(["submit", "--graph", "linear", "--inputs", file, "--nats", nats.url], { timeoutMs: 240_000 });
    expect(second.code).toBe(0);
    const t = tally((i) => i + 111);
    for (const l of second.lines) t.add(l as never);
    expect({ lost: N - t.seen.size, duplicated: t.duplicates(), wrong: t.wrong }).toEqual({ lost: 0, duplicated: 0, wrong: 0 });
    expect(printedBefore).toBeLessThan(N);
    expect(await storedResults(nc, "JC_linear_RESULTS")).toBe(N);
    expect(readFileSync(file, "utf8").split("\n").filter(Boolean)).toHaveLength(N);
    await nc.close();
  });
});
