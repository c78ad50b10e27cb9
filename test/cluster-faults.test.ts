// Fault injection on a three-server JetStream cluster, with everything at 3 replicas: 10,000 tasks through a
// diamond (a -> b, c -> d, the fan-in joined in the KV bucket) served by four runner processes, while the server
// leading the work stream is killed with SIGKILL and restarted, while one server is paused with SIGSTOP for 10 s,
// and while all three are restarted one after another. Every accepted task must end with exactly one recorded
// result, and every result must be right: 0 lost, 0 duplicated, 0 wrong, with no process restarted by hand.
//
// Executions are counted outside the tested path: every job appends the task id to a file of its node (O_APPEND,
// written before the job returns). Execution is at least once (docs/nats.md), so a node may run a task again
// after a fault (an acknowledgement lost with the server that held it); the counts are reported, and bounded:
// each run is a delivery of a message, and a message is delivered at most --max-deliver times.
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { JobChainClient, connectNats } from "../runner/index.ts";
import { startNats, startNatsCluster, type NatsClusterHandle } from "./harness/nats.ts";
import { cli, hasStack } from "./helpers/cli.ts";
import { MATH_JOBS } from "./helpers/graphs.ts";
import { jobchain, type Proc } from "./helpers/procs.ts";
import { tempDir } from "./helpers/tmp.ts";
import { until } from "./helpers/until.ts";

const N = 10_000;
/** Tasks awaiting their results at once. */
const WINDOW = 1_000;
const MAX_DELIVER = 5;
/**
 * Well above a leader election, below the default 30 s so that messages whose acknowledgements were lost come
 * back soon. Much shorter, and a 10-s pause makes every message in hand come back several times (each a delivery
 * of the five it may have).
 */
const ACK_WAIT = 10;
const RUNNER_FLAGS = ["--graph", "diamond", "--replicas", "3", "--ack-wait", String(ACK_WAIT), "--max-deliver", String(MAX_DELIVER)];
const NODES = ["a", "b", "c", "d"] as const;

const COUNTED_JOBS = `
import { appendFileSync } from "node:fs";
import { Add, Sum } from "./math.mjs";

// Appends the task id to <JOBCHAIN_TEST_EXEC_DIR>/<node>.log on every execution (O_APPEND: whole lines, from any
// number of processes).
function count(node, taskId) {
  appendFileSync(process.env.JOBCHAIN_TEST_EXEC_DIR + "/" + node + ".log", taskId + "\\n");
}

export class CountedAdd extends Add {
  async run(task, ctx) {
    count(this.name, ctx.taskId);
    return super.run(task, ctx);
  }
}

export class CountedSum extends Sum {
  run(task, ctx) {
    count(this.name, ctx.taskId);
    return super.run(task, ctx);
  }
}
`;

const CONFIG = `
jobs:
  a: {type: CountedAdd, properties: {k: 1}}
  b: {type: CountedAdd, properties: {k: 10}}
  c: {type: CountedAdd, properties: {k: 100}}
  d: {type: CountedSum}
graphs:
  diamond:
    a: {next: [b, c]}
    b: {next: [d]}
    c: {next: [d]}
    d: {}
`;

let config: ReturnType<typeof tempDir>;
let procs: Proc[] = [];

beforeAll(() => {
  config = tempDir({ "jobchain.yaml": CONFIG, "jobs/math.mjs": MATH_JOBS, "jobs/counted.mjs": COUNTED_JOBS });
});
afterAll(() => config?.cleanup());
afterEach(async () => {
  await Promise.all(procs.map((p) => p.kill("SIGKILL")));
  procs = [];
});

/** Four runner processes, one per node; one of them takes its server list and replicas from the environment. */
async function startRunners(cluster: NatsClusterHandle, execDir: string): Promise<Proc[]> {
  const env = { JOBCHAIN_TEST_EXEC_DIR: execDir };
  const withoutReplicas = RUNNER_FLAGS.filter((f, i) => f !== "--replicas" && RUNNER_FLAGS[i - 1] !== "--replicas");
  const started = [
    ...["a", "b", "c"].map((node) => jobchain(["runner", config.dir, ...RUNNER_FLAGS, "--nodes", node, "--nats", cluster.url], env)),
    jobchain(["runner", config.dir, ...withoutReplicas, "--nodes", "d"], { ...env, JOBCHAIN_NATS_URL: cluster.url, JOBCHAIN_NATS_REPLICAS: "3" }),
  ];
  procs.push(...started);
  // Four runners creating replicated streams at once on two busy cores can take a while.
  await Promise.all(started.map((p) => p.waitFor("jobchain runner: serving", 120_000)));
  return started;
}

interface Tally {
  seen: Map<string, number>;
  wrong: string[];
}

/** Each task's outcome, counted by id and checked: d = (v+1+10) + (v+1+100). */
function check(t: Tally, o: { id: string; status: string; result?: unknown }): void {
  t.seen.set(o.id, (t.seen.get(o.id) ?? 0) + 1);
  const v = Number(o.id.slice(1));
  const r = o.result as { v?: number; from?: string[] } | undefined;
  if (o.status !== "succeeded" || r?.v !== 2 * v + 112 || r.from?.join() !== "b,c") t.wrong.push(`${o.id}: ${JSON.stringify(o).slice(0, 300)}`);
}

/** Executions per node from the counter files: total, distinct tasks, and the most runs of one task. */
function executions(execDir: string): Record<string, { runs: number; tasks: number; most: number }> {
  const out: Record<string, { runs: number; tasks: number; most: number }> = {};
  for (const node of NODES) {
    const file = path.join(execDir, `${node}.log`);
    const ids = readdirSync(execDir).includes(`${node}.log`) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
    const per = new Map<string, number>();
    for (const id of ids) per.set(id, (per.get(id) ?? 0) + 1);
    out[node] = { runs: ids.length, tasks: per.size, most: Math.max(0, ...per.values()) };
  }
  return out;
}

async function storedResults(nc: NatsConnection, stream: string): Promise<number> {
  return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
}

/**
 * Runs N tasks through the diamond on a fresh cluster and applies `fault` once `startAt` results are in; resolves
 * when every task has its outcome and the checks pass. Returns what the report needs.
 */
async function scenario(what: string, startAt: number, fault: (cluster: NatsClusterHandle, results: () => number) => Promise<string>): Promise<void> {
  const t0 = Date.now();
  await using cluster = await startNatsCluster();
  const execDir = config.write(`exec-${what.replace(/\W+/g, "-")}/.keep`, "").replace(/\/\.keep$/, "");
  const runners = await startRunners(cluster, execDir);
  const nc = await connectNats({ url: cluster.url, name: "cluster-faults-client" });
  const client = new JobChainClient({ nc });
  try {
    await client.resolveGraph("diamond");
    const t: Tally = { seen: new Map(), wrong: [] };
    let next = 0;
    // A window of tasks awaiting their results: each finished one makes room for the next.
    const worker = async (): Promise<void> => {
      while (next < N) {
        const i = next++;
        check(t, await client.run({ v: i }, { graph: "diamond", id: `t${i}`, wait: 300 }));
      }
    };
    const running = Promise.all(Array.from({ length: WINDOW }, worker));
    await until(() => t.seen.size >= startAt, 120_000, `${startAt} results before the fault (have ${t.seen.size})`);
    const faultAt = Date.now();
    // The longest time without a new result from the fault on: how long tasks stopped flowing.
    let lastCount = t.seen.size;
    let lastAt = faultAt;
    let stall = 0;
    let stallAt = "";
    const sampler = setInterval(() => {
      const now = Date.now();
      if (t.seen.size !== lastCount) {
        if (now - lastAt > stall) stallAt = `${((lastAt - faultAt) / 1000).toFixed(1)} s after the fault, at ${lastCount} results`;
        stall = Math.max(stall, now - lastAt);
        lastCount = t.seen.size;
        lastAt = now;
      }
    }, 100);
    const note = await fault(cluster, () => t.seen.size);
    await running;
    clearInterval(sampler);
    const runMs = Date.now() - faultAt;
    // Redeliveries of messages whose acknowledgements were lost would record results again now, if they could.
    await cluster.waitHealthy();
    await new Promise((r) => setTimeout(r, ACK_WAIT * 1000 + 2000));
    // A replica that is still catching up may answer with fewer: wait for N, which a lost result never reaches.
    let stored = 0;
    for (const deadline = Date.now() + 30_000; stored !== N && Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
      stored = await storedResults(nc, "JC_diamond_RESULTS").catch(() => stored);
    }
    const exec = executions(execDir);
    const counts = { lost: N - t.seen.size, duplicated: [...t.seen.values()].filter((n) => n > 1).length, wrong: t.wrong.length, stored };
    process.stderr.write(
      `cluster fault (${what}): ${note}; ${JSON.stringify(counts)}; executions per node ` +
        `${NODES.map((n) => `${n} ${exec[n]!.runs} (${exec[n]!.runs - N} again, most ${exec[n]!.most} of one task)`).join(", ")}; ` +
        `${((Date.now() - t0) / 1000).toFixed(1)} s in all, ${(runMs / 1000).toFixed(1)} s from the fault to the last result, ` +
        `longest time without a new result ${(stall / 1000).toFixed(1)} s (from ${stallAt})\n`,
    );
    expect(t.wrong.slice(0, 5)).toEqual([]);
    expect(counts).toEqual({ lost: 0, duplicated: 0, wrong: 0, stored: N });
    for (const node of NODES) {
      // Every task ran on every node, and no task ran more often than its messages can be delivered (after a
      // batch message came back, each of its tasks gets a message of its own: one delivery more).
      expect({ node, tasks: exec[node]!.tasks }).toEqual({ node, tasks: N });
      expect(exec[node]!.most).toBeLessThanOrEqual(MAX_DELIVER + 1);
    }
    // No runner had to be restarted by hand: all four are still serving.
    expect(runners.map((p) => p.child.exitCode ?? p.child.signalCode)).toEqual([null, null, null, null]);
    // Everything JobChain created has 3 replicas.
    const jsm = await jetstreamManager(nc);
    for (const stream of ["JC_diamond", "JC_diamond_RESULTS", "KV_JC_diamond_JOIN", "OBJ_JC_diamond_PAYLOADS", "KV_JC_GRAPHS"]) {
      expect({ stream, replicas: (await jsm.streams.info(stream)).config.num_replicas }).toEqual({ stream, replicas: 3 });
    }
    for (const node of NODES) {
      const ci = await jsm.consumers.info("JC_diamond", `node_${node}`);
      expect({ node, replicas: ci.config.num_replicas }).toEqual({ node, replicas: 3 });
    }
  } finally {
    await client.close();
    await nc.close();
  }
}

/** The server leading `stream`, waiting through an election. */
async function leaderOf(cluster: NatsClusterHandle, stream: string) {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    const leader = await cluster.streamLeader(stream).catch(() => undefined);
    if (leader) return leader;
  }
  throw new Error(`no leader of ${stream} within 60 s`);
}

describe("replicas the servers cannot place", { timeout: 60_000 }, () => {
  it("a runner asking for 3 replicas of one server exits 2 with a message naming --replicas, no stack", async () => {
    await using nats = await startNats();
    const r = await cli(["runner", config.dir, ...RUNNER_FLAGS, "--nats", nats.url], { env: { JOBCHAIN_TEST_EXEC_DIR: config.dir } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/JetStream cannot place JC_diamond with 3 replicas/);
    expect(r.stderr).toMatch(/hint: .*--replicas 1/);
    expect(hasStack(r.stderr)).toBe(false);
  });
});

describe("JetStream cluster faults (3 servers, replicas 3, 4 runners, diamond)", { timeout: 420_000 }, () => {
  it("kill -9 of the server leading the work stream, then its restart: 0 lost, 0 duplicated, 0 wrong", async () => {
    await scenario("leader killed", 2_000, async (cluster, results) => {
      const victim = await leaderOf(cluster, "JC_diamond");
      await victim.kill();
      const killedAt = Date.now();
      const before = results();
      // Tasks flow again without it (the two others elect new leaders), then it comes back and catches up.
      await until(() => results() >= Math.min(N, before + 1_000), 120_000, `1,000 results with the leader dead (have ${results() - before})`);
      const flowing = results() - before;
      const deadFor = Date.now() - killedAt;
      await victim.restart();
      const next = await leaderOf(cluster, "JC_diamond");
      return `killed ${victim.url} (leader of JC_diamond; now ${next === victim ? "it again" : next.url}), ${flowing} results in the ${(deadFor / 1000).toFixed(1)} s it was dead`;
    });
  });

  it("one server paused with SIGSTOP for 10 s: 0 lost, 0 duplicated, 0 wrong", async () => {
    await scenario("server paused", 2_000, async (cluster, results) => {
      const victim = await leaderOf(cluster, "JC_diamond");
      victim.pause();
      const before = results();
      await new Promise((r) => setTimeout(r, 10_000));
      const during = results() - before;
      victim.resume();
      return `paused ${victim.url} (leader of JC_diamond) for 10 s, ${during} results meanwhile`;
    });
  });

  it("rolling restart of all three servers: 0 lost, 0 duplicated, 0 wrong", async () => {
    await scenario("rolling restart", 1_000, async (cluster, results) => {
      const steps: string[] = [];
      for (const server of cluster.servers) {
        const before = results();
        await server.restart();
        // The next server goes only once this one has caught up (as a rolling upgrade does).
        await cluster.waitHealthy(120_000);
        steps.push(`${server.url} +${results() - before}`);
      }
      return `restarted one after another (results during each: ${steps.join(", ")})`;
    });
  });
});
