// Distributed execution through real runner processes and a real nats-server: the same results as the embedded
// engine, duplicates ignored, large payloads, draining, cleanup, shared rate limits.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { JobChainClient } from "../runner/index.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNats, type NatsServerHandle } from "./harness/nats.ts";
import { cli } from "./helpers/cli.ts";
import { mathConfig } from "./helpers/graphs.ts";
import { until } from "./helpers/until.ts";
import { jobchain, startRunner, type Proc } from "./helpers/procs.ts";

let nats: NatsServerHandle;
let config: { dir: string; cleanup: () => void };
const procs: Proc[] = [];

beforeAll(async () => {
  nats = await startNats();
  config = mathConfig();
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill("SIGKILL")));
  await nats?.stop();
  config?.cleanup();
});

async function runner(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const p = await startRunner(config.dir, args, nats.url, env);
  procs.push(p);
  return p;
}

const byId = (lines: Record<string, unknown>[]) => [...lines].sort((x, y) => String(x.id).localeCompare(String(y.id)));

const TASKS = Array.from({ length: 20 }, (_, i) => ({ id: `t${i}`, v: i }));

describe("distributed runners", () => {
  it("give exactly the embedded engine's results, with every node in its own process and replicas of the fan-in", async () => {
    const inputs = path.join(config.dir, "tasks.jsonl");
    const tasks = [...TASKS, { id: "bad", v: 1, fail_at: "c" }];
    writeFileSync(inputs, tasks.map((t) => JSON.stringify(t)).join("\n") + "\n");
    for (const n of ["a", "b", "c"]) await runner(["--graph", "diamond", "--nodes", n]);
    await runner(["--graph", "diamond", "--nodes", "d"]);
    await runner(["--graph", "diamond", "--nodes", "d"]);
    for (const graph of ["diamond"]) {
      const local = await cli(["run", config.dir, "--graph", graph, "--inputs", inputs]);
      const remote = await cli(["submit", "--graph", graph, "--inputs", inputs, "--nats", nats.url]);
      expect(remote.stderr).toBe("");
      expect(remote.code).toBe(local.code);
      expect(remote.code).toBe(1);
      expect(byId(remote.lines)).toEqual(byId(local.lines));
      expect(remote.lines).toHaveLength(21);
      expect(remote.lines.find((l) => l.id === "t3")!.result).toEqual({ v: 3 + 1 + 10 + 3 + 1 + 100, from: ["b", "c"] });
      expect(remote.lines.find((l) => l.id === "bad")!.error).toEqual({ job: "c", message: "failing at c", attempt: 1 });
    }
  });

  it("run linear, several-tail, retrying and save_result graphs like the embedded engine (one runner for all nodes)", async () => {
    await runner(["--graph", "linear", "--graph", "twotails", "--graph", "retrying"]);
    const inputs = path.join(config.dir, "tasks2.jsonl");
    writeFileSync(inputs, TASKS.map((t) => JSON.stringify(t)).join("\n") + "\n");
    for (const graph of ["linear", "twotails", "retrying"]) {
      const local = await cli(["run", config.dir, "--graph", graph, "--inputs", inputs]);
      const remote = await cli(["submit", config.dir, "--graph", graph, "--inputs", inputs, "--nats", nats.url]);
      expect({ graph, code: remote.code, stderr: remote.stderr }).toEqual({ graph, code: 0, stderr: "" });
      expect(byId(remote.lines)).toEqual(byId(local.lines));
    }
    const r = await cli(["submit", "--graph", "twotails", "--input", '{"id":"tt","v":1}', "--nats", nats.url]);
    expect(r.lines).toEqual([
      {
        id: "tt",
        graph: "twotails",
        status: "succeeded",
        task: { id: "tt", v: 1 },
        result: { b: { v: 1011 }, c: { v: 1101 } },
        saved: { keep: { v: 1001 } },
      },
    ]);
  });

  it("gives the same results when tasks travel in batches (submit --batch)", async () => {
    const inputs = path.join(config.dir, "tasks3.jsonl");
    writeFileSync(inputs, [...TASKS, { id: "bad", v: 1, fail_at: "c" }].map((t) => JSON.stringify(t)).join("\n") + "\n");
    for (const graph of ["diamond", "linear"]) {
      const local = await cli(["run", config.dir, "--graph", graph, "--inputs", inputs]);
      const remote = await cli(["submit", "--graph", graph, "--inputs", inputs, "--batch", "8", "--nats", nats.url]);
      expect({ graph, stderr: remote.stderr, code: remote.code }).toEqual({ graph, stderr: "", code: local.code });
      expect(byId(remote.lines)).toEqual(byId(local.lines));
    }
  });

  it("holds --concurrency as tasks at once, also when tasks arrive in batch messages", async () => {
    await runner(["--graph", "probed", "--nodes", "a"]);
    const probe = await runner(["--graph", "probed", "--nodes", "probe", "--concurrency", "3", "--metrics-port", "0"]);
    const inputs = path.join(config.dir, "probe.jsonl");
    writeFileSync(inputs, Array.from({ length: 30 }, (_, i) => JSON.stringify({ id: `p${i}`, sleep_ms: 30 })).join("\n") + "\n");
    // One submission batch: node a forwards all 30 tasks to the probe in one message.
    const r = await cli(["submit", "--graph", "probed", "--inputs", inputs, "--batch", "30", "--nats", nats.url]);
    expect({ code: r.code, stderr: r.stderr, n: r.lines.length }).toEqual({ code: 0, stderr: "", n: 30 });
    const peak = Math.max(...r.lines.map((l) => (l.result as { peak: number }).peak));
    expect(peak).toBe(3);
    // Metrics count tasks, not messages.
    const port = Number(/metrics on :(\d+)/.exec(probe.stderr())![1]);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toContain('jobchain_node_processed_total{graph="probed",node="probe"} 30');
    expect(text).toContain('jobchain_node_duration_seconds_count{graph="probed",node="probe"} 30');
  });

  it("ignores a repeated submission of the same task id and returns the one recorded result", async () => {
    const first = await cli(["submit", "--graph", "linear", "--input", '{"id":"dup-1","v":5}', "--nats", nats.url, "--no-wait"]);
    expect(first.lines).toEqual([{ id: "dup-1", graph: "linear", status: "submitted", task: { id: "dup-1", v: 5 } }]);
    const again = await cli(["submit", "--graph", "linear", "--input", '{"id":"dup-1","v":999}', "--nats", nats.url]);
    expect(again.lines).toEqual([{ id: "dup-1", graph: "linear", status: "succeeded", task: { id: "dup-1", v: 5 }, result: { v: 116 } }]);
    const fetched = await cli(["results", "--graph", "linear", "--id", "dup-1", "--id", "never-submitted", "--nats", nats.url]);
    expect(fetched.code).toBe(1);
    expect(fetched.lines).toEqual([
      { id: "dup-1", graph: "linear", status: "succeeded", task: { id: "dup-1", v: 5 }, result: { v: 116 } },
      { id: "never-submitted", graph: "linear", status: "pending" },
    ]);
    const nc = await connect(nats.connectOptions);
    const jsm = await jetstreamManager(nc);
    const m = await jsm.streams.getMessage("JC_linear_RESULTS", { last_by_subj: "jc.linear.-.result.dup-1" });
    expect(m?.seq).toBeGreaterThan(0);
    await nc.close();
  });

  it("accepts tasks for a graph from its configuration before any runner has started; they run once one does", async () => {
    await using fresh = await startNats();
    const task = { id: "early-1", v: 1 };
    const sub = await cli(["submit", config.dir, "--graph", "linear", "--input", JSON.stringify(task), "--no-wait", "--nats", fresh.url]);
    expect(sub.code).toBe(0);
    expect(sub.lines).toEqual([{ id: "early-1", graph: "linear", status: "submitted", task }]);
    expect(sub.stderr).toMatch(/no runner is serving 'a' of graph 'linear' right now; tasks wait in JetStream/);
    const pending = await cli(["results", config.dir, "--graph", "linear", "--id", "early-1", "--nats", fresh.url]);
    expect({ code: pending.code, lines: pending.lines }).toEqual({ code: 1, lines: [{ id: "early-1", graph: "linear", status: "pending" }] });
    procs.push(await startRunner(config.dir, ["--graph", "linear"], fresh.url));
    const done = await cli(["results", "--graph", "linear", "--id", "early-1", "--wait", "60", "--nats", fresh.url]);
    expect(done.code).toBe(0);
    expect(done.lines).toEqual([{ id: "early-1", graph: "linear", status: "succeeded", task, result: { v: 112 } }]);
  });

  it("leaves the stream settings runners were started with to them: a client only creates what is missing", async () => {
    await using fresh = await startNats();
    procs.push(await startRunner(config.dir, ["--graph", "linear", "--duplicate-window", "600"], fresh.url));
    const sub = await cli(["submit", config.dir, "--graph", "linear", "--input", '{"id":"dw-1","v":1}', "--nats", fresh.url]);
    expect(sub.code).toBe(0);
    const nc = await connect(fresh.connectOptions);
    const info = await (await jetstreamManager(nc)).streams.info("JC_linear");
    expect(info.config.duplicate_window).toBe(600 * 1e9);
    await nc.close();
  });

  it("serves several clients at once, each its own results, and any client reads any recorded result", async () => {
    await runner(["--graph", "linear"]);
    const clients = await Promise.all(
      [0, 1].map(async () => {
        const nc = await connect(nats.connectOptions);
        return { nc, client: new JobChainClient({ nc }) };
      }),
    );
    const outcomes = await Promise.all(
      clients.map(({ client }, k) =>
        Promise.all(Array.from({ length: 200 }, (_, i) => client.run({ v: i }, { graph: "linear", id: `mc${k}-${i}` }))),
      ),
    );
    outcomes.forEach((list, k) => {
      expect(list.map((o) => o.id)).toEqual(Array.from({ length: 200 }, (_, i) => `mc${k}-${i}`));
      expect(list.every((o, i) => o.status === "succeeded" && (o.result as { v: number }).v === i + 111)).toBe(true);
    });
    // A result recorded for another client's task is read from the stream.
    const other = await clients[1]!.client.result("mc0-7", { graph: "linear", timeout: 30 });
    expect(other).toMatchObject({ id: "mc0-7", status: "succeeded", result: { v: 118 } });
    for (const { client, nc } of clients) {
      await client.close();
      await nc.close();
    }
  });

  it("exits 2 with a clear message for an unknown graph or an unreachable server", async () => {
    await using empty = await startNats();
    const none = await cli(["submit", "--graph", "nope", "--input", "{}", "--nats", empty.url]);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(
      "jobchain: graph 'nope' is not known to this NATS server: no runner has published it (start a runner for it, or pass its configuration)\n",
    );
    await runner(["--graph", "linear"]);
    const unknown = await cli(["submit", "--graph", "nope", "--input", "{}", "--nats", nats.url]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/graph 'nope' is not known to this NATS server; runners have published: .*\blinear\b/);
    expect(unknown.stderr).toContain("hint: pass --graph with one of the ids above");
    const down = await cli(["submit", "--graph", "linear", "--input", "{}", "--nats", "nats://127.0.0.1:1"], { timeoutMs: 30_000 });
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/cannot connect to NATS at nats:\/\/127.0.0.1:1/);
    const scheme = await cli(["submit", "--graph", "linear", "--input", "{}", "--nats", "http://127.0.0.1:4222"]);
    expect(scheme.code).toBe(2);
    expect(scheme.stderr).toMatch(/^jobchain: unsupported NATS server URL 'http:\/\/127.0.0.1:4222'\n  hint: use nats:\/\/HOST:PORT/);
  });

  it("follows recorded results with 'results --follow', each once, also for a task that runs again", async () => {
    await runner(["--graph", "linear"]);
    const follow = jobchain(["results", "--graph", "linear", "--follow", "--nats", nats.url]);
    procs.push(follow);
    // Following has started once its consumer on the results stream exists.
    const nc = await connect(nats.connectOptions);
    const jsm = await jetstreamManager(nc);
    const consumers = async () => (await jsm.consumers.list("JC_linear_RESULTS").next()).length;
    await until(async () => (await consumers().catch(() => 0)) > 0, 20_000, "the follower's consumer");
    await nc.close();
    const inputs = path.join(config.dir, "follow.jsonl");
    writeFileSync(inputs, ["f1", "f2", "f3"].map((id, i) => JSON.stringify({ id, v: i })).join("\n") + "\n");
    expect((await cli(["submit", "--graph", "linear", "--inputs", inputs, "--nats", nats.url])).code).toBe(0);
    // The same ids again in a batch: not de-duplicated at submission, so they run again; the second results are
    // refused by the stream, and a follower must not see them.
    expect((await cli(["submit", "--graph", "linear", "--inputs", inputs, "--batch", "3", "--nats", nats.url])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await follow.kill("SIGINT")).toBe(0);
    const lines = follow.stdout().trim().split("\n").map((l) => JSON.parse(l) as { id: string; result: unknown });
    expect(lines.map((l) => [l.id, l.result]).sort()).toEqual([["f1", { v: 111 }], ["f2", { v: 112 }], ["f3", { v: 113 }]]);
  });

  it("serves metrics, drains on SIGTERM and exits 0", async () => {
    const r = await runner(["--graph", "metered", "--metrics-port", "0"]);
    const port = Number(/metrics on :(\d+)/.exec(r.stderr())![1]);
    await cli(["submit", "--graph", "metered", "--input", '{"v":1}', "--input", '{"v":2}', "--nats", nats.url]);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toMatch(/# TYPE jobchain_node_processed_total counter/);
    expect(text).toMatch(/jobchain_node_in_flight\{graph="metered",node="a"\} 0/);
    // The only runner of this graph: it ran both tasks through both nodes, in memory after a.
    expect(text).toContain('jobchain_node_processed_total{graph="metered",node="a"} 2');
    expect(await r.kill("SIGTERM")).toBe(0);
    expect(r.stderr()).toMatch(/SIGTERM: draining[\s\S]*stopped/);
  });

  it("moves payloads larger than the server's max_payload through the object store", async () => {
    await using small = await startNats({ maxPayload: 64 * 1024 });
    const p = await startRunner(config.dir, ["--graph", "linear"], small.url);
    procs.push(p);
    const big = "x".repeat(300_000);
    const r = await cli(["submit", "--graph", "linear", "--inputs", "-", "--nats", small.url], { stdin: JSON.stringify({ id: "big", v: 1, blob: big }) + "\n" });
    expect(r.stderr).toBe("");
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]!.result).toEqual({ v: 112 });
    expect((r.lines[0]!.task as { blob: string }).blob).toHaveLength(300_000);
    await p.kill("SIGTERM");
  });

  it("removes a graph's streams and buckets with 'nats cleanup'", async () => {
    const r = await cli(["nats", "cleanup", "--graph", "retrying", "--nats", nats.url]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("retrying: removed JC_retrying, JC_retrying_RESULTS, KV_JC_retrying_JOIN, OBJ_JC_retrying_PAYLOADS\n");
    const again = await cli(["nats", "cleanup", "--graph", "retrying", "--nats", nats.url]);
    expect(again.stdout).toBe("retrying: nothing to remove\n");
  });
});
