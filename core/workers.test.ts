import { mkdirSync, symlinkSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { JobChain, JobRegistry, instantiate, loadConfig } from "./index.ts";
import { tempDir } from "../test/helpers/tmp.ts";

const t = tempDir({
  "jobchain.yaml": `
jobs:
  hash: {type: Spin, properties: {rounds: 20000}}
  check: {type: Where}
  boom: {type: SpinFail}
graphs:
  cpu:
    hash: {next: [check]}
    check: {}
  failing:
    boom: {}
`,
  "jobs/cpu.mjs": `
import { Job } from "jobchain";
import { threadId } from "node:worker_threads";

export class Spin extends Job {
  static worker = true;
  run(task, ctx) {
    let h = task.seed;
    for (let i = 0; i < this.properties.rounds; i++) h = (h * 31 + i) % 1000003;
    return { h, thread: threadId, attempt: ctx.attempt, task_id: ctx.taskId };
  }
}

export class Where extends Job {
  run(task, ctx) {
    return { h: ctx.inputs.hash.h, worker_thread: ctx.inputs.hash.thread, main_thread: threadId };
  }
}

export class SpinFail extends Job {
  static worker = true;
  run() {
    throw new RangeError("too hot");
  }
}
`,
});
// The jobs import "jobchain" as a user's project would: from its node_modules (the built package).
mkdirSync(path.join(t.dir, "node_modules"));
symlinkSync(path.resolve(import.meta.dirname, ".."), path.join(t.dir, "node_modules/jobchain"));
afterAll(() => t.cleanup());

function expectedHash(seed: number, rounds: number): number {
  let h = seed;
  for (let i = 0; i < rounds; i++) h = (h * 31 + i) % 1000003;
  return h;
}

describe("worker jobs", () => {
  it("run in worker threads, built by class name from their module, with exact results", async () => {
    const { config, registry } = await loadConfig(t.dir, { registry: new JobRegistry() });
    const chain = new JobChain(instantiate(config, registry));
    const results = await Promise.all(Array.from({ length: 8 }, (_, seed) => chain.submitTask({ seed }, { graph: "cpu" })));
    results.forEach((r, seed) => {
      expect(r.h).toBe(expectedHash(seed, 20000));
      expect(r.main_thread).toBe(0);
      expect(r.worker_thread).toBeGreaterThan(0);
    });
    const failed = await chain.execute({}, { graph: "failing", id: "f" });
    expect(failed).toEqual({ status: "failed", id: "f", graph: "failing", task: {}, error: { job: "boom", message: "too hot", attempt: 1, type: "RangeError" } });
    await chain.markInputCompleted();
  });
});
