import { instancesNamed, readConfigSources, resolveConfig } from "../../core/index.ts";
import { InstanceBus } from "../../runner/index.ts";
import { parse } from "../args.ts";
import { EXIT, UsageError } from "../errors.ts";
import { NATS_USAGE, connectFromFlags, natsFlags } from "./nats-flags.ts";

export const usage = `usage: jobchain nats cleanup [CONFIG] --graph ID [--nats URL]

Removes the streams, buckets and descriptor of a graph instance (all its groups when ID is a graph name and
CONFIG is given). Results, queued tasks and join state are deleted.
${NATS_USAGE}`;

export async function nats(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "--help" || sub === "-h" || sub === undefined) {
    process.stdout.write(usage + "\n");
    return sub === undefined ? EXIT.invalid : EXIT.ok;
  }
  if (sub !== "cleanup") throw new UsageError(`nats: unknown subcommand '${sub}'`, "the subcommand is: cleanup");
  const { values, positionals } = parse("nats cleanup", rest, { ...natsFlags, graph: { type: "string", short: "g", multiple: true } });
  if (values.help) {
    process.stdout.write(usage + "\n");
    return EXIT.ok;
  }
  if (!values.graph?.length) throw new UsageError("nats cleanup: --graph is required");
  let ids = values.graph;
  if (positionals[0] !== undefined) {
    const instances = resolveConfig(readConfigSources(positionals[0])).instances;
    ids = values.graph.flatMap((g) => {
      const m = instancesNamed(instances, g).map((i) => i.id);
      return m.length ? m : [g];
    });
  }
  const nc = await connectFromFlags(values, `jobchain-cleanup-${process.pid}`);
  try {
    for (const id of ids) {
      const removed = await InstanceBus.cleanup(nc, id);
      process.stdout.write(`${id}: ${removed.length ? `removed ${removed.join(", ")}` : "nothing to remove"}\n`);
    }
  } finally {
    await nc.close();
  }
  return EXIT.ok;
}
