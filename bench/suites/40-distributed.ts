// The distributed engine end to end: real `jobchain runner` processes (the compiled CLI, `make build`) against a
// harness nats-server (JetStream, file storage, loopback), fed by the TypeScript JobChainClient in this process
// (`run()` per task, a window of tasks awaiting results). Each throughput row also reports the NATS messages a task
// costs (the server's counters) and the CPU time a task costs in each process (/proc), which is where a 2-core
// machine's ceiling comes from.
//
//   - 3-job linear Echo graph, one runner process per job: tasks/s from submit to the result received by the
//     client, with a window of tasks awaiting results (4 NATS hops a task: submit->a, a->b, b->c, c->result)
//   - the same graph with one runner process serving all three jobs (the graph runs in memory per message:
//     2 hops a task)
//   - latency per hop at half the measured rate of the 3-runner layout (paced submissions)
//   - in the same run, for the ratios: a raw 3-hop JetStream pipeline (the floor, no JobChain code) at full load
//     and at half its own full-load rate, and a short BullMQ FlowProducer run of the same graph (the peer)
//   - idle memory of a runner process serving the three nodes
//
// Knobs for investigating (defaults are what `make bench` reports): BENCH_DIST_TASKS, _WARMUP, _WINDOW, _RUNS,
// BENCH_DIST_RUNNER_ARGS (extra `jobchain runner` flags) and BENCH_DIST_CPU_PROF=<dir> (a V8 CPU profile of every
// runner process, written when it stops).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { JobChain, instantiate, loadConfig } from "../../index.ts";
import { JobChainClient } from "../../runner/index.ts";
import { startNats, type NatsServerHandle } from "../../test/harness/nats.ts";
import type { BenchSuite } from "../types.ts";
import { trial as bullTrial } from "./lib/bullmq-flow.ts";
import { HOPS, pipelineFullLoad, pipelinePaced, startPipeline } from "./lib/pipeline.ts";
import { cpuMs, spawnCli, stopAll, type CliProcess } from "./lib/procs.ts";
import { startRedis, type RedisServerHandle } from "./lib/redis.ts";
import { fmtInt, median, now, percentiles, rate, sleep } from "./lib/stats.ts";

const env = process.env;
const TASKS = Number(env.BENCH_DIST_TASKS ?? 15_000);
/** Tasks run before measuring, so every process (runners, client, JIT) is at its steady state. */
const WARMUP = Number(env.BENCH_DIST_WARMUP ?? 15_000);
/** Tasks awaiting their results at once (submitted, result not yet received). */
const WINDOW = Number(env.BENCH_DIST_WINDOW ?? 2_000);
/** Full-load runs per layout; the median is reported. */
const RUNS = Number(env.BENCH_DIST_RUNS ?? 5);
const PACED_SECONDS = 2;
/** Paced runs per latency figure; the median run (by p50) is reported. */
const PACED_RUNS = 5;
/** Runner flags besides the graph and nodes, e.g. "--concurrency 1000". */
const RUNNER_ARGS = (env.BENCH_DIST_RUNNER_ARGS ?? "").split(/\s+/).filter(Boolean);
/** Node flags for the runner processes, e.g. "--max-semi-space-size=1". */
const RUNNER_NODE_ARGS = (env.BENCH_DIST_RUNNER_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
/** Set to a directory to write a V8 CPU profile of every runner process there (written when it exits). */
const CPU_PROF_DIR = env.BENCH_DIST_CPU_PROF;
const BULL_FLOWS = 3_000;
const BULL_WARMUP = 3_000;
const BULL_CONCURRENCY = 100;
const IDLE_MS = 2_000;
/** Longest any one measuring phase may run; a phase cut short says so. */
const PHASE_CAP_MS = 12_000;
const READY_MS = 20_000;

const fmtUs = (ms: number) => `${fmtInt(ms * 1000)} µs`;

/** Instances of the same 3-job linear Echo graph, one per layout, so each starts from empty consumers. */
export const CONFIG = `jobs:
  a: {type: Echo}
  b: {type: Echo}
  c: {type: Echo}
graphs:
  per_job:
    a: {next: [b]}
    b: {next: [c]}
    c: {next: []}
  one_runner:
    a: {next: [b]}
    b: {next: [c]}
    c: {next: []}
  per_task:
    a: {next: [b]}
    b: {next: [c]}
    c: {next: []}
`;

// ---- driving the client ------------------------------------------------------------------------------------------

export interface Phase {
  completed: number;
  failed: number;
  ms: number;
  /** End-to-end latencies (ms), submit call to result received. */
  e2e: number[];
  /** Tasks submitted and not yet answered when the last one was submitted (paced runs). */
  backlog: number;
  capped: boolean;
}

/**
 * Runs tasks through one JobChainClient the way an application does: `run()` per task (submit, then await the
 * task's result, which the client receives on its subscription to the instance's result subjects).
 */
export class Driver {
  readonly client: JobChainClient;
  readonly graph: string;
  private completed = 0;
  private failed = 0;
  private e2e: number[] = [];
  private wake: (() => void) | undefined;
  private error: unknown;
  private seq = 0;
  /** Task ids are unique across drivers: a repeated id would measure the duplicate path, not a task. */
  private readonly idPrefix = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}-`;
  /** Tasks of an abandoned (time-capped) phase that still count when they finish; ignored. */
  private epoch = 0;

  constructor(nc: NatsConnection, graph: string, batch = 1) {
    this.client = new JobChainClient({ nc, batch });
    this.graph = graph;
  }

  /** Resolves the graph and starts following its results before anything is timed. */
  async start(): Promise<void> {
    await this.client.resolveGraph(this.graph);
    await this.client.run({ warm: true }, { graph: this.graph, id: `warm-${Date.now()}` });
  }

  private submit(i: number): void {
    const id = `${this.idPrefix}${++this.seq}`;
    const epoch = this.epoch;
    const t0 = now();
    this.client.run({ i }, { graph: this.graph, id }).then(
      (o) => {
        if (epoch !== this.epoch) return;
        this.e2e.push(now() - t0);
        this.completed++;
        if (o.status !== "succeeded") this.failed++;
        this.poke();
      },
      (err) => {
        this.error ??= err;
        this.poke();
      },
    );
  }

  private poke(): void {
    const w = this.wake;
    if (w) {
      this.wake = undefined;
      w();
    }
  }

  private reset(): void {
    this.epoch++;
    this.completed = 0;
    this.failed = 0;
    this.e2e = [];
  }

  private idle(capMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, capMs);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private check(): void {
    if (this.error) throw this.error;
  }

  /** `n` tasks with at most `window` awaiting results. */
  async fullLoad(n: number, window: number): Promise<Phase> {
    this.reset();
    const t0 = now();
    let submitted = 0;
    let capped = false;
    while (this.completed < n) {
      this.check();
      while (submitted < n && submitted - this.completed < window) this.submit(submitted++);
      const left = PHASE_CAP_MS - (now() - t0);
      if (left <= 0) {
        capped = true;
        break;
      }
      await this.idle(Math.min(left, 1000));
    }
    const ms = now() - t0;
    this.check();
    return { completed: this.completed, failed: this.failed, ms, e2e: this.e2e, backlog: 0, capped };
  }

  /** Submits at `perSecond` (1 ms ticks) for `seconds`, then waits for the stragglers. */
  async paced(perSecond: number, seconds: number): Promise<Phase> {
    this.reset();
    const total = Math.round(perSecond * seconds);
    const t0 = now();
    let submitted = 0;
    while (submitted < total) {
      this.check();
      const due = Math.min(total, Math.floor(((now() - t0) / 1000) * perSecond));
      while (submitted < due) this.submit(submitted++);
      await sleep(1);
    }
    const backlog = total - this.completed;
    const deadline = now() + 10_000;
    while (this.completed < total && now() < deadline) await this.idle(deadline - now());
    this.check();
    const ms = now() - t0;
    const capped = this.completed < total;
    return { completed: this.completed, failed: this.failed, ms, e2e: this.e2e, backlog, capped };
  }

  async close(): Promise<void> {
    this.epoch++;
    await this.client.close();
  }
}

// ---- runner processes --------------------------------------------------------------------------------------------

export async function startRunners(
  server: { url: string },
  config: string,
  graph: string,
  nodeSets: (string | undefined)[],
  extra: string[] = [],
): Promise<CliProcess[]> {
  const procs = nodeSets.map((nodes) =>
    spawnCli(
      ["runner", config, "--graph", graph, ...(nodes ? ["--nodes", nodes] : []), "--nats", server.url, ...RUNNER_ARGS, ...extra],
      {
        name: `runner ${graph}${nodes ? ` --nodes ${nodes}` : ""}`,
        nodeArgs: [...RUNNER_NODE_ARGS, ...(CPU_PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${CPU_PROF_DIR}`] : [])],
        env: { JOBCHAIN_LOG_LEVEL: "warn" },
      },
    ),
  );
  try {
    await Promise.all(procs.map((p) => p.waitFor(/jobchain runner: serving/, READY_MS)));
  } catch (err) {
    await stopAll(procs, 2_000);
    throw new Error(`${(err as Error).message}\n(the runners run the compiled CLI: is dist/ built? \`make build\`)`);
  }
  return procs;
}

/** Median of `RUNS` full-load runs after a warm-up, with the phases for the notes. */
async function throughput(
  d: Driver,
  server: NatsServerHandle,
  procs: CliProcess[],
  between?: (run: number) => Promise<void>,
): Promise<{ perSec: number; runs: number[]; phases: Phase[]; msgsPerTask: string; cpu: string }> {
  await d.fullLoad(WARMUP, WINDOW);
  const phases: Phase[] = [];
  const before = await varz(server);
  // CPU is summed over the timed runs only (what `between` does is not the tasks' cost).
  const cpuNow = () => [cpuMs(server.pid), ...procs.map((p) => cpuMs(p.pid))];
  const spent = cpuNow().map(() => 0);
  let selfUs = 0;
  for (let r = 0; r < RUNS; r++) {
    const cpu0 = cpuNow();
    const self0 = process.cpuUsage();
    phases.push(await d.fullLoad(TASKS, WINDOW));
    const self = process.cpuUsage(self0);
    selfUs += self.user + self.system;
    cpuNow().forEach((ms, i) => (spent[i] = ms === undefined || cpu0[i] === undefined ? Number.NaN : spent[i]! + ms - cpu0[i]!));
    await between?.(r);
  }
  const after = await varz(server);
  const runs = phases.map((p) => rate(p.completed, p.ms));
  const n = phases.reduce((s, p) => s + p.completed, 0);
  const wall = phases.reduce((s, p) => s + p.ms, 0);
  const perTask = spent.map((ms) => (ms * 1000) / n);
  const client = selfUs / n;
  const total = perTask.reduce((s, v) => s + v, 0) + client;
  const cpu =
    `CPU a task: nats-server ${fmtInt(perTask[0]!)} µs, runner${procs.length > 1 ? "s" : ""} ` +
    `${perTask.slice(1).map(fmtInt).join("/")} µs, client ${fmtInt(client)} µs, total ${fmtInt(total)} µs ` +
    `(${((total * n) / 1000 / wall).toFixed(2)} cores busy on average)`;
  const msgsPerTask =
    before && after
      ? `nats-server saw ${((after.in_msgs - before.in_msgs) / n).toFixed(1)} msgs in and ${((after.out_msgs - before.out_msgs) / n).toFixed(1)} out a task, ` +
        `${fmtInt((after.in_bytes - before.in_bytes + after.out_bytes - before.out_bytes) / n)} B in+out`
      : "message counts unavailable";
  return { perSec: median(runs), runs, phases, msgsPerTask, cpu };
}

interface Varz {
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
}

/** The server's message counters from its monitoring endpoint. */
async function varz(server: NatsServerHandle): Promise<Varz | undefined> {
  if (!server.monitorUrl) return undefined;
  try {
    return (await (await fetch(`${server.monitorUrl}/varz`)).json()) as Varz;
  } catch {
    return undefined;
  }
}

/** Throws when a runner process died during a measurement (its rows would be meaningless). */
function checkAlive(procs: CliProcess[]): void {
  const dead = procs.find((p) => p.exited);
  if (dead) throw new Error(`${dead.name} exited during the measurement:\n${dead.log().slice(-1500)}`);
}

function phaseTrouble(phases: Phase[]): string {
  const failed = phases.reduce((s, p) => s + p.failed, 0);
  const capped = phases.filter((p) => p.capped).map((p) => `${fmtInt(p.completed)} of ${fmtInt(TASKS)}`);
  return (failed ? `; ${failed} tasks FAILED` : "") + (capped.length ? `; time-capped: ${capped.join(", ")}` : "");
}

// ---- the engine's own time ---------------------------------------------------------------------------------------

/** p50 of one task through the same 3 Echo jobs in an embedded chain, one at a time (what is not NATS). */
export async function engineTime(config: string): Promise<number> {
  const { config: cfg, registry } = await loadConfig(config);
  const chain = new JobChain(instantiate(cfg, registry).filter((g) => g.id === "per_job"));
  const lat: number[] = [];
  for (let i = 0; i < 3_000; i++) {
    const t = now();
    await chain.execute({ i }, {});
    if (i >= 1_000) lat.push(now() - t);
  }
  await chain.markInputCompleted();
  return percentiles(lat, [50])[0]!;
}

// ---- the floor: a raw 3-hop JetStream pipeline, same run -------------------------------------------------------

interface FloorResult {
  /** Full-load tasks/s with WINDOW tasks in the system. */
  perSec: number;
  fullCompleted: number;
  /** CPU time a task at full load, as text. */
  cpu: string;
  /** Paced runs at half the full-load rate. */
  pacedPerSec: number;
  paced: FloorPaced[];
}

interface FloorPaced {
  /** Per-hop latencies from timestamps in the payload (ms). */
  hop: number[];
  e2e: number[];
  backlog: number;
}

/**
 * submit -> s1 -> s2 -> s3 -> result, four file work-queue streams, a connection per stage, each stage acking
 * its input once its output is stored: the hops of the 3-runner layout with no JobChain code (all in this
 * process). First at full load (TASKS tasks, WINDOW in the system), then paced at half that rate, as the floor
 * suite measures its per-hop latency.
 */
async function floor(server: NatsServerHandle): Promise<FloorResult> {
  const p = await startPipeline(server, "FLOOR");
  try {
    await pipelineFullLoad(p, WARMUP, WINDOW, PHASE_CAP_MS);
    const server0 = cpuMs(server.pid);
    const self0 = process.cpuUsage();
    const [fullCompleted, fullMs] = await pipelineFullLoad(p, TASKS, WINDOW, PHASE_CAP_MS);
    const self = process.cpuUsage(self0);
    const serverUs = (((cpuMs(server.pid) ?? Number.NaN) - (server0 ?? Number.NaN)) * 1000) / fullCompleted;
    const cpu =
      `CPU a task: nats-server ${fmtInt(serverUs)} µs, the pipeline's ${HOPS + 1} connections (submit, 3 stages, result) ` +
      `${fmtInt((self.user + self.system) / fullCompleted)} µs`;
    const perSecond = Math.max(100, Math.round(rate(fullCompleted, fullMs) / 2));
    const paced: FloorPaced[] = [];
    for (let r = 0; r < PACED_RUNS; r++) {
      p.hops = [];
      p.e2e = [];
      p.record = true;
      const { backlog } = await pipelinePaced(p, perSecond, PACED_SECONDS);
      p.record = false;
      paced.push({ hop: p.hops, e2e: p.e2e, backlog });
    }
    return { perSec: rate(fullCompleted, fullMs), fullCompleted, cpu, pacedPerSec: perSecond, paced };
  } finally {
    await p.stop();
  }
}

// ---- the peer: BullMQ FlowProducer, the same graph -------------------------------------------------------------

/**
 * The BullMQ peer, measured in trials between JobChain's timed runs, so each ratio compares two figures taken
 * within seconds of each other on this machine, whose speed drifts from minute to minute.
 */
class BullPeer {
  readonly trials: { flows: number; ms: number }[] = [];
  private readonly redis: RedisServerHandle;
  private constructor(redis: RedisServerHandle) {
    this.redis = redis;
  }
  static async start(): Promise<BullPeer> {
    const peer = new BullPeer(await startRedis());
    await bullTrial(peer.redis, BULL_CONCURRENCY, BULL_WARMUP, "dist-warm", PHASE_CAP_MS);
    return peer;
  }
  get version(): string {
    return this.redis.version;
  }
  async trial(): Promise<void> {
    this.trials.push(await bullTrial(this.redis, BULL_CONCURRENCY, BULL_FLOWS, `dist-${this.trials.length}`, PHASE_CAP_MS));
  }
  get runs(): number[] {
    return this.trials.map((t) => rate(t.flows, t.ms));
  }
  get capped(): boolean {
    return this.trials.some((t) => t.flows < BULL_FLOWS);
  }
  stop(): Promise<void> {
    return this.redis.stop();
  }
}

// ---- the suite ---------------------------------------------------------------------------------------------------

function rssNote(procs: CliProcess[]): string {
  return procs.map((p) => `${(p.rssMB() ?? Number.NaN).toFixed(0)}`).join("/") + " MB";
}

/** Tasks per batch message in the batched row. */
const BATCH = 100;

const suite: BenchSuite = {
  name: "distributed",
  async run() {
    const dir = mkdtempSync(path.join(os.tmpdir(), "jobchain-bench-dist-"));
    const config = path.join(dir, "jobchain.yaml");
    writeFileSync(config, CONFIG);
    let server: NatsServerHandle | undefined;
    let nc: NatsConnection | undefined;
    let procs: CliProcess[] = [];
    const drivers: Driver[] = [];
    let bull: BullPeer | undefined;
    try {
      server = await startNats({ monitor: true });
      nc = await connect({ ...server.connectOptions, name: "bench-dist-client" });
      const flags = RUNNER_ARGS.length ? ` ${RUNNER_ARGS.join(" ")}` : "";
      const common =
        `task {"i":n}, ${fmtInt(WINDOW)} awaiting results, JobChainClient run() per task in the bench ` +
        `process, JetStream file storage`;

      // One runner process per job: throughput, then latency at half that rate.
      procs = await startRunners(server, config, "per_job", ["a", "b", "c"]);
      await sleep(IDLE_MS);
      const idlePerJob = rssNote(procs);
      const drive = async <T>(graph: string, batch: number, use: (d: Driver) => Promise<T>): Promise<T> => {
        const d = new Driver(nc!, graph, batch);
        drivers.push(d);
        await d.start();
        const out = await use(d);
        checkAlive(procs);
        await d.close();
        return out;
      };
      let loadedPerJob = "";
      let half = 0;
      const engine = await engineTime(config);
      const paced: Phase[] = [];
      // The peer's trials run between these timed runs (see BullPeer).
      bull = await BullPeer.start();
      const peer = bull;
      const t3 = await drive("per_job", 1, async (d) => {
        const t = await throughput(d, server!, procs, () => peer.trial());
        loadedPerJob = rssNote(procs);
        half = Math.max(100, Math.round(t.perSec / 2));
        // Steady state at half load, not the tail of the full-load runs (and the peer's trials): the runners
        // collect that garbage first, then the system runs at half load for a while before it is measured.
        await sleep(IDLE_MS);
        await d.paced(half, PACED_SECONDS);
        for (let r = 0; r < PACED_RUNS; r++) paced.push(await d.paced(half, PACED_SECONDS));
        return t;
      });
      // The same runners, with submissions gathered into batch messages (client option `batch`, submit --batch).
      const tb = await drive("per_job", BATCH, (d) => throughput(d, server!, procs));
      await stopAll(procs);
      procs = [];

      // A runner per job again, every task in a message of its own on every hop (no forwarding batches).
      procs = await startRunners(server, config, "per_task", ["a", "b", "c"], ["--forward-batch", "1"]);
      const ts = await drive("per_task", 1, (d) => throughput(d, server!, procs));
      await stopAll(procs);
      procs = [];

      // One runner process for the whole graph: its idle memory first, then throughput.
      procs = await startRunners(server, config, "one_runner", [undefined]);
      await sleep(IDLE_MS);
      const idleRss = procs[0]!.rssMB() ?? Number.NaN;
      const t1 = await drive("one_runner", 1, (d) => throughput(d, server!, procs));
      const loadedOne = rssNote(procs);
      await stopAll(procs);
      procs = [];

      // The floor and the peer, measured here for the ratios.
      const fl = await floor(server);

      // Latency: the median of the paced runs (by end-to-end p50); every run's p50 in the note.
      const inOrder = paced.map((p) => {
        const [p50, p99] = percentiles(p.e2e, [50, 99]);
        return { p: p, p50: p50!, p99: p99!, sustained: p.backlog <= half * 0.25 && !p.capped };
      });
      const lat = [...inOrder].sort((a, b) => a.p50 - b.p50);
      const mid = lat[Math.floor(lat.length / 2)]!;
      const e50 = mid.p50;
      const e99 = mid.p99;
      const hop50 = (e50 - engine) / 4;
      const hop99 = (e99 - engine) / 4;
      const unsustained = lat.filter((l) => !l.sustained).length;
      const sustained = unsustained === 0;
      const pacedFailed = paced.reduce((s, p) => s + p.failed, 0);
      const fl50 = fl.paced
        .map((p) => {
          const [h50, h99] = percentiles(p.hop, [50, 99]);
          const [x50] = percentiles(p.e2e, [50]);
          return { h50: h50!, h99: h99!, e50: x50!, sustained: p.backlog <= fl.pacedPerSec * 0.25, backlog: p.backlog };
        })
        .sort((a, b) => a.e50 - b.e50);
      const fmid = fl50[Math.floor(fl50.length / 2)]!;
      const [f50, f99, fe50] = [fmid.h50, fmid.h99, fmid.e50];
      const floorUnsustained = fl50.filter((f) => !f.sustained).length;
      const bullRuns = bull.runs;
      const bullRate = median(bullRuns);
      // Each JobChain run against the BullMQ trial right after it; the median of those ratios.
      const vsBull = median(t3.runs.map((r, i) => r / bullRuns[i]!));
      return [
        {
          name: "NATS 3-job linear, a runner process per job",
          value: t3.perSec,
          unit: "tasks/s",
          target: ">= 10,000",
          met: t3.perSec >= 10_000,
          note:
            `median of ${RUNS} × ${fmtInt(TASKS)} tasks (${t3.runs.map(fmtInt).join(", ")}/s) after ${fmtInt(WARMUP)} warm-up; ` +
            `3 runner processes (jobchain runner --nodes a|b|c${flags}); ${common}; a message per task submitted, runners ` +
            `send tasks finished together on as one message (default --forward-batch 256); 4 hops a task; ${t3.msgsPerTask}; ` +
            `${t3.cpu}${phaseTrouble(t3.phases)}; nats-server ${server.version}`,
        },
        {
          name: `NATS 3-job linear, a runner process per job, batches of up to ${BATCH} tasks`,
          value: tb.perSec,
          unit: "tasks/s",
          target: ">= 10,000",
          met: tb.perSec >= 10_000,
          note:
            `median of ${RUNS} × ${fmtInt(TASKS)} tasks (${tb.runs.map(fmtInt).join(", ")}/s); the same 3 runners; the client ` +
            `gathers submissions into batch messages too (JobChainClient batch: ${BATCH}, jobchain submit --batch ${BATCH}); ` +
            `results stay one per task; ${tb.msgsPerTask}; ${tb.cpu}${phaseTrouble(tb.phases)}; ` +
            `${(tb.perSec / bullRate).toFixed(1)}x BullMQ's median`,
        },
        {
          name: "NATS 3-job linear, a runner process per job, a message per task on every hop",
          value: ts.perSec,
          unit: "tasks/s",
          note:
            `median of ${RUNS} × ${fmtInt(TASKS)} tasks (${ts.runs.map(fmtInt).join(", ")}/s); 3 runner processes with ` +
            `--forward-batch 1; ${common}; ${ts.msgsPerTask}; ${ts.cpu}${phaseTrouble(ts.phases)}; ` +
            `${(ts.perSec / bullRate).toFixed(1)}x BullMQ's median`,
        },
        {
          name: "NATS 3-job linear, one runner process for all jobs",
          value: t1.perSec,
          unit: "tasks/s",
          note:
            `median of ${RUNS} × ${fmtInt(TASKS)} tasks (${t1.runs.map(fmtInt).join(", ")}/s); 1 runner process${flags}, the ` +
            `graph runs in memory per message: 2 hops a task (submit, result); ${common}; ${t1.msgsPerTask}; ${t1.cpu}` +
            phaseTrouble(t1.phases),
        },
        {
          name: "NATS per-hop latency p50 at half load (a runner per job)",
          value: hop50 * 1000,
          unit: "µs",
          target: "<= 1,000",
          met: hop50 <= 1 && sustained,
          note:
            `${fmtInt(half)} tasks/s (half the rate above) in 1 ms ticks, ${IDLE_MS / 1000} s after the full-load runs: after ` +
            `${PACED_SECONDS} s at that rate unmeasured, median of ${PACED_RUNS} runs of ${PACED_SECONDS} s ` +
            `(per-hop p50s in run order ${inOrder.map((l) => fmtInt(((l.p50 - engine) / 4) * 1000)).join(", ")} µs); (end-to-end − engine ` +
            `${fmtUs(engine)}) ÷ 4 hops; end-to-end p50 ${fmtUs(e50)}, p99 ${fmtUs(e99)}` +
            (sustained ? "" : `; NOT sustained in ${unsustained} of ${PACED_RUNS} runs (a backlog over 250 ms of submissions when the last went in)`) +
            (pacedFailed ? `; ${pacedFailed} FAILED` : ""),
        },
        {
          name: "NATS per-hop latency p99 at half load (a runner per job)",
          value: hop99 * 1000,
          unit: "µs",
          note: `(end-to-end p99 − engine) ÷ 4 hops, in the run of median p50`,
        },
        {
          name: "per-hop p50 ÷ raw JetStream floor per-hop p50",
          value: hop50 / (fe50 / 4),
          unit: "x",
          note:
            `floor measured here: a raw 3-hop JetStream pipeline (4 file work-queue streams, a connection per stage, 1 ` +
            `process, no JobChain code) at half its full-load rate, ${fmtInt(fl.pacedPerSec)} tasks/s for ${PACED_SECONDS} s: ` +
            `median of ${PACED_RUNS} runs, end-to-end p50 ${fmtUs(fe50)} ÷ 4 = ${fmtUs(fe50 / 4)} a hop (timestamped per hop: ` +
            `p50 ${fmtUs(f50)}, p99 ${fmtUs(f99)}; runs' per-hop p50s ${fl50.map((f) => fmtInt((f.e50 / 4) * 1000)).join(", ")} µs)` +
            (floorUnsustained ? `; floor NOT sustained in ${floorUnsustained} of ${PACED_RUNS} runs` : ""),
        },
        {
          name: "a runner per job ÷ raw 3-hop JetStream pipeline, full load",
          value: t3.perSec / fl.perSec,
          unit: "x",
          note:
            `the same floor pipeline at full load: ${fmtInt(fl.perSec)} tasks/s (${fmtInt(fl.fullCompleted)} tasks, its stages sharing one Node thread, ` +
            `${fmtInt(WINDOW)} in the system${fl.fullCompleted < TASKS ? ", time-capped" : ""}); ${fl.cpu}`,
        },
        {
          name: "a runner per job ÷ BullMQ FlowProducer 3-step flows",
          value: vsBull,
          unit: "x",
          target: ">= 8",
          met: vsBull >= 8,
          note:
            `median of the ratios of each timed run above to a BullMQ trial run right after it (ratios ` +
            `${t3.runs.map((r, i) => (r / bullRuns[i]!).toFixed(1)).join(", ")}); BullMQ: ${fmtInt(bullRate)} flows/s median, ` +
            `${RUNS} × ${fmtInt(BULL_FLOWS)} flows (${bullRuns.map(fmtInt).join(", ")}/s) incl. adding (addBulk, 250 a call) after ` +
            `${BULL_WARMUP} warm-up, 3 workers at concurrency ${BULL_CONCURRENCY}, no-op processors, local redis-server ` +
            `${bull.version}${bull.capped ? ", time-capped" : ""})`,
        },
        {
          name: "runner idle memory (one process, 3 nodes)",
          value: idleRss,
          unit: "MB RSS",
          target: "<= 80",
          met: idleRss <= 80,
          note:
            `VmRSS ${IDLE_MS / 1000} s after ready, no traffic; per-job runners idle ${idlePerJob}, after load ` +
            `${loadedPerJob}; the all-jobs runner after load ${loadedOne} (a runner lets V8 return unused heap once started ` +
            `and after 30 s without work)`,
        },
      ];
    } finally {
      for (const d of drivers) await d.close().catch(() => undefined);
      await bull?.stop().catch(() => undefined);
      await stopAll(procs, 5_000);
      await nc?.close().catch(() => undefined);
      await server?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
export default suite;
