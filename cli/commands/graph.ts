import { instancesNamed, type GraphInstance } from "../../core/index.ts";
import { parse } from "../args.ts";
import { EXIT, UsageError } from "../errors.ts";
import { configFlags, loadFromArgs } from "./common.ts";

export const usage = `usage: jobchain graph [CONFIG] [--graph ID] [--format mermaid|dot] [--jobs DIR]...

Prints a picture of a graph instance (all instances when --graph is omitted) as Mermaid or Graphviz dot.`;

const quote = (s: string): string => JSON.stringify(s);

export function toMermaid(inst: GraphInstance): string {
  const id = (name: string): string => `n_${name.replace(/-/g, "_")}`;
  const lines = [`%% ${inst.id}`, "flowchart LR"];
  for (const n of inst.nodes) lines.push(`  ${id(n.name)}[${quote(`${n.name}: ${n.type}`)}]`);
  for (const n of inst.nodes) for (const t of n.next) lines.push(`  ${id(n.name)} --> ${id(t)}`);
  return lines.join("\n");
}

export function toDot(inst: GraphInstance): string {
  const lines = [`digraph ${quote(inst.id)} {`, "  rankdir=LR;", "  node [shape=box];"];
  for (const n of inst.nodes) lines.push(`  ${quote(n.name)} [label=${quote(`${n.name}\\n${n.type}`)}];`);
  for (const n of inst.nodes) for (const t of n.next) lines.push(`  ${quote(n.name)} -> ${quote(t)};`);
  lines.push("}");
  return lines.join("\n");
}

export async function graph(argv: string[]): Promise<number> {
  const { values, positionals } = parse("graph", argv, {
    ...configFlags,
    graph: { type: "string", short: "g" },
    format: { type: "string", short: "f" },
  });
  if (values.help) {
    process.stdout.write(usage + "\n");
    return EXIT.ok;
  }
  const format = values.format ?? "mermaid";
  if (format !== "mermaid" && format !== "dot") throw new UsageError(`--format must be mermaid or dot, got '${format}'`);
  const { config } = await loadFromArgs(positionals[0], values.jobs);
  let instances = config.instances;
  if (values.graph !== undefined) {
    instances = instancesNamed(instances, values.graph);
    if (instances.length === 0) {
      throw new UsageError(`unknown graph '${values.graph}'`, `available: ${config.instances.map((i) => i.id).join(", ")}`);
    }
  }
  const render = format === "dot" ? toDot : toMermaid;
  process.stdout.write(instances.map(render).join("\n\n") + "\n");
  return EXIT.ok;
}
