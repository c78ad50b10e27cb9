// Embedded engine throughput against a bare Promise chain doing the same awaits, in the same process and run.
import { JobChain, Job, defineGraph, parallel, serial, type JobContext, type Task } from "../../core/index.ts";
import type { BenchRow, BenchSuite } from "../types.ts";
import { median } from "./lib/stats.ts";

const TASKS = Number(process.env.BENCH_EMBEDDED_TASKS ?? 200_000);
const ORIGINAL_PYTHON_TASKS_PER_S = 2300; // DESIGN.md §9: the original on a 2-core machine (not re-measured here)

class Noop extends Job {
  async run(_task: Task, _ctx: JobContext): Promise<Record<string, unknown>> {
    return EMPTY;
  }
}
const EMPTY = Object.freeze({}) as Record<string, unknown>;

/** The default engine configuration (at most 1000 tasks in flight per graph; the rest wait in its queue). */
function linear(): JobChain {
  return new JobChain([defineGraph("linear", serial(new Noop("a"), new Noop("b"), new Noop("c")))]);
}

function linearUnbounded(): JobChain {
  return new JobChain([defineGraph("linear", serial(new Noop("a"), new Noop("b"), new Noop("c")))], { concurrency: TASKS });
}

function diamond(): JobChain {
  return new JobChain(
    [defineGraph("diamond", serial(new Noop("a"), parallel(new Noop("b"), new Noop("c")), new Noop("d")))],
  );
}

async function timeChain(make: () => JobChain, n: number): Promise<number> {
  const chain = make();
  const t0 = performance.now();
  const all: Promise<unknown>[] = new Array(n);
  for (let i = 0; i < n; i++) all[i] = chain.submitTask({ i }, {});
  await Promise.all(all);
  const s = (performance.now() - t0) / 1000;
  await chain.markInputCompleted();
  return n / s;
}

const noop = async (_x: unknown): Promise<Record<string, unknown>> => EMPTY;
async function bareChain(task: unknown): Promise<unknown> {
  const a = await noop(task);
  const b = await noop(a);
  return await noop(b);
}

async function timeBare(n: number): Promise<number> {
  const t0 = performance.now();
  const all: Promise<unknown>[] = new Array(n);
  for (let i = 0; i < n; i++) all[i] = bareChain({ i });
  await Promise.all(all);
  return n / ((performance.now() - t0) / 1000);
}

/** The median of `runs` measurements: steadier than the best on a shared machine, and honest. */
async function medianOf(f: () => Promise<number>, runs = 5): Promise<number> {
  const all: number[] = [];
  for (let i = 0; i < runs; i++) all.push(await f());
  return median(all);
}

const suite: BenchSuite = {
  name: "embedded",
  async run(): Promise<BenchRow[]> {
    // Warm up the JIT on both paths before measuring.
    await timeChain(linear, 20_000);
    await timeBare(20_000);
    const bare = await medianOf(() => timeBare(TASKS));
    const lin = await medianOf(() => timeChain(linear, TASKS));
    const dia = await medianOf(() => timeChain(diamond, TASKS));
    const unbounded = await medianOf(() => timeChain(linearUnbounded, TASKS), 3);
    const k = (TASKS / 1000).toFixed(0);
    return [
      { name: `bare Promise chain, 3 awaits, ${k}k tasks`, value: bare, unit: "tasks/s", note: "baseline, same run" },
      {
        name: `3-job linear no-op graph, ${k}k tasks (default options)`,
        value: lin,
        unit: "tasks/s",
        target: ">= 250,000",
        met: lin >= 250_000,
        note: `${(lin / bare).toFixed(2)}x bare chain; ${Math.round(lin / ORIGINAL_PYTHON_TASKS_PER_S)}x the original's ~2,300/s (DESIGN.md figure, not re-run)`,
      },
      {
        name: `3-job linear, all ${k}k tasks in flight at once`,
        value: unbounded,
        unit: "tasks/s",
        note: `${(unbounded / bare).toFixed(2)}x bare chain (which also has all in flight)`,
      },
      { name: `4-job diamond (fan-out, fan-in), ${k}k tasks`, value: dia, unit: "tasks/s", note: `${(dia / bare).toFixed(2)}x bare chain` },
    ];
  },
};
export default suite;
