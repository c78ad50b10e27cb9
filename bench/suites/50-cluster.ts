// JobChain on a three-server JetStream cluster with everything at 3 replicas, beside the same graph on one server
// with 1 replica, in the same run: the 3-job linear Echo graph with a runner process per job (the `distributed`
// suite's layout, its Driver), fed by the TypeScript JobChainClient in this process.
//
//   - throughput at full load (a window of tasks awaiting results), one server / replicas 1 and cluster / replicas 3
//   - per-hop p50 at half of each one's own full-load rate
//   - the time from the death (SIGKILL) of the server leading the work stream to tasks flowing again, under a
//     steady load of a quarter of the cluster's full-load rate
//
// Runners are given every server's URL (`--nats a,b,c`); the client picks one at random, as each runner does.
// Knobs: BENCH_CLUSTER_TASKS, _WARMUP, _RUNS.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { JobChainClient } from "../../runner/index.ts";
import { startNats, startNatsCluster, type NatsClusterHandle, type NatsServerHandle } from "../../test/harness/nats.ts";
import type { BenchRow, BenchSuite } from "../types.ts";
// The distributed suite's configuration (only its per_job graph is served here), driver and runner start.
import { CONFIG, Driver, engineTime, startRunners, type Phase } from "./40-distributed.ts";
import { stopAll, type CliProcess } from "./lib/procs.ts";
import { fmtInt, median, now, percentiles, rate, sleep } from "./lib/stats.ts";

const env = process.env;
const TASKS = Number(env.BENCH_CLUSTER_TASKS ?? 10_000);
const WARMUP = Number(env.BENCH_CLUSTER_WARMUP ?? 10_000);
const RUNS = Number(env.BENCH_CLUSTER_RUNS ?? 3);
const WINDOW = 2_000;
const PACED_SECONDS = 2;
const PACED_RUNS = 3;
/** Seconds of steady load before the leader is killed, and the longest wait for tasks to flow again. */
const BEFORE_KILL_S = 3;
const RECOVERY_CAP_S = 90;


interface Layout {
  perSec: number;
  runs: number[];
  phases: Phase[];
  half: number;
  /** Per-hop p50 (ms) of each paced run, in run order, and whether each kept up. */
  hops: { p50: number; sustained: boolean }[];
}

/** Full-load runs after a warm-up, then paced runs at half the median rate (as the distributed suite does). */
async function measure(nc: NatsConnection, procs: CliProcess[], engine: number): Promise<Layout> {
  const d = new Driver(nc, "per_job");
  try {
    await d.start();
    await d.fullLoad(WARMUP, WINDOW);
    const phases: Phase[] = [];
    for (let r = 0; r < RUNS; r++) phases.push(await d.fullLoad(TASKS, WINDOW));
    const runs = phases.map((p) => rate(p.completed, p.ms));
    const perSec = median(runs);
    const half = Math.max(100, Math.round(perSec / 2));
    await sleep(2_000);
    await d.paced(half, PACED_SECONDS);
    const hops: Layout["hops"] = [];
    for (let r = 0; r < PACED_RUNS; r++) {
      const p = await d.paced(half, PACED_SECONDS);
      const [e50] = percentiles(p.e2e, [50]);
      hops.push({ p50: (e50! - engine) / 4, sustained: p.backlog <= half * 0.25 && !p.capped });
    }
    const dead = procs.find((p) => p.exited);
    if (dead) throw new Error(`${dead.name} exited during the measurement:\n${dead.log().slice(-1500)}`);
    return { perSec, runs, phases, half, hops };
  } finally {
    await d.close();
  }
}

const hopP50 = (l: Layout): number => median(l.hops.map((h) => h.p50));

interface Recovery {
  /** ms from the kill to the first result after the longest stretch without one that followed it. */
  flowing: number | undefined;
  /** ms from the kill to the first result of a task submitted after it. */
  firstAfterKill: number | undefined;
  /** ms from the kill until results came at half the offered rate again (over 1 s). */
  rateBack: number | undefined;
  /** Longest time without any result, ms. */
  longestGap: number;
  lost: number;
  killed: string;
  rate: number;
  /** ms from the kill until the work stream had a new leader. */
  elected: number | undefined;
}

/**
 * Submits at `perSecond` (1 ms ticks), kills the server leading the work stream after BEFORE_KILL_S, and
 * measures how long until tasks flow again; then restarts it and waits for every task's result.
 */
async function leaderDeath(cluster: NatsClusterHandle, perSecond: number): Promise<Recovery> {
  const nc = await connect({ ...cluster.connectOptions, name: "bench-cluster-recovery", maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const client = new JobChainClient({ nc });
  try {
    await client.resolveGraph("per_job");
    const prefix = `rec-${Date.now().toString(36)}-`;
    const done: number[] = [];
    const pending: Promise<unknown>[] = [];
    let seq = 0;
    let killAt = Number.POSITIVE_INFINITY;
    let firstAfterKill: number | undefined;
    let elected: number | undefined;
    const submit = (): void => {
      const at = now();
      pending.push(
        client.run({ i: seq }, { graph: "per_job", id: `${prefix}${seq++}`, wait: 240 }).then((o) => {
          const t = now();
          if (o.status === "succeeded") done.push(t);
          if (at > killAt && firstAfterKill === undefined) firstAfterKill = t - killAt;
        }),
      );
    };
    const t0 = now();
    let victim: NatsServerHandle | undefined;
    const end = t0 + (BEFORE_KILL_S + RECOVERY_CAP_S) * 1000;
    let submitted = 0;
    while (now() < end) {
      const due = Math.floor(((now() - t0) / 1000) * perSecond);
      while (submitted < due) {
        submit();
        submitted++;
      }
      if (!victim && now() - t0 >= BEFORE_KILL_S * 1000) {
        victim = await cluster.streamLeader("JC_per_job");
        if (!victim) throw new Error("the work stream JC_per_job has no leader");
        killAt = now();
        await victim.kill();
        const dead = victim;
        void (async () => {
          while (elected === undefined && now() - killAt < RECOVERY_CAP_S * 1000) {
            const leader = await cluster.streamLeader("JC_per_job").catch(() => undefined);
            if (leader && leader !== dead) elected = now() - killAt;
            else await sleep(50);
          }
        })();
      }
      // Flowing again at half the offered rate over the last second: stop the steady load there.
      if (victim && firstAfterKill !== undefined) {
        const recent = done.filter((t) => t > now() - 1000 && t > killAt).length;
        if (recent >= perSecond / 2 && now() - killAt > 1000) break;
      }
      await sleep(1);
    }
    const rateBack = firstAfterKill !== undefined && now() < end ? now() - killAt : undefined;
    // Flowing again: the end of the longest stretch without a result that the kill fell into or began.
    const times = [...done].sort((a, b) => a - b);
    let prev = times.filter((t) => t <= killAt).at(-1) ?? killAt;
    let flowing: number | undefined;
    let widest = 0;
    for (const t of times) {
      if (t <= killAt) continue;
      if (t - prev > widest) {
        widest = t - prev;
        flowing = t - killAt;
      }
      prev = t;
    }
    await victim?.restart();
    await Promise.all(pending);
    const sorted = [...done].sort((a, b) => a - b);
    let longestGap = 0;
    for (let i = 1; i < sorted.length; i++) longestGap = Math.max(longestGap, sorted[i]! - sorted[i - 1]!);
    await cluster.waitHealthy(120_000);
    return { flowing, firstAfterKill, rateBack, longestGap, lost: submitted - done.length, killed: victim?.url ?? "none", rate: perSecond, elected };
  } finally {
    await client.close();
    await nc.close();
  }
}

const suite: BenchSuite = {
  name: "cluster",
  async run() {
    const dir = mkdtempSync(path.join(os.tmpdir(), "jobchain-bench-cluster-"));
    const config = path.join(dir, "jobchain.yaml");
    writeFileSync(config, CONFIG);
    let single: NatsServerHandle | undefined;
    let cluster: NatsClusterHandle | undefined;
    let procs: CliProcess[] = [];
    let nc: NatsConnection | undefined;
    try {
      const engine = await engineTime(config);

      single = await startNats();
      procs = await startRunners(single, config, "per_job", ["a", "b", "c"], ["--replicas", "1"]);
      nc = await connect({ ...single.connectOptions, name: "bench-cluster-r1" });
      const one = await measure(nc, procs, engine);
      await nc.close();
      await stopAll(procs);
      procs = [];
      await single.stop();
      single = undefined;

      cluster = await startNatsCluster();
      procs = await startRunners(cluster, config, "per_job", ["a", "b", "c"], ["--replicas", "3"]);
      nc = await connect({ ...cluster.connectOptions, name: "bench-cluster-r3" });
      const three = await measure(nc, procs, engine);
      await nc.close();
      nc = undefined;
      const rec = await leaderDeath(cluster, Math.max(100, Math.round(three.perSec / 4)));
      const alive = procs.filter((p) => !p.exited).length;

      const hop1 = hopP50(one);
      const hop3 = hopP50(three);
      const hopNote = (l: Layout) =>
        `${fmtInt(l.half)} tasks/s in 1 ms ticks, median of ${PACED_RUNS} runs of ${PACED_SECONDS} s (per-hop p50s ` +
        `${l.hops.map((h) => fmtInt(h.p50 * 1000)).join(", ")} µs); (end-to-end p50 − engine ${fmtInt(engine * 1000)} µs) ÷ 4 hops` +
        (l.hops.some((h) => !h.sustained) ? `; NOT sustained in ${l.hops.filter((h) => !h.sustained).length} runs` : "");
      const common = `3-job linear Echo graph, a runner process per job, ${fmtInt(WINDOW)} awaiting results, JobChainClient run() per task, file storage`;
      const rows: BenchRow[] = [
        {
          name: "one server, replicas 1: 3-job linear, a runner per job",
          value: one.perSec,
          unit: "tasks/s",
          note: `median of ${RUNS} × ${fmtInt(TASKS)} tasks (${one.runs.map(fmtInt).join(", ")}/s) after ${fmtInt(WARMUP)} warm-up; ${common}`,
        },
        {
          name: "3-server cluster, replicas 3: 3-job linear, a runner per job",
          value: three.perSec,
          unit: "tasks/s",
          note:
            `median of ${RUNS} × ${fmtInt(TASKS)} tasks (${three.runs.map(fmtInt).join(", ")}/s); the same, with work, results, ` +
            `join and payload streams and the node consumers at 3 replicas on 3 nats-servers (loopback, all on this machine)`,
        },
        {
          name: "cluster replicas 3 ÷ one server replicas 1, throughput",
          value: three.perSec / one.perSec,
          unit: "x",
          note: `every stored message is written by 3 servers and confirmed by 2 before its ack; all on the same 2 cores`,
        },
        { name: "one server, replicas 1: per-hop p50 at half load", value: hop1 * 1000, unit: "µs", note: hopNote(one) },
        { name: "3-server cluster, replicas 3: per-hop p50 at half load", value: hop3 * 1000, unit: "µs", note: hopNote(three) },
        { name: "cluster replicas 3 ÷ one server replicas 1, per-hop p50", value: hop3 / hop1, unit: "x", note: "each at half its own full-load rate" },
        {
          name: "work stream leader killed (SIGKILL): until tasks flow again",
          value: rec.flowing ?? Number.NaN,
          unit: "ms",
          note:
            `steady ${fmtInt(rec.rate)} tasks/s (a quarter of the cluster's full-load rate), the server leading JC_per_job killed ` +
            `after ${BEFORE_KILL_S} s: ms from the kill to the first result after the longest stretch without one ` +
            `(${fmtInt(rec.longestGap)} ms without a result); a new leader of JC_per_job elected after ` +
            `${rec.elected === undefined ? "n/a" : `${fmtInt(rec.elected)} ms`}; the first result of a task submitted after the kill ` +
            `(behind the backlog) after ${rec.firstAfterKill === undefined ? "n/a" : `${fmtInt(rec.firstAfterKill)} ms`}; results at half ` +
            `the offered rate again after ${rec.rateBack === undefined ? "n/a" : `${fmtInt(rec.rateBack)} ms`}; then the server ` +
            `restarted: ${rec.lost} of the tasks without a result, runners alive ${alive} of 3`,
        },
      ];
      return rows;
    } finally {
      await stopAll(procs, 5_000);
      await nc?.close().catch(() => undefined);
      await single?.stop();
      await cluster?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
export default suite;
