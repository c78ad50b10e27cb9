// The CLI contract, driven through the real binary on real configuration directories.
import { cpSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, REPO, cli, hasStack } from "./helpers/cli.ts";
import { tempDir } from "./helpers/tmp.ts";

const EXAMPLE = path.join(REPO, "examples/pipeline");
const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((c) => c()));

function dir(files: Record<string, string>) {
  const t = tempDir(files);
  cleanups.push(t.cleanup);
  return t;
}

beforeAll(() => {
  if (!existsSync(path.join(REPO, "dist/cli/main.js"))) throw new Error(`run 'make build' first: ${BIN} runs from dist/`);
});

const JOBS_TS = `
import { Job } from "jobchain";

export class Upper extends Job {
  async run(task, ctx) {
    return { text: String(task.text).toUpperCase(), attempt: ctx.attempt };
  }
}

export class Check extends Job {
  async run(task, ctx) {
    if (task.fail) throw new Error("task asked to fail: " + task.text);
    return { checked: ctx.inputs.upper.text, task_id: ctx.taskId };
  }
}
`;

const PIPE = {
  "jobs.yaml": "upper: {type: Upper}\ncheck: {type: Check}\n",
  "graphs.yaml": "pipe:\n  upper: {next: [check]}\n  check: {}\n",
  "jobs/pipe.mjs": JOBS_TS,
};

describe("jobchain run", () => {
  it("prints one JSON line per task with the exact contract shape, exit 0", async () => {
    const r = await cli(["run", EXAMPLE, "--graph", "text_report/brief", "--inputs", path.join(EXAMPLE, "tasks.jsonl")]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.lines).toHaveLength(4);
    const byId = Object.fromEntries(r.lines.map((l) => [l.id, l]));
    expect(byId["review-2"]).toEqual({
      id: "review-2",
      graph: "text_report/brief",
      status: "succeeded",
      task: { id: "review-2", text: "Setup was slow and the first build was broken. I hate flaky tests." },
      result: { id: "review-2", words: 13, tone: "negative", score: -4, top_words: ["was", "broken"] },
    });
    for (const l of r.lines) expect(Object.keys(l)).toEqual(["id", "graph", "status", "task", "result"]);
  });

  it("loads jobs from <config>/jobs importing 'jobchain', reports failures, exit 1", async () => {
    const t = dir(PIPE);
    const r = await cli(["run", t.dir, "--input", '{"text":"a"}', "--input", '{"text":"b","fail":true}', "--input", '"plain"']);
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(3);
    const failed = r.lines.find((l) => l.status === "failed")!;
    expect(failed).toEqual({
      id: failed.id,
      graph: "pipe",
      status: "failed",
      task: { text: "b", fail: true },
      error: { job: "check", message: "task asked to fail: b", attempt: 1 },
    });
    const plain = r.lines.find((l) => l.task === "plain")!;
    expect(plain.result).toEqual({ checked: "UNDEFINED", task_id: plain.id });
    const a = r.lines.find((l) => (l.task as { text?: string }).text === "a")!;
    expect(a.result).toEqual({ checked: "A", task_id: a.id });
    expect(new Set(r.lines.map((l) => l.id)).size).toBe(3);
  });

  it("reads JSON Lines from stdin, skips a bad line with file:line, runs the rest, exit 2", async () => {
    const t = dir(PIPE);
    const r = await cli(["run", t.dir, "--inputs", "-"], { stdin: '{"text":"x"}\nnot json\n\n{"text":"y"}\n' });
    expect(r.lines.map((l) => (l.result as { checked: string }).checked).sort()).toEqual(["X", "Y"]);
    expect(r.stderr).toMatch(/skipped input <stdin>:2: not valid JSON/);
    expect(r.code).toBe(2);
  });

  it("keeps save_result outputs in 'saved'", async () => {
    const t = dir({ ...PIPE, "jobs.yaml": "upper: {type: Upper, save_result: true}\ncheck: {type: Check}\n" });
    const r = await cli(["run", t.dir, "--input", '{"text":"q","id":"t-1"}']);
    expect(r.lines).toEqual([
      {
        id: "t-1",
        graph: "pipe",
        status: "succeeded",
        task: { text: "q", id: "t-1" },
        result: { checked: "Q", task_id: "t-1" },
        saved: { upper: { text: "Q", attempt: 1 } },
      },
    ]);
  });

  it("selects a parameterized graph by name when it has a single group", async () => {
    const t = dir({
      "jobchain.yaml": `
jobs:
  hello: {type: Echo, properties: {add: {greeting: $greeting}}}
graphs:
  greet:
    hello: {}
parameters:
  greet:
    english: {hello: {greeting: hi}}
`,
    });
    const r = await cli(["run", t.dir, "--graph", "greet", "--input", '{"name":"ann"}']);
    expect(r.code).toBe(0);
    expect(r.lines[0]).toMatchObject({ graph: "greet/english", result: { name: "ann", greeting: "hi" } });
    const r2 = await cli(["run", t.dir, "--input", "{}"]);
    expect(r2.code).toBe(0);
  });

  it("exits 2 with a clear message for usage mistakes, never a stack trace", async () => {
    const cases: [string[], RegExp][] = [
      [["run", EXAMPLE, "--input", "{}"], /no graph given and there are 2 graph instances; choose one of: text_report\/brief, text_report\/detailed/],
      [["run", EXAMPLE, "--graph", "text_report", "--input", "{}"], /graph 'text_report' has 2 parameter groups/],
      [["run", EXAMPLE, "--graph", "nope", "--input", "{}"], /unknown graph 'nope'/],
      [["run", EXAMPLE, "--graph", "text_report/brief", "--input", "{bad"], /--input #1 is not valid JSON/],
      [["run", EXAMPLE, "--graph", "text_report/brief"], /run: no tasks given/],
      [["run", EXAMPLE, "--bogus"], /run: Unknown option '--bogus'/],
      [["run", EXAMPLE, "--concurrency", "0", "--input", "{}"], /--concurrency must be a positive integer/],
      [["run", EXAMPLE, "--format", "xml", "--input", "{}"], /--format must be jsonl or pretty/],
      [["run", EXAMPLE, "--graph", "text_report/brief", "--inputs", "/nonexistent.jsonl"], /cannot read --inputs \/nonexistent.jsonl: ENOENT/],
      [["frobnicate"], /unknown command 'frobnicate'/],
      [["runner", EXAMPLE, "--drain-timeout", "soon"], /--drain-timeout must be a number of seconds, got 'soon'/],
      [["runner", EXAMPLE, "--nodes", "clean", "--pool", "default"], /runner: give --nodes or --pool, not both/],
      [["runner", EXAMPLE, "--graph", "text_report/brief", "--nodes", "clean,bogus"], /--nodes names unknown node\(s\): bogus\n  hint: nodes: clean/],
      [["runner", EXAMPLE, "--metrics-port", "http"], /--metrics-port must be a port number, got 'http'/],
      [["runner", EXAMPLE, "--nats", "http://127.0.0.1:4222"], /unsupported NATS server URL 'http:\/\/127.0.0.1:4222'/],
      [["submit", EXAMPLE, "--input", "{}"], /submit: --graph is required/],
      [["run", "/nonexistent/config", "--input", "{}"], /\/nonexistent\/config: no such file or directory/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(message);
      expect(hasStack(r.stderr)).toBe(false);
      expect(r.stdout).toBe("");
    }
  });

  it("pretty format prints a readable line per task and a summary", async () => {
    const r = await cli(["run", EXAMPLE, "--graph", "text_report/detailed", "--inputs", path.join(EXAMPLE, "tasks.jsonl"), "--format", "pretty"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^✓ review-1 {2}text_report\/detailed {2}\{"id":"review-1"/m);
    expect(r.stdout).toMatch(/4 tasks: 4 succeeded, 0 failed in/);
  });
});

describe("jobchain run with a job that ignores its abort signal", () => {
  // The job sleeps far longer than its 0.3 s timeout and never looks at ctx.signal. The run must end soon after
  // its last result line instead of waiting for the sleep: the bound below is generous, the sleep much longer.
  const SLEEP_MS = 20_000;
  const ignoring = (worker: boolean) =>
    dir({
      "jobs.yaml": "sleepy: {type: Sleepy, timeout: 0.3}\n",
      "graphs.yaml": "g:\n  sleepy: {}\n",
      "jobs/sleepy.mjs": `
import { Job } from "jobchain";
export class Sleepy extends Job {
  static worker = ${worker};
  run() { return new Promise((r) => setTimeout(() => r({ woke: true }), ${SLEEP_MS})); }
}
`,
    });

  for (const worker of [false, true]) {
    it(`exits soon after its last result with status 1 and a warning naming the job and task${worker ? " (worker thread)" : ""}`, async () => {
      const t = ignoring(worker);
      const r = await cli(["run", t.dir, "--input", '{"id": "t-1"}']);
      expect(r.lines).toEqual([{ id: "t-1", graph: "g", status: "failed", task: { id: "t-1" }, error: { job: "sleepy", message: "job 'sleepy' timed out after 0.3s", attempt: 1, type: "TimeoutError" } }]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("jobchain: warning: job 'sleepy' of task 't-1' (graph g) ignored its abort signal and is still running; exiting without it");
      expect(r.exitedAt - r.lastStdoutAt!).toBeLessThan(SLEEP_MS / 4);
    });
  }
});

describe("jobchain validate", () => {
  it("summarises graph instances with heads and tails", async () => {
    const r = await cli(["validate", EXAMPLE]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("2 graph instances:");
    expect(r.stdout).toContain("  text_report/brief: 4 jobs; heads: clean; tails: report");
  });

  it("lists every problem with file and line, exit 2", async () => {
    const t = dir({ "jobs.yaml": "a: {type: Nope}\n", "graphs.yaml": "g:\n  a: {next: [b]}\n" });
    const r = await cli(["validate", t.dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      [
        "jobchain: invalid configuration (2 problems):",
        `  ${t.dir}/jobs.yaml:1: a.type: unknown job type 'Nope' for job 'a' (known types: Delay, Echo, Fail, HttpFetch, Merge, OpenAIChat, OpenAIJob, Passthrough; export a class extending Job with this name (job classes are loaded from ${t.dir}/jobs))`,
        `  ${t.dir}/graphs.yaml:2: g.a.next.0: next of 'a' names 'b', which is not defined (add 'b' to jobs and to graph 'g', or remove it from next)`,
        "",
      ].join("\n"),
    );
  });
});

describe("jobchain graph", () => {
  it("draws mermaid and dot", async () => {
    const t = dir({ "jobs.yaml": "a: {type: Echo}\nb: {type: Merge}\n", "graphs.yaml": "g:\n  a: {next: [b]}\n  b: {}\n" });
    const m = await cli(["graph", t.dir]);
    expect(m.stdout).toBe('%% g\nflowchart LR\n  n_a["a: Echo"]\n  n_b["b: Merge"]\n  n_a --> n_b\n');
    const d = await cli(["graph", t.dir, "--graph", "g", "--format", "dot"]);
    expect(d.stdout).toBe('digraph "g" {\n  rankdir=LR;\n  node [shape=box];\n  "a" [label="a\\\\nEcho"];\n  "b" [label="b\\\\nMerge"];\n  "a" -> "b";\n}\n');
  });
});

describe("job modules outside the repository", () => {
  it("loads a TypeScript job that imports 'jobchain' from the project's node_modules", async () => {
    // A user's project: the package copied into node_modules as an install would, jobs in TypeScript.
    const project = dir({
      "package.json": '{"name":"my-project","type":"module"}',
      "pipeline/jobs.yaml": "shout: {type: Shout, properties: {suffix: '!'}}\n",
      "pipeline/graphs.yaml": "main:\n  shout: {}\n",
      "extra/shout.ts": `
import { Job, type JobContext, type Task } from "jobchain";

export class Shout extends Job {
  async run(task: Task, ctx: JobContext): Promise<Record<string, unknown>> {
    return { said: String(task.text).toUpperCase() + String(this.properties.suffix), job: ctx.job };
  }
}
`,
    });
    const pkg = path.join(project.dir, "node_modules/jobchain");
    mkdirSync(pkg, { recursive: true });
    cpSync(path.join(REPO, "package.json"), path.join(pkg, "package.json"));
    cpSync(path.join(REPO, "dist"), path.join(pkg, "dist"), { recursive: true });
    symlinkSync(path.join(REPO, "node_modules"), path.join(pkg, "node_modules"));
    const r = await cli(["run", "pipeline", "--jobs", "extra", "--input", '{"text":"hey"}'], { cwd: project.dir });
    expect(r.stderr).toBe("");
    expect(r.lines.map((l) => l.result)).toEqual([{ said: "HEY!", job: "shout" }]);
    expect(r.code).toBe(0);
  });

  it("lets jobs import 'jobchain' from a directory without node_modules (the running copy serves them)", async () => {
    const project = dir({
      "jobs.yaml": "x: {type: X}\n",
      "graphs.yaml": "g:\n  x: {}\n",
      "jobs/x.mjs": 'import { Job } from "jobchain";\nexport class X extends Job { run(task) { return { got: task.n }; } }\n',
    });
    const r = await cli(["run", project.dir, "--input", '{"n": 5}']);
    expect(r.stderr).toBe("");
    expect(r.lines.map((l) => l.result)).toEqual([{ got: 5 }]);
  });

  it("runs a worker-thread job that imports 'jobchain' from a directory without node_modules", async () => {
    const project = dir({
      "jobs.yaml": "spin: {type: Spin}\n",
      "graphs.yaml": "g:\n  spin: {}\n",
      "jobs/spin.ts": [
        'import { Job, type Task } from "jobchain";',
        'import { threadId } from "node:worker_threads";',
        "export class Spin extends Job {",
        "  static override worker = true;",
        "  run(task: Task) { return { doubled: Number(task.n) * 2, in_worker: threadId > 0 }; }",
        "}",
      ].join("\n"),
    });
    const r = await cli(["run", project.dir, "--input", '{"n": 4}']);
    expect(r.stderr).toBe("");
    expect(r.lines.map((l) => l.result)).toEqual([{ doubled: 8, in_worker: true }]);
  });

  it("explains a job module whose own import is missing", async () => {
    const project = dir({
      "jobs.yaml": "x: {type: X}\n",
      "graphs.yaml": "g:\n  x: {}\n",
      "jobs/x.mjs": 'import { thing } from "left-pad-extreme";\nexport class X {}\n',
    });
    const r = await cli(["validate", project.dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/jobs\/x.mjs: cannot load job module: Cannot find package 'left-pad-extreme'.*\(install the missing package where your jobs live \(npm install left-pad-extreme\)\)/);
    expect(hasStack(r.stderr)).toBe(false);
  });
});

describe("jobchain jobs", () => {
  it("lists the built-in jobs and those of $JOBCHAIN_JOBS and --jobs, with where each comes from", async () => {
    const r = await cli(["jobs", "--format", "json"], { env: { ...process.env, JOBCHAIN_JOBS: path.join(EXAMPLE, "jobs") } });
    expect(r.code, r.stderr).toBe(0);
    const types = JSON.parse(r.stdout) as { type: string; source: string }[];
    expect(types.find((t) => t.type === "Echo")?.source).toBe("built-in");
    expect(types.find((t) => t.type === "CleanText")?.source).toMatch(/examples\/pipeline\/jobs\/text\.ts$/);
    const plain = await cli(["jobs"]);
    expect(plain.stdout).not.toContain("CleanText");
    expect((await cli(["jobs", "--jobs", path.join(EXAMPLE, "jobs")])).stdout).toMatch(/^Report\s+\S*text\.ts$/m);
  });

  it("fails naming the directory or module that does not load", async () => {
    const t = tempDir();
    mkdirSync(path.join(t.dir, "jobs"));
    writeFileSync(path.join(t.dir, "jobs", "broken.ts"), "export class Broken extends {}\n");
    for (const env of [{ JOBCHAIN_JOBS: path.join(t.dir, "missing") }, { JOBCHAIN_JOBS: path.join(t.dir, "jobs") }]) {
      const r = await cli(["jobs"], { env: { ...process.env, ...env } });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(env.JOBCHAIN_JOBS);
      expect(hasStack(r.stderr)).toBe(false);
    }
  });
});
