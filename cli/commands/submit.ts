import { readConfigSources, resolveConfig, setupTracing, type GraphInstance } from "../../core/index.ts";
import { JobChainClient } from "../../runner/index.ts";
import { parse, positiveInt } from "../args.ts";
import { drive } from "../drive.ts";
import { EXIT, UsageError } from "../errors.ts";
import { parseInlineInputs, readInputs } from "../inputs.ts";
import { BufferedWriter } from "../output.ts";
import { outputFormat } from "./common.ts";
import { NATS_USAGE, REPLICAS_USAGE, busFlags, busOptions, connectFromFlags, natsFlags } from "./nats-flags.ts";

export const usage = `usage: jobchain submit [CONFIG] --graph ID [--input JSON]... [--inputs FILE|-] [--nats URL] [--no-wait]
                       [--timeout S] [--format jsonl|pretty]

Submits tasks to runners over NATS and, unless --no-wait, prints their results exactly as 'jobchain run' does
(same JSON Lines, same exit codes). CONFIG is optional: without it, the graph is looked up in what runners
publish. Tasks with an 'id' keep it; submitting an id again within the duplicate window is ignored.
  --no-wait       print {"id","graph","status":"submitted"|"duplicate","task"} per task and exit 0
  --timeout S     seconds each task may take (it fails after that)
  --window N      tasks awaiting results at once (default 10000)
  --batch N       send up to N tasks submitted together in one message (fewer JetStream operations per task;
                  a repeated submission is then recognised per batch, not per task; results stay exactly once)
${NATS_USAGE}
${REPLICAS_USAGE}`;

export async function submit(argv: string[]): Promise<number> {
  const { values, positionals } = parse("submit", argv, {
    ...natsFlags,
    ...busFlags,
    graph: { type: "string", short: "g" },
    input: { type: "string", short: "i", multiple: true },
    inputs: { type: "string" },
    "no-wait": { type: "boolean" },
    timeout: { type: "string" },
    window: { type: "string" },
    batch: { type: "string" },
    format: { type: "string", short: "f" },
  });
  if (values.help) {
    process.stdout.write(usage + "\n");
    return EXIT.ok;
  }
  if (values.graph === undefined) throw new UsageError("submit: --graph is required", "pass the graph instance, e.g. --graph etl or --graph etl/eu");
  const format = outputFormat(values.format);
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got '${values.timeout}'`);
  const window = positiveInt("window", values.window) ?? 10_000;
  const inline = parseInlineInputs(values.input ?? []);
  if (inline.length === 0 && values.inputs === undefined) {
    throw new UsageError("submit: no tasks given", "pass --input JSON (repeatable) or --inputs FILE (JSON Lines; '-' for stdin)");
  }
  let graphs: GraphInstance[] | undefined;
  if (positionals[0] !== undefined) graphs = resolveConfig(readConfigSources(positionals[0])).instances;
  const tracing = await setupTracing();
  const nc = await connectFromFlags(values, `jobchain-submit-${process.pid}`);
  const batch = positiveInt("batch", values.batch);
  const client = new JobChainClient({ nc, graphs, bus: busOptions(values), tracer: tracing?.tracer, batch });
  try {
    const graph = await client.resolveGraph(values.graph);
    let idle = await client.idleHeads(graph).catch(() => []);
    if (idle.length > 0) {
      // A runner that has just started may not have asked for messages yet: look once more before warning.
      await new Promise((r) => setTimeout(r, 1000));
      idle = await client.idleHeads(graph).catch(() => []);
    }
    if (idle.length > 0) {
      process.stderr.write(
        `jobchain: no runner is serving ${idle.map((n) => `'${n}'`).join(", ")} of graph '${graph}' right now; ` +
          `tasks wait in JetStream until one starts (jobchain runner … --graph ${graph})\n`,
      );
    }
    if (values["no-wait"]) {
      const out = new BufferedWriter(process.stdout);
      let bad = 0;
      for await (const item of readInputs(inline, values.inputs)) {
        if ("error" in item) {
          bad++;
          process.stderr.write(`jobchain: skipped input ${item.error}\n`);
          continue;
        }
        const s = await client.submit(item.task, { graph, timeout });
        out.write(JSON.stringify({ id: s.id, graph: s.graph, status: s.duplicate ? "duplicate" : "submitted", task: item.task }) + "\n");
      }
      await out.end();
      return bad > 0 ? EXIT.invalid : EXIT.ok;
    }
    const summary = await drive(readInputs(inline, values.inputs), {
      format,
      window,
      execute: (task) => client.run(task, { graph, timeout }),
    });
    return summary.exitCode;
  } finally {
    await client.close();
    await nc.close();
    await tracing?.shutdown();
  }
}
