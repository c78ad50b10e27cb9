import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, JobChain, createLogger, defineGraph, fn, serial, setupTracing, type Tracing } from "./index.ts";
import { readTracingConfig } from "./tracing-config.ts";
import { JsonLinesFileExporter } from "./tracing-sdk.ts";

const logger = createLogger({ level: "silent" });

interface SpanLine {
  name: string;
  context: { trace_id: string; span_id: string };
  parent_id: string | null;
  start_time: number;
  end_time: number;
  duration_us: number;
  attributes: Record<string, unknown>;
  events: { name: string; timestamp: number; attributes: Record<string, unknown> }[];
  status: { status_code: number; description: string | null };
}

let dir: string;
const savedEnv = process.env.JOBCHAIN_OT_CONFIG;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "jobchain-tracing-"));
  delete process.env.JOBCHAIN_OT_CONFIG;
});

afterEach(() => {
  if (savedEnv === undefined) delete process.env.JOBCHAIN_OT_CONFIG;
  else process.env.JOBCHAIN_OT_CONFIG = savedEnv;
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

function readSpans(file: string): SpanLine[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as SpanLine);
}

/** The problems of the ConfigError that reading `file` throws (fails the test when it does not throw one). */
function configProblems(file: string): ConfigError["problems"] {
  try {
    readTracingConfig(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`reading ${file} did not fail`);
}

describe("tracing of a chain to a JSON-lines file", () => {
  it("writes one task span per task and one job span per job run, linked and with failures marked", async () => {
    const traceFile = path.join(dir, "traces", "trace.jsonl");
    process.env.JOBCHAIN_OT_CONFIG = writeConfig(
      "otel.yaml",
      ["exporter: file", "service_name: jobchain-test", "batch_processor:", "  schedule_delay_millis: 10", "file_exporter:", `  path: ${JSON.stringify(traceFile)}`].join("\n"),
    );
    const tracing = await setupTracing();
    expect(tracing).toBeDefined();

    let workRuns = 0;
    const graph = defineGraph(
      "traced",
      serial(
        fn("wait", () => new Promise((resolve) => setTimeout(() => resolve({ waited: true }), 20))),
        fn("work", (t, ctx) => {
          workRuns++;
          if (t.flaky && ctx.attempt === 1) throw new Error("first attempt fails");
          return { worked: true };
        }),
        fn("check", (t) => {
          if (t.fail) throw new Error(`check failed for ${String(t.id)}`);
          return { checked: true };
        }),
      ),
      { work: { retry: { attempts: 2, backoff: 0 } } },
    );
    const chain = new JobChain([graph], { logger, tracer: tracing!.tracer });
    const outcomes = await Promise.all([
      chain.execute({ id: "t1" }),
      chain.execute({ id: "t2", fail: true }),
      chain.execute({ id: "t3", flaky: true }),
    ]);
    await chain.markInputCompleted();
    await tracing!.shutdown();
    expect(outcomes.map((o) => o.status)).toEqual(["succeeded", "failed", "succeeded"]);
    expect(workRuns).toBe(4);

    const spans = readSpans(traceFile);
    const tasks = spans.filter((s) => s.name.startsWith("task "));
    const jobs = spans.filter((s) => s.name.startsWith("job "));
    expect(spans).toHaveLength(12);
    expect(tasks.map((s) => s.name)).toEqual(["task traced", "task traced", "task traced"]);
    expect(tasks.map((s) => s.attributes["jobchain.task_id"]).sort()).toEqual(["t1", "t2", "t3"]);
    expect(jobs.map((s) => s.name).sort()).toEqual([
      "job check",
      "job check",
      "job check",
      "job wait",
      "job wait",
      "job wait",
      "job work",
      "job work",
      "job work",
    ]);

    const taskSpan = (id: string): SpanLine => tasks.find((s) => s.attributes["jobchain.task_id"] === id)!;
    const jobSpan = (id: string, job: string): SpanLine =>
      jobs.find((s) => s.attributes["jobchain.task_id"] === id && s.attributes["jobchain.job"] === job)!;

    // Each task is a trace of its own; its job spans are children of its task span.
    expect(new Set(tasks.map((s) => s.context.trace_id)).size).toBe(3);
    for (const t of tasks) {
      expect(t.parent_id).toBeNull();
      expect(t.attributes["jobchain.graph"]).toBe("traced");
      for (const job of ["wait", "work", "check"]) {
        const j = jobSpan(t.attributes["jobchain.task_id"] as string, job);
        expect(j.context.trace_id).toBe(t.context.trace_id);
        expect(j.parent_id).toBe(t.context.span_id);
        expect(j.attributes).toMatchObject({ "jobchain.graph": "traced", "jobchain.job": job });
      }
    }

    // The failing job and its task are marked as errors; the job span records the exception.
    const failedJob = jobSpan("t2", "check");
    expect(failedJob.status).toEqual({ status_code: 2, description: "check failed for t2" });
    const exception = failedJob.events.find((e) => e.name === "exception");
    expect(exception?.attributes).toMatchObject({ "exception.type": "Error", "exception.message": "check failed for t2" });
    expect(failedJob.attributes["jobchain.attempts"]).toBeUndefined();
    expect(taskSpan("t2").status).toEqual({ status_code: 2, description: "check failed for t2" });
    expect(taskSpan("t2").attributes["jobchain.failed_job"]).toBe("check");

    // Every other span is not an error, and no other span has an exception event.
    const others = spans.filter((s) => s !== failedJob && s !== taskSpan("t2"));
    expect(others.map((s) => s.status.status_code)).toEqual(new Array(10).fill(0));
    expect(others.flatMap((s) => s.events.filter((e) => e.name === "exception"))).toEqual([]);

    // A retried job shows its attempts.
    const flaky = jobSpan("t3", "work");
    expect(flaky.attributes["jobchain.attempts"]).toBe(2);
    expect(flaky.events.map((e) => [e.name, e.attributes.attempt])).toEqual([
      ["attempt", 1],
      ["retry", 1],
      ["attempt", 2],
    ]);
    expect(flaky.events[1]!.attributes.error).toBe("first attempt fails");
    expect(jobSpan("t1", "work").attributes["jobchain.attempts"]).toBe(1);

    // A job that sleeps has a real duration. (Times are not compared across spans: the SDK anchors each span's
    // start on Date.now(), to the millisecond.)
    for (const id of ["t1", "t2", "t3"]) {
      const wait = jobSpan(id, "wait");
      expect(wait.end_time).toBeGreaterThan(wait.start_time);
      expect(wait.duration_us).toBeGreaterThan(0);
    }
  });

  it("rotates the file to .1, .2 when the next export would pass max_size_bytes", async () => {
    const traceFile = path.join(dir, "rot.jsonl");
    process.env.JOBCHAIN_OT_CONFIG = writeConfig(
      "otel.yaml",
      [
        "exporter: file",
        "batch_processor: {schedule_delay_millis: 600000}",
        `file_exporter: {path: ${JSON.stringify(traceFile)}, max_size_bytes: 100, max_files: 3}`,
      ].join("\n"),
    );
    // Three sessions; with a long batch delay each writes its spans in one export, at shutdown.
    for (const id of ["s1", "s2", "s3"]) {
      const tracing = (await setupTracing()) as Tracing;
      const chain = new JobChain([defineGraph("rot", fn("only", () => ({})))], { logger, tracer: tracing.tracer });
      await chain.submitTask({ id });
      await chain.markInputCompleted();
      await tracing.shutdown();
    }
    const ids = (file: string): unknown[] => readSpans(file).map((s) => [s.name, s.attributes["jobchain.task_id"]]);
    expect(ids(traceFile)).toEqual([
      ["job only", "s3"],
      ["task rot", "s3"],
    ]);
    expect(ids(`${traceFile}.1`)).toEqual([
      ["job only", "s2"],
      ["task rot", "s2"],
    ]);
    expect(ids(`${traceFile}.2`)).toEqual([
      ["job only", "s1"],
      ["task rot", "s1"],
    ]);
    expect(existsSync(`${traceFile}.3`)).toBe(false);
  });
});

describe("JsonLinesFileExporter", () => {
  function emit(exporter: JsonLinesFileExporter, names: string[]): void {
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracer = provider.getTracer("test");
    for (const name of names) tracer.startSpan(name).end();
  }

  it("keeps at most max_files rotated files", () => {
    const file = path.join(dir, "x.jsonl");
    emit(new JsonLinesFileExporter(file, 10, 2), ["a", "b", "c", "d", "e"]);
    expect(readSpans(file).map((s) => s.name)).toEqual(["e"]);
    expect(readSpans(`${file}.1`).map((s) => s.name)).toEqual(["d"]);
    expect(readSpans(`${file}.2`).map((s) => s.name)).toEqual(["c"]);
    expect(existsSync(`${file}.3`)).toBe(false);
  });

  it("starts the file afresh when max_files is 0", () => {
    const file = path.join(dir, "y.jsonl");
    emit(new JsonLinesFileExporter(file, 10, 0), ["a", "b", "c"]);
    expect(readSpans(file).map((s) => s.name)).toEqual(["c"]);
    expect(existsSync(`${file}.1`)).toBe(false);
  });

  it("appends without rotating while under max_size_bytes", () => {
    const file = path.join(dir, "z.jsonl");
    emit(new JsonLinesFileExporter(file, 1_000_000, 2), ["a", "b", "c"]);
    expect(readSpans(file).map((s) => s.name)).toEqual(["a", "b", "c"]);
    expect(existsSync(`${file}.1`)).toBe(false);
  });
});

describe("tracing configuration", () => {
  it("is off without JOBCHAIN_OT_CONFIG", async () => {
    expect(await setupTracing()).toBeUndefined();
  });

  it("is off with exporter: none", async () => {
    process.env.JOBCHAIN_OT_CONFIG = writeConfig("none.yaml", "exporter: none\n");
    expect(await setupTracing()).toBeUndefined();
  });

  it("rejects an unknown exporter with a ConfigError naming the file and field", async () => {
    const file = writeConfig("bad.yaml", "exporter: zipkin\n");
    process.env.JOBCHAIN_OT_CONFIG = file;
    const err = await setupTracing().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file, path: ["exporter"], hint: "see docs/observability.md for the tracing configuration" });
    expect(problems[0]!.message).toContain("console");
    expect((err as ConfigError).message).toContain(`${file}: exporter:`);
  });

  it("rejects unknown fields, naming them", () => {
    const file = writeConfig("typo.yaml", "exporter: file\nfile_exporter:\n  paht: /tmp/x\n");
    const problems = configProblems(file);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file, path: ["file_exporter"] });
    expect(problems[0]!.message).toContain("paht");
  });

  it("reports YAML syntax errors and missing files as ConfigError naming the file", () => {
    const broken = writeConfig("broken.yaml", "exporter: [file\n");
    const missing = path.join(dir, "missing.yaml");
    for (const file of [broken, missing]) {
      const problems = configProblems(file);
      expect(problems).toHaveLength(1);
      expect(problems[0]!.file).toBe(file);
      expect(problems[0]!.message).toMatch(/^cannot read tracing config: /);
    }
  });

  it("fills defaults", () => {
    const file = writeConfig("min.yaml", "exporter: file\n");
    expect(readTracingConfig(file)).toEqual({
      exporter: "file",
      service_name: "jobchain",
      batch_processor: { max_queue_size: 2048, schedule_delay_millis: 1000 },
      file_exporter: { path: "~/.jobchain/otel_trace.jsonl", max_size_bytes: 5 * 1024 * 1024, max_files: 5 },
    });
    // An empty file is the defaults as well.
    expect(readTracingConfig(writeConfig("empty.yaml", "")).exporter).toBe("file");
  });
});
