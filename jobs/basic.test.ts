import { afterEach, describe, expect, it, vi } from "vitest";
import {
  JobChain,
  TaskFailedError,
  builtinRegistry,
  createLogger,
  defineGraph,
  fn,
  instantiate,
  loadConfigObject,
  parallel,
  serial,
  type JobContext,
  type Task,
} from "../index.ts";
import { Delay, Echo, Fail, Merge } from "./index.ts";

const logger = createLogger({ level: "silent" });
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function ctxWith(signal: AbortSignal, inputs: Record<string, Record<string, unknown>> = {}): JobContext {
  return { taskId: "t-1", graph: "g", job: "j", attempt: 1, inputs, signal, logger, span: undefined, progress: () => {} };
}

/** A Delay that records how its run ended and the signal it was given. */
function watchedDelay(name: string, properties: Record<string, unknown>) {
  const seen: { signal?: AbortSignal; error?: unknown; settled: boolean } = { settled: false };
  class WatchedDelay extends Delay {
    override async run(task: Task, ctx: JobContext): Promise<Record<string, unknown>> {
      seen.signal = ctx.signal;
      try {
        return await super.run(task, ctx);
      } catch (err) {
        seen.error = err;
        throw err;
      } finally {
        seen.settled = true;
      }
    }
  }
  return { job: new WatchedDelay(name, properties), seen };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("Echo", () => {
  it("returns a copy of the task", () => {
    const task = { a: 1, nested: { b: [1, 2] } };
    const out = new Echo("echo").run(task);
    expect(out).toEqual({ a: 1, nested: { b: [1, 2] } });
    expect(out).not.toBe(task);
    out.a = 2;
    expect(task.a).toBe(1);
  });

  it("merges properties.add into the copy; added keys win over task keys", () => {
    const task = { a: 1, b: 2 };
    expect(new Echo("echo", { add: { b: 3, c: "x" } }).run(task)).toEqual({ a: 1, b: 3, c: "x" });
    expect(task).toEqual({ a: 1, b: 2 });
  });

  it("is registered under its name and under the alias Passthrough", () => {
    const registry = builtinRegistry();
    expect(Echo.alias).toBe("Passthrough");
    expect(registry.get("Echo")).toBe(Echo);
    expect(registry.get("Passthrough")).toBe(Echo);
    expect(registry.sourceOf("Passthrough")).toBe(new URL("./index.ts", import.meta.url).href);
  });

  it("runs as Passthrough from a configuration, and wraps a non-object task as {task: value}", async () => {
    const { config, registry } = await loadConfigObject({
      jobs: { pass: { type: "Passthrough", properties: { add: { seen: true } } } },
      graphs: { g: { pass: {} } },
    });
    const chain = new JobChain(instantiate(config, registry), { logger });
    expect(chain.graph("g")!.nodes[0]!.job).toBeInstanceOf(Echo);
    expect(await chain.submitTask({ id: "t1", x: 1 })).toEqual({ id: "t1", x: 1, seen: true });
    expect(await chain.submitTask(42)).toEqual({ task: 42, seen: true });
    await chain.markInputCompleted();
  });
});

describe("Merge", () => {
  it("merges the outputs of its direct predecessors only; a later predecessor wins on equal keys", async () => {
    const head = fn("head", (t) => ({ n: t.n, from_head: true }));
    const left = fn("left", (t) => ({ left: (t.n as number) * 2, shared: "left" }));
    const right = fn("right", (t) => ({ right: (t.n as number) + 1, shared: "right" }));
    const graph = defineGraph("merge", serial(head, parallel(left, right), new Merge("join")));
    expect(graph.nodes.find((n) => n.name === "join")!.prev).toEqual(["left", "right"]);
    const chain = new JobChain([graph], { logger });
    expect(await chain.submitTask({ n: 5 })).toEqual({ left: 10, right: 6, shared: "right" });
    await chain.markInputCompleted();
  });

  it("joins several heads: each head gets the task, the merge runs once per task", async () => {
    let merges = 0;
    class CountingMerge extends Merge {
      override run(task: Task, ctx: JobContext): Record<string, unknown> {
        merges++;
        return super.run(task, ctx);
      }
    }
    const a = new Echo("a", { add: { by: "a", a: true } });
    const b = new Echo("b", { add: { by: "b", b: true } });
    const chain = new JobChain([defineGraph("heads", serial(parallel(a, b), new CountingMerge("join")))], { logger });
    const results = await Promise.all([1, 2, 3].map((i) => chain.submitTask({ i })));
    expect(results).toEqual([1, 2, 3].map((i) => ({ i, by: "b", a: true, b: true })));
    expect(merges).toBe(3);
    await chain.markInputCompleted();
  });

  // `__proto__` cannot be a key of the plain objects that carry outputs, so it is refused as a job name.
  it("sees the output of a predecessor named __proto__, or the name is refused", async () => {
    let graph;
    try {
      graph = defineGraph("proto", serial(parallel(fn("__proto__", () => ({ from_proto: 1 })), fn("other", () => ({ from_other: 2 }))), new Merge("join")));
    } catch (err) {
      expect((err as Error).message).toContain("__proto__");
      return;
    }
    const chain = new JobChain([graph], { logger });
    expect(await chain.submitTask({})).toEqual({ from_proto: 1, from_other: 2 });
    await chain.markInputCompleted();
  });

  it("returns an empty object when it has no predecessors", () => {
    expect(new Merge("m").run({ a: 1 }, ctxWith(new AbortController().signal))).toEqual({});
  });
});

/** The Delay stopped because its signal aborted, with the signal's reason, and left no timer running. */
async function expectWaitCancelled(seen: { settled?: boolean; signal?: AbortSignal; error?: unknown }, chain: JobChain): Promise<void> {
  await flush();
  expect(seen.settled).toBe(true);
  expect(seen.signal!.aborted).toBe(true);
  expect(seen.error).toBe(seen.signal!.reason);
  // The 30 s wait was cancelled, not left running.
  expect(vi.getTimerCount()).toBe(0);
  await chain.markInputCompleted();
}

describe("Delay", () => {
  it("waits properties.ms, then returns {delayed_ms}", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    let result: unknown;
    const p = new Delay("d", { ms: 20 }).run({}, ctxWith(new AbortController().signal)).then((r) => (result = r));
    await vi.advanceTimersByTimeAsync(19);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(result).toEqual({ delayed_ms: 20 });
  });

  it("takes the delay from properties.seconds, else from the task's delay_ms", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const signal = new AbortController().signal;
    const bySeconds = new Delay("d", { seconds: 1.5 }).run({ delay_ms: 5 }, ctxWith(signal));
    const byTask = new Delay("d").run({ delay_ms: 5 }, ctxWith(signal));
    const none = new Delay("d").run({}, ctxWith(signal));
    await vi.advanceTimersByTimeAsync(1500);
    expect(await Promise.all([bySeconds, byTask, none])).toEqual([{ delayed_ms: 1500 }, { delayed_ms: 5 }, { delayed_ms: 0 }]);
  });

  it("rejects an invalid delay", async () => {
    const signal = new AbortController().signal;
    await expect(new Delay("d", { ms: -1 }).run({}, ctxWith(signal))).rejects.toThrow("Delay: invalid delay -1");
    await expect(new Delay("d").run({ delay_ms: "soon" }, ctxWith(signal))).rejects.toThrow("Delay: invalid delay NaN");
  });

  it("rejects with the signal's reason as soon as it aborts, and clears its timer", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const ac = new AbortController();
    const p = new Delay("d", { seconds: 30 }).run({}, ctxWith(ac.signal));
    const outcome = p.then(
      () => "resolved",
      (err: unknown) => err,
    );
    expect(vi.getTimerCount()).toBe(1);
    const reason = new Error("cancelled by the user");
    ac.abort(reason);
    expect(await outcome).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("rejects at once when the signal is already aborted", async () => {
    const reason = new Error("too late");
    await expect(new Delay("d", { seconds: 30 }).run({}, ctxWith(AbortSignal.abort(reason)))).rejects.toBe(reason);
  });

  it("is aborted by the task deadline of a chain, with its signal's reason", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { job, seen } = watchedDelay("sleep", { seconds: 30 });
    const chain = new JobChain([defineGraph("wait", job)], { logger });
    const outcome = chain.execute({ id: "t1" }, { timeout: 0.05 });
    await vi.advanceTimersByTimeAsync(49);
    expect(seen.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await outcome).toEqual({
      status: "failed",
      id: "t1",
      graph: "wait",
      task: { id: "t1" },
      error: { job: "sleep", message: "task timed out after 0.05s", type: "TimeoutError" },
    });
    await expectWaitCancelled(seen, chain);
  });

  it("is aborted by SubmitOptions.signal; the task fails with the signal's reason", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { job, seen } = watchedDelay("sleep", { seconds: 30 });
    const chain = new JobChain([defineGraph("wait", job)], { logger });
    const ac = new AbortController();
    const result = chain.submitTask({}, { id: "t2", signal: ac.signal });
    const settled = result.catch((err: unknown) => err);
    await flush();
    expect(seen.settled).toBe(false);
    ac.abort(new Error("user pressed stop"));
    const err = (await settled) as TaskFailedError;
    expect(err).toBeInstanceOf(TaskFailedError);
    expect(err.message).toBe("task t2 failed in job 'sleep' of graph 'wait': user pressed stop");
    expect(err.job).toBe("sleep");
    await flush();
    expect(seen.settled).toBe(true);
    expect(seen.error).toBe(seen.signal!.reason);
    expect(vi.getTimerCount()).toBe(0);
    await chain.markInputCompleted();
  });

  it("is aborted by its job timeout; the error names the job and the attempt", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { job, seen } = watchedDelay("sleep", { seconds: 30 });
    const chain = new JobChain([defineGraph("wait", job, { sleep: { timeout: 0.5 } })], { logger });
    const outcome = chain.execute({}, { id: "t3" });
    await vi.advanceTimersByTimeAsync(500);
    expect(await outcome).toMatchObject({
      status: "failed",
      error: { job: "sleep", message: "job 'sleep' timed out after 0.5s", attempt: 1, type: "TimeoutError" },
    });
    await flush();
    expect(seen.error).toBe(seen.signal!.reason);
    expect((seen.error as Error).message).toBe("job 'sleep' timed out after 0.5s");
    expect(vi.getTimerCount()).toBe(0);
    await chain.markInputCompleted();
  });

  it("is aborted when a sibling branch fails", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { job, seen } = watchedDelay("sleep", { seconds: 30 });
    const chain = new JobChain([defineGraph("siblings", parallel(job, new Fail("boom", { message: "kaput" })))], { logger });
    const outcome = await chain.execute({}, { id: "t4" });
    expect(outcome).toMatchObject({ status: "failed", error: { job: "boom", message: "kaput", attempt: 1 } });
    await expectWaitCancelled(seen, chain);
  });

  // A job that reads ctx.signal only after its task failed still sees the abort.
  it("a Delay that starts waiting after a sibling failed the task is aborted at once", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const gate = Promise.withResolvers<void>();
    const seen: { error?: unknown } = {};
    class LateDelay extends Delay {
      override async run(task: Task, ctx: JobContext): Promise<Record<string, unknown>> {
        await gate.promise; // e.g. a lookup before the wait, not yet touching ctx.signal
        return super.run(task, ctx).catch((err: unknown) => {
          seen.error = err;
          throw err;
        });
      }
    }
    const chain = new JobChain([defineGraph("late", parallel(new LateDelay("sleep", { seconds: 30 }), new Fail("boom")))], { logger });
    expect(await chain.execute({})).toMatchObject({ status: "failed", error: { job: "boom" } });
    gate.resolve();
    await flush();
    expect(seen.error).toBeInstanceOf(Error);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("Fail", () => {
  it("fails its task with properties.message; the error names the job and attempt", async () => {
    const chain = new JobChain([defineGraph("g", serial(new Echo("first"), new Fail("broken", { message: "boom" })))], { logger });
    const outcome = await chain.execute({ id: "x" });
    expect(outcome).toEqual({
      status: "failed",
      id: "x",
      graph: "g",
      task: { id: "x" },
      error: { job: "broken", message: "boom", attempt: 1 },
    });
    await expect(chain.submitTask({ id: "y" })).rejects.toThrow("task y failed in job 'broken' of graph 'g': boom");
    expect(chain.stats).toMatchObject({ submitted: 2, succeeded: 0, failed: 2 });
    await chain.markInputCompleted();
  });

  it("uses a default message", () => {
    expect(() => new Fail("f").run()).toThrow(new Error("failed on purpose"));
  });

  it("fails after every retry, reporting the last attempt", async () => {
    let runs = 0;
    class CountingFail extends Fail {
      override run(): never {
        runs++;
        return super.run();
      }
    }
    const chain = new JobChain(
      [defineGraph("g", new CountingFail("f", { message: "still broken" }), { f: { retry: { attempts: 3, backoff: 0 } } })],
      { logger },
    );
    const outcome = await chain.execute({});
    expect(outcome).toMatchObject({ status: "failed", error: { job: "f", message: "still broken", attempt: 3 } });
    expect(runs).toBe(3);
    await chain.markInputCompleted();
  });
});
