import { readConfigSources, resolveConfig } from "../../core/index.ts";
import { JobChainClient } from "../../runner/index.ts";
import { parse } from "../args.ts";
import { EXIT, UsageError } from "../errors.ts";
import { BufferedWriter, outcomeLine } from "../output.ts";
import { NATS_USAGE, connectFromFlags, natsFlags, replicasOption } from "./nats-flags.ts";

export const usage = `usage: jobchain results [CONFIG] --graph ID (--id TASK... [--wait S] | --follow) [--nats URL]

Prints recorded results as JSON Lines, in the shape of 'jobchain run'. With CONFIG, the graph need not have been
published by a runner yet.
  --id TASK   a task's result (repeatable); a task without a result yet is waited for up to --wait seconds
              (default 0: print {"id","graph","status":"pending"} at once)
  --follow    print every result recorded from now on, until interrupted
Exit status: 0 when every named task succeeded, 1 when one failed or is still pending, 2 for usage errors.
${NATS_USAGE}`;

export async function results(argv: string[]): Promise<number> {
  const { values, positionals } = parse("results", argv, {
    ...natsFlags,
    graph: { type: "string", short: "g" },
    id: { type: "string", multiple: true },
    wait: { type: "string" },
    follow: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(usage + "\n");
    return EXIT.ok;
  }
  if (values.graph === undefined) throw new UsageError("results: --graph is required");
  if (!values.follow && !values.id?.length) throw new UsageError("results: give --id TASK (repeatable) or --follow");
  const wait = values.wait === undefined ? 0 : Number(values.wait);
  if (!(wait >= 0)) throw new UsageError(`--wait must be a number of seconds, got '${values.wait}'`);
  const graphs = positionals[0] !== undefined ? resolveConfig(readConfigSources(positionals[0])).instances : undefined;
  const nc = await connectFromFlags(values, `jobchain-results-${process.pid}`);
  // With CONFIG, the instance's streams are created when missing: with the replicas of JOBCHAIN_NATS_REPLICAS.
  const client = new JobChainClient({ nc, graphs, bus: { replicas: replicasOption(undefined) } });
  const out = new BufferedWriter(process.stdout);
  try {
    const graph = await client.resolveGraph(values.graph);
    if (values.follow) {
      const stop = new AbortController();
      process.once("SIGINT", () => stop.abort());
      process.once("SIGTERM", () => stop.abort());
      for await (const o of client.results(graph, stop.signal)) out.write(outcomeLine(o) + "\n");
      return EXIT.ok;
    }
    let code: number = EXIT.ok;
    const outcomes = await Promise.all(values.id!.map((id) => client.result(id, { graph, timeout: wait })));
    for (const o of outcomes) {
      if (o.status === "failed" && o.error.job === "" && /^no result within/.test(o.error.message)) {
        out.write(JSON.stringify({ id: o.id, graph: o.graph, status: "pending" }) + "\n");
        code = EXIT.failed;
        continue;
      }
      if (o.status === "failed") code = EXIT.failed;
      out.write(outcomeLine(o) + "\n");
    }
    return code;
  } finally {
    await out.end();
    await client.close();
    await nc.close();
  }
}
