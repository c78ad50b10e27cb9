import { JobChain, instantiate, setupTracing } from "../../core/index.ts";
import { parse, positiveInt } from "../args.ts";
import { drive } from "../drive.ts";
import { EXIT, UsageError } from "../errors.ts";
import { parseInlineInputs, readInputs } from "../inputs.ts";
import { ABANDON_GRACE_MS, configFlags, loadFromArgs, outputFormat, warnAbandoned } from "./common.ts";

export const usage = `usage: jobchain run [CONFIG] [--graph ID] [--input JSON]... [--inputs FILE|-] [--jobs DIR]...
                    [--concurrency N] [--format jsonl|pretty] [--timeout SECONDS]

Runs tasks through a graph in this process and prints one result per task, in completion order.
  CONFIG          configuration directory or combined file (default: .)
  --graph ID      graph instance: 'graph' or 'graph/group' (optional when there is only one)
  --input JSON    a task (repeatable)
  --inputs FILE   JSON Lines of tasks; '-' reads standard input
  --jobs DIR      more job classes (repeatable); <CONFIG>/jobs/ is always loaded
  --concurrency N most tasks in flight at once (default 1000)
  --timeout S     seconds each task may take
  --format        jsonl (default when stdout is not a terminal) or pretty
Exit status: 0 all tasks succeeded, 1 some failed, 2 invalid configuration or usage.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse("run", argv, {
    ...configFlags,
    graph: { type: "string", short: "g" },
    input: { type: "string", short: "i", multiple: true },
    inputs: { type: "string" },
    concurrency: { type: "string", short: "c" },
    format: { type: "string", short: "f" },
    timeout: { type: "string" },
  });
  if (values.help) {
    process.stdout.write(usage + "\n");
    return EXIT.ok;
  }
  const format = outputFormat(values.format);
  const concurrency = positiveInt("concurrency", values.concurrency) ?? 1000;
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got '${values.timeout}'`);
  const inline = parseInlineInputs(values.input ?? []);
  if (inline.length === 0 && values.inputs === undefined) {
    throw new UsageError("run: no tasks given", "pass --input JSON (repeatable) or --inputs FILE (JSON Lines; '-' for stdin)");
  }
  const { config, registry } = await loadFromArgs(positionals[0], values.jobs);
  const tracing = await setupTracing();
  const chain = new JobChain(instantiate(config, registry), { concurrency, taskTimeout: timeout, tracer: tracing?.tracer });
  const graph = chain.resolveGraph(values.graph);
  const interrupt = new AbortController();
  const onSigint = (): void => {
    if (interrupt.signal.aborted) process.exit(EXIT.interrupted);
    process.stderr.write("\njobchain: interrupted; finishing the tasks in flight (Ctrl-C again to quit now)\n");
    interrupt.abort();
  };
  process.on("SIGINT", onSigint);
  try {
    const summary = await drive(readInputs(inline, values.inputs), {
      format,
      window: Math.max(concurrency * 2, 1024),
      execute: (task) => chain.execute(task, { graph }),
      signal: interrupt.signal,
    });
    // A job that ignores its abort signal must not hold the process once every result is out.
    warnAbandoned(await chain.waitForAbandoned(ABANDON_GRACE_MS));
    await chain.markInputCompleted();
    return interrupt.signal.aborted ? EXIT.interrupted : summary.exitCode;
  } finally {
    process.off("SIGINT", onSigint);
    await tracing?.shutdown();
  }
}
