import { describe, expect, it } from "vitest";
import {
  ClosedError,
  Job,
  JobChain,
  NonRetryableError,
  TaskFailedError,
  UnknownGraphError,
  defineGraph,
  fn,
  parallel,
  serial,
  type JobContext,
  type Task,
  type TaskOutcome,
} from "./index.ts";

const tick = () => new Promise((r) => setTimeout(r, 0));

/** Records what every job saw, for exact assertions on inputs and tasks. */
function recorder() {
  const seen: { job: string; task: Task; inputs: Record<string, unknown>; attempt: number }[] = [];
  const job = (name: string, out?: (task: Task, ctx: JobContext) => unknown) =>
    fn(name, async (task, ctx) => {
      seen.push({ job: name, task, inputs: { ...ctx.inputs }, attempt: ctx.attempt });
      return out ? out(task, ctx) : { from: name };
    });
  return { seen, job };
}

describe("JobChain semantics", () => {
  it("gives every job the original task and only its direct predecessors' outputs", async () => {
    const { seen, job } = recorder();
    const chain = new JobChain([defineGraph("g", serial(job("a"), job("b"), job("c")))]);
    const task = { text: "hi", n: 1 };
    const result = await chain.submitTask(task);
    expect(result).toEqual({ from: "c" });
    expect(seen).toEqual([
      { job: "a", task, inputs: {}, attempt: 1 },
      { job: "b", task, inputs: { a: { from: "a" } }, attempt: 1 },
      { job: "c", task, inputs: { b: { from: "b" } }, attempt: 1 },
    ]);
    expect(seen[2]!.task).toBe(task);
  });

  it("wraps non-object returns as {result: value} and never adds engine keys to outputs", async () => {
    const values: unknown[] = [42, "s", null, [1, 2], undefined];
    for (const v of values) {
      const chain = new JobChain([defineGraph("g", fn("only", () => v))]);
      expect(await chain.submitTask({})).toEqual({ result: v });
    }
    const out = { result: "mine", RETURN_JOB: "x", task_pass_through: 1 };
    const chain = new JobChain([defineGraph("g", serial(fn("a", () => out), fn("b", (_t, ctx) => ctx.inputs.a)))]);
    expect(await chain.submitTask({})).toEqual(out);
  });

  it("passes non-object tasks to jobs as {task: value} and reports the submitted value unchanged", async () => {
    const seen: Task[] = [];
    const outcomes: TaskOutcome[] = [];
    const chain = new JobChain([defineGraph("g", fn("a", (t) => (seen.push(t), 1)))], { onResult: (o) => void outcomes.push(o) });
    await chain.execute("plain");
    expect(seen).toEqual([{ task: "plain" }]);
    expect(outcomes[0]!.task).toBe("plain");
  });

  it("gives the task to every head, runs a fan-in once with all inputs, and joins all tails", async () => {
    const { seen, job } = recorder();
    // h1, h2 -> join -> t1, t2 (two heads, a fan-in node, two tails)
    const join = job("join", (_t, ctx) => ({ keys: Object.keys(ctx.inputs).sort() }));
    const graph = defineGraph("g", serial(parallel(job("h1"), job("h2")), join, parallel(job("t1"), job("t2"))));
    expect(graph.heads).toEqual(["h1", "h2"]);
    expect(graph.tails).toEqual(["t1", "t2"]);
    const chain = new JobChain([graph]);
    const results = await Promise.all([1, 2, 3].map((i) => chain.submitTask({ i })));
    for (const r of results) expect(r).toEqual({ t1: { from: "t1" }, t2: { from: "t2" } });
    expect(seen.filter((s) => s.job === "join")).toHaveLength(3);
    for (const s of seen.filter((s) => s.job === "join")) {
      expect(s.inputs).toEqual({ h1: { from: "h1" }, h2: { from: "h2" } });
    }
    expect(seen.filter((s) => s.job === "h1").map((s) => s.task)).toEqual([{ i: 1 }, { i: 2 }, { i: 3 }]);
  });

  it("waits for the slowest tail before completing, keeping every tail's output", async () => {
    const slow = fn("alpha", async () => (await new Promise((r) => setTimeout(r, 30)), { v: "alpha" }));
    const fast = fn("beta", async () => ({ v: "beta" }));
    const chain = new JobChain([defineGraph("g", serial(fn("start", () => ({})), parallel(slow, fast)))]);
    expect(await chain.submitTask({})).toEqual({ alpha: { v: "alpha" }, beta: { v: "beta" } });
  });

  it("keeps save_result outputs beside the result", async () => {
    const outcomes: TaskOutcome[] = [];
    const chain = new JobChain(
      [defineGraph("g", serial(fn("a", () => ({ x: 1 })), fn("b", () => 7)), { a: { saveResult: true } })],
      { onResult: (o) => void outcomes.push(o) },
    );
    await chain.execute({}, { id: "t1" });
    expect(outcomes).toEqual([{ status: "succeeded", id: "t1", graph: "g", task: {}, result: { result: 7 }, saved: { a: { x: 1 } } }]);
  });

  it("fails only the failing task with {job, message, attempt} and aborts its running siblings", async () => {
    let siblingAborted: unknown;
    const sibling = fn("sibling", (_t, ctx) =>
      new Promise((_, reject) => {
        ctx.signal.addEventListener("abort", () => {
          siblingAborted = ctx.signal.reason;
          reject(ctx.signal.reason);
        });
      }),
    );
    let afterRan = 0;
    const boom = fn("boom", async (t) => {
      await tick();
      if ((t as { fail?: boolean }).fail) throw new Error("kaput");
      return {};
    });
    const graph = defineGraph("g", serial(parallel(boom, fn("quick", () => ({}))), fn("after", () => ++afterRan)));
    const chain = new JobChain([defineGraph("s", parallel(sibling, serial(fn("x", tick), fn("bad", () => { throw new TypeError("nope"); }))))]);
    const outcome = await chain.execute({}, { id: "t" });
    expect(outcome).toEqual({ status: "failed", id: "t", graph: "s", task: {}, error: { job: "bad", message: "nope", attempt: 1, type: "TypeError" } });
    await tick();
    expect(String(siblingAborted)).toMatch(/task failed in job 'bad'/);

    const chain2 = new JobChain([graph]);
    const [ok, bad] = await Promise.allSettled([chain2.submitTask({ fail: false }), chain2.submitTask({ fail: true }, { id: "b" })]);
    expect(ok).toEqual({ status: "fulfilled", value: { result: 1 } });
    expect(bad.status).toBe("rejected");
    const err = (bad as PromiseRejectedResult).reason as TaskFailedError;
    expect(err).toBeInstanceOf(TaskFailedError);
    expect([err.taskId, err.graph, err.job, err.attempt]).toEqual(["b", "g", "boom", 1]);
    expect(afterRan).toBe(1);
    expect(chain2.stats).toMatchObject({ submitted: 2, succeeded: 1, failed: 1, inFlight: 0 });
  });

  it("retries with backoff and reports the attempt that failed last", async () => {
    let calls = 0;
    const flaky = fn("flaky", (_t, ctx) => {
      calls++;
      if (ctx.attempt < 3) throw new Error(`try ${ctx.attempt}`);
      return { attempt: ctx.attempt };
    });
    const chain = new JobChain([defineGraph("g", flaky, { flaky: { retry: { attempts: 3, backoff: { initial: 0.001, jitter: false } } } })]);
    expect(await chain.submitTask({})).toEqual({ attempt: 3 });
    expect(calls).toBe(3);

    calls = 0;
    const always = fn("always", () => {
      calls++;
      throw new Error("down");
    });
    const c2 = new JobChain([defineGraph("g", always, { always: { retry: { attempts: 4, backoff: 0 } } })]);
    const o = await c2.execute({});
    expect(o.status === "failed" && o.error).toEqual({ job: "always", message: "down", attempt: 4 });
    expect(calls).toBe(4);

    calls = 0;
    const fatal = fn("fatal", () => {
      calls++;
      throw new NonRetryableError("bad input");
    });
    const c3 = new JobChain([defineGraph("g", fatal, { fatal: { retry: { attempts: 5, backoff: 0 } } })]);
    const o3 = await c3.execute({});
    expect(o3.status === "failed" && o3.error.attempt).toBe(1);
    expect(calls).toBe(1);
  });

  it("times out a job attempt, aborting its signal, and retries it", async () => {
    const reasons: string[] = [];
    const hang = fn("hang", (_t, ctx) =>
      ctx.attempt === 1
        ? new Promise((_, reject) => ctx.signal.addEventListener("abort", () => (reasons.push(String(ctx.signal.reason)), reject(ctx.signal.reason))))
        : { ok: ctx.attempt },
    );
    const chain = new JobChain([defineGraph("g", hang, { hang: { timeout: 0.02, retry: { attempts: 2, backoff: 0 } } })]);
    expect(await chain.submitTask({})).toEqual({ ok: 2 });
    expect(reasons).toEqual(["TimeoutError: job 'hang' timed out after 0.02s"]);

    const c2 = new JobChain([defineGraph("g", fn("stuck", () => new Promise(() => {})), { stuck: { timeout: 0.01 } })]);
    const o = await c2.execute({});
    expect(o.status === "failed" && o.error).toEqual({ job: "stuck", message: "job 'stuck' timed out after 0.01s", attempt: 1, type: "TimeoutError" });
  });

  it("fails a task that passes its deadline, naming the running job", async () => {
    const chain = new JobChain([defineGraph("g", serial(fn("a", () => ({})), fn("b", () => new Promise(() => {}))))], { taskTimeout: 0.02 });
    const o = await chain.execute({});
    expect(o.status).toBe("failed");
    expect(o.status === "failed" && [o.error.job, o.error.message]).toEqual(["b", "task timed out after 0.02s"]);
  });

  it("lists job runs that outlive their task or attempt until they return, and does not wait for them", async () => {
    // Jobs that ignore ctx.signal: each returns only when the test releases it.
    const gates: (() => void)[] = [];
    const ignoring = (name: string) => fn(name, () => new Promise((r) => gates.push(() => r({ late: name }))));
    const chain = new JobChain([
      defineGraph("timeouts", ignoring("slow"), { slow: { timeout: 0.01 } }),
      defineGraph("siblings", parallel(ignoring("stuck"), fn("boom", () => Promise.reject(new Error("boom"))))),
      defineGraph("deadline", serial(fn("a", () => ({})), ignoring("b"))),
    ]);
    const timedOut = await chain.execute({}, { graph: "timeouts", id: "t1" });
    expect(timedOut.status === "failed" && timedOut.error.job).toBe("slow");
    const sibling = await chain.execute({}, { graph: "siblings", id: "t2" });
    expect(sibling.status === "failed" && sibling.error.job).toBe("boom");
    const late = await chain.execute({}, { graph: "deadline", id: "t3", timeout: 0.01 });
    expect(late.status === "failed" && late.error.job).toBe("b");
    expect(chain.abandoned).toEqual([
      { taskId: "t1", graph: "timeouts", job: "slow" },
      { taskId: "t2", graph: "siblings", job: "stuck" },
      { taskId: "t3", graph: "deadline", job: "b" },
    ]);
    await chain.markInputCompleted(); // resolves although three jobs still run
    expect(await chain.waitForAbandoned(10)).toHaveLength(3);
    const settled = chain.waitForAbandoned(60_000);
    gates.splice(0).forEach((release) => release());
    expect(await settled).toEqual([]);
    expect(chain.abandoned).toEqual([]);
  });

  it("counts a timed-out attempt as abandoned even when a retry succeeds, and nothing for well-behaved jobs", async () => {
    let release: (() => void) | undefined;
    const flaky = fn("flaky", (_t, ctx) => (ctx.attempt === 1 ? new Promise((r) => (release = () => r({ first: true }))) : { ok: ctx.attempt }));
    const chain = new JobChain([
      defineGraph("g", flaky, { flaky: { timeout: 0.01, retry: { attempts: 2, backoff: 0 } } }),
      defineGraph("polite", fn("p", (_t, ctx) => new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)))), {
        p: { timeout: 0.01 },
      }),
    ]);
    expect(await chain.submitTask({}, { graph: "g", id: "r" })).toEqual({ ok: 2 });
    expect(chain.abandoned).toEqual([{ taskId: "r", graph: "g", job: "flaky" }]);
    release!();
    expect(await chain.waitForAbandoned(60_000)).toEqual([]);
    expect((await chain.execute({}, { graph: "polite" })).status).toBe("failed");
    expect(await chain.waitForAbandoned(0)).toEqual([]);
  });

  it("bounds tasks in flight per graph and per job", async () => {
    let running = 0;
    let peak = 0;
    let jobPeak = 0;
    let jobRunning = 0;
    const work = fn("work", async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
      return {};
    });
    const limited = fn("limited", async () => {
      jobRunning++;
      jobPeak = Math.max(jobPeak, jobRunning);
      await new Promise((r) => setTimeout(r, 1));
      jobRunning--;
      return {};
    });
    const chain = new JobChain([defineGraph("g", serial(work, limited), { limited: { concurrency: 2 } })], { concurrency: 5 });
    await Promise.all(Array.from({ length: 40 }, (_, i) => chain.submitTask({ i })));
    expect(peak).toBe(5);
    expect(jobPeak).toBe(2);
    expect(chain.stats).toMatchObject({ submitted: 40, succeeded: 40, queued: 0, inFlight: 0 });
  });

  it("shares a rate limit between jobs with the same key", async () => {
    const starts: number[] = [];
    const rec = (name: string) => fn(name, () => (starts.push(performance.now()), {}));
    const chain = new JobChain([
      defineGraph("g", serial(rec("a"), rec("b")), { a: { rateLimit: { max: 3, per: 60, key: "llm" } }, b: { rateLimit: { max: 3, per: 60, key: "llm" } } }),
    ]);
    // Three starts fit in the shared bucket; the fourth would have to wait a minute.
    void chain.submitTask({ i: 1 });
    void chain.submitTask({ i: 2 });
    await new Promise((r) => setTimeout(r, 20));
    expect(starts).toHaveLength(3);
  });

  it("delivers outcomes in completion order to an async handler and drains on markInputCompleted", async () => {
    const order: string[] = [];
    const handled: string[] = [];
    const chain = new JobChain([defineGraph("g", fn("sleep", async (t) => (await new Promise((r) => setTimeout(r, (t as { ms: number }).ms)), {})))], {
      onResult: async (o) => {
        order.push(o.id);
        await new Promise((r) => setTimeout(r, 5));
        handled.push(o.id);
      },
    });
    for (const [id, ms] of [["slow", 40], ["fast", 1], ["mid", 20]] as const) void chain.execute({ ms }, { id });
    await chain.markInputCompleted();
    expect(order).toEqual(["fast", "mid", "slow"]);
    expect(handled.sort()).toEqual(["fast", "mid", "slow"]);
    await expect(chain.submitTask({})).rejects.toBeInstanceOf(ClosedError);
  });

  it("runs the result handler serially when asked, and counts handler errors once", async () => {
    let active = 0;
    let maxActive = 0;
    const chain = new JobChain([defineGraph("g", fn("a", () => ({})))], {
      serialResults: true,
      logger: silentLogger(),
      onResult: async (o) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await tick();
        active--;
        if (o.id === "bad") throw new Error("handler broke");
      },
    });
    for (const id of ["1", "bad", "2", "3"]) void chain.execute({}, { id });
    await chain.markInputCompleted();
    expect(maxActive).toBe(1);
    expect(chain.stats).toMatchObject({ submitted: 4, succeeded: 4, failed: 0, handlerErrors: 1 });
  });

  it("rejects at once for an unknown graph or a missing graph on a multi-graph chain", async () => {
    const chain = new JobChain([defineGraph("one", fn("a", () => ({}))), defineGraph("two/x", fn("a", () => ({}))), defineGraph("two/y", fn("a", () => ({})))]);
    await expect(chain.submitTask({})).rejects.toBeInstanceOf(UnknownGraphError);
    await expect(chain.submitTask({}, { graph: "three" })).rejects.toThrow("unknown graph 'three'; available: one, two/x, two/y");
    await expect(chain.submitTask({}, { graph: "two" })).rejects.toThrow(/2 parameter groups/);
    expect(await chain.submitTask({}, { graph: "two/x" })).toEqual({ result: undefined });
    expect(await chain.submitTask({}, { graph: "one" })).toEqual({ result: undefined });
    expect(chain.stats.submitted).toBe(2);
  });

  it("cancels a task through its signal", async () => {
    const chain = new JobChain([defineGraph("g", fn("wait", (_t, ctx) => new Promise((_, rej) => ctx.signal.addEventListener("abort", () => rej(ctx.signal.reason)))))]);
    const ac = new AbortController();
    const p = chain.execute({}, { signal: ac.signal });
    ac.abort(new Error("user cancelled"));
    const o = await p;
    expect(o.status === "failed" && o.error.message).toBe("user cancelled");
  });

  it("validates job input and output with static schemas", async () => {
    const { z } = await import("zod");
    class Typed extends Job {
      static override input = z.object({ n: z.number() });
      static override output = z.object({ doubled: z.number() });
      run(task: Task) {
        return (task.n as number) === 0 ? { wrong: true } : { doubled: (task.n as number) * 2 };
      }
    }
    const chain = new JobChain([defineGraph("g", new Typed("typed"))]);
    expect(await chain.submitTask({ n: 2 })).toEqual({ doubled: 4 });
    const bad = await chain.execute({ n: "x" });
    expect(bad.status === "failed" && bad.error.job).toBe("typed");
    expect(bad.status === "failed" && bad.error.message).toMatch(/^input of job 'typed' does not match its schema/);
    const badOut = await chain.execute({ n: 0 });
    expect(badOut.status === "failed" && badOut.error.message).toMatch(/^output of job 'typed' does not match its schema/);
  });

  it("calls init once before the first task and close on markInputCompleted", async () => {
    const events: string[] = [];
    class Life extends Job {
      init() {
        events.push("init");
      }
      run() {
        events.push("run");
        return {};
      }
      close() {
        events.push("close");
      }
    }
    const chain = new JobChain([defineGraph("g", new Life("life"))]);
    await Promise.all([chain.submitTask({}), chain.submitTask({})]);
    await chain.markInputCompleted();
    expect(events).toEqual(["init", "run", "run", "close"]);
  });

  it("keeps no memory per finished task when jobs have timeouts (linked signals are detached)", async () => {
    const v8 = await import("node:v8");
    const { runInNewContext } = await import("node:vm");
    v8.setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const chain = new JobChain([defineGraph("g", serial(fn("a", () => ({ x: 1 })), fn("b", async () => ({ y: 2 }))), { b: { timeout: 5 } })]);
    const batch = async (n: number) => {
      for (let i = 0; i < n; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, j) => chain.submitTask({ i: i + j })));
    };
    await batch(5_000);
    gc();
    const before = process.memoryUsage().heapUsed;
    await batch(60_000);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    // A leak of one linked signal per job run would keep about 90 MB here.
    expect(grown).toBeLessThan(20 * 1024 * 1024);
  });

  it("handles 10,000 concurrent tasks through a diamond with exact counts", async () => {
    let joins = 0;
    const graph = defineGraph(
      "d",
      serial(
        fn("a", (t) => ({ v: (t as { i: number }).i })),
        parallel(fn("b", (_t, c) => ({ v: (c.inputs.a as { v: number }).v + 1 })), fn("c", (_t, c) => ({ v: (c.inputs.a as { v: number }).v * 2 }))),
        fn("d", (_t, c) => (joins++, { sum: (c.inputs.b as { v: number }).v + (c.inputs.c as { v: number }).v })),
      ),
    );
    const chain = new JobChain([graph], { concurrency: 500 });
    const results = await Promise.all(Array.from({ length: 10_000 }, (_, i) => chain.submitTask({ i })));
    expect(joins).toBe(10_000);
    expect(results.every((r, i) => (r as { sum: number }).sum === i + 1 + i * 2)).toBe(true);
  });
});

function silentLogger() {
  // A pino-compatible logger that drops everything, so expected errors do not clutter test output.
  const noop = () => {};
  const l = { error: noop, warn: noop, info: noop, debug: noop, trace: noop, fatal: noop, child: () => l } as never;
  return l;
}
