// A configuration used by the distributed tests: small deterministic jobs and graphs of every shape.
import { tempDir } from "./tmp.ts";

export const MATH_JOBS = `
import { Job } from "jobchain";

/** Adds properties.k to the input value (the task's v for a head). */
export class Add extends Job {
  async run(task, ctx) {
    if (task.fail_at === this.name) throw new Error("failing at " + this.name);
    if (task.sleep_ms) await new Promise((r) => setTimeout(r, task.sleep_ms));
    const inputs = Object.values(ctx.inputs);
    const base = inputs.length ? inputs[0].v : task.v;
    return { v: base + Number(this.properties.k ?? 1) };
  }
}

/** Sums its inputs (a fan-in). */
export class Sum extends Job {
  run(task, ctx) {
    return { v: Object.values(ctx.inputs).reduce((s, o) => s + o.v, 0), from: Object.keys(ctx.inputs).sort() };
  }
}

/** Kills its own process, like a job that crashes its runner (for redelivery tests). */
export class Crash extends Job {
  run() {
    process.kill(process.pid, "SIGKILL");
    return new Promise(() => {});
  }
}

/** Reports the most runs of itself at once in this process so far (for concurrency limits). */
let running = 0;
let peak = 0;
export class Probe extends Job {
  async run(task) {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, task.sleep_ms ?? 20));
    running--;
    return { peak };
  }
}

/** Kills its own process for a task that asks for it (a poison task among good ones). */
export class CrashIf extends Job {
  run(task) {
    if (task.crash) process.kill(process.pid, "SIGKILL");
    return { ok: task.n };
  }
}

/** Fails on its first attempt of every task. */
export class Flaky extends Job {
  run(task, ctx) {
    if (ctx.attempt < 2) throw new Error("flaky on attempt " + ctx.attempt);
    return { attempt: ctx.attempt };
  }
}
`;

export const MATH_CONFIG = `
jobs:
  a: {type: Add, properties: {k: 1}}
  b: {type: Add, properties: {k: 10}}
  c: {type: Add, properties: {k: 100}}
  d: {type: Sum}
  flaky: {type: Flaky, retry: {attempts: 3, backoff: 0.01}}
  keep: {type: Add, save_result: true, properties: {k: 1000}}
  crash: {type: Crash}
  probe: {type: Probe}
  crashif: {type: CrashIf}
graphs:
  linear:
    a: {next: [b]}
    b: {next: [c]}
    c: {}
  diamond:
    a: {next: [b, c]}
    b: {next: [d]}
    c: {next: [d]}
    d: {}
  twotails:
    keep: {next: [b, c]}
    b: {}
    c: {}
  retrying:
    flaky: {}
  crashing:
    crash: {}
  probed:
    a: {next: [probe]}
    probe: {}
  poisoned:
    a: {next: [crashif]}
    crashif: {}
  metered:
    a: {next: [b]}
    b: {}
  single:
    a: {}
`;

/** Writes the math configuration to a temp dir; returns its path and a cleanup. */
export function mathConfig(extra: Record<string, string> = {}): { dir: string; cleanup: () => void } {
  const t = tempDir({ "jobchain.yaml": MATH_CONFIG, "jobs/math.mjs": MATH_JOBS, ...extra });
  return { dir: t.dir, cleanup: t.cleanup };
}
