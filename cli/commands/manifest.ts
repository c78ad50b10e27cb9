import { stringify } from "yaml";
import { readConfigSources } from "../../core/index.ts";
import { parse } from "../args.ts";
import { EXIT, UsageError } from "../errors.ts";
import { configFlags, loadFromArgs } from "./common.ts";

export const usage = `usage: jobchain manifest [CONFIG] --graph ID [--image IMAGE] [--name NAME] [--namespace NS] [--jobs DIR]...

Prints a JobGraph resource (jobchain.dev/v1alpha1) for a graph of a configuration, checked like 'jobchain validate',
so a pipeline developed with 'jobchain run' goes to a cluster with:
  jobchain manifest ./my-config --graph digest | kubectl apply -f -
  --graph ID        the graph (its parameter groups become spec.parameters)
  --image IMAGE     the runner image holding the configuration's job classes (default: the operator's)
  --name NAME       the resource's name (default: the graph's name, lowercased, '_' as '-')
  --namespace NS    metadata.namespace (default: none, kubectl's current namespace)`;

/** A graph name as a Kubernetes object name. */
export function resourceNameOf(graph: string): string {
  return graph.toLowerCase().replace(/_/g, "-").replace(/^-+|-+$/g, "") || "graph";
}

export async function manifest(argv: string[]): Promise<number> {
  const { values, positionals } = parse("manifest", argv, {
    ...configFlags,
    graph: { type: "string", short: "g" },
    image: { type: "string" },
    name: { type: "string" },
    namespace: { type: "string", short: "n" },
  });
  if (values.help) {
    process.stdout.write(usage + "\n");
    return EXIT.ok;
  }
  // Checked first, with every problem named, exactly as `jobchain validate` does.
  const { config } = await loadFromArgs(positionals[0], values.jobs);
  const graphs = [...new Set(config.instances.map((i) => i.graph))];
  if (values.graph === undefined) {
    if (graphs.length !== 1) throw new UsageError("manifest: --graph is required", `graphs: ${graphs.join(", ")}`);
  }
  const id = values.graph ?? graphs[0]!;
  const graph = id.split("/")[0]!;
  if (!graphs.includes(graph)) throw new UsageError(`unknown graph '${id}'`, `graphs: ${graphs.join(", ")}`);
  // Every parameter group has the same edges: any instance gives them.
  const instance = config.instances.find((i) => i.graph === graph)!;
  const sections = readConfigSources(positionals[0] ?? ".").sections;
  const jobsData = (sections.jobs?.data ?? {}) as Record<string, unknown>;
  const graphData = ((sections.graphs?.data ?? {}) as Record<string, Record<string, unknown>>)[graph] ?? {};
  const paramsData = ((sections.parameters?.data ?? {}) as Record<string, unknown>)[graph];
  const poolsData = ((sections.pools?.data ?? {}) as Record<string, Record<string, string[]>>)[graph];
  const nodes = Object.keys(graphData);
  const spec: Record<string, unknown> = {
    jobs: Object.fromEntries(nodes.map((n) => [n, jobsData[n]])),
    // The resource takes the list form of `next` (a file may give one name, or nothing for a tail).
    graph: Object.fromEntries(instance.nodes.filter((n) => nodes.includes(n.name)).map((n) => [n.name, { next: n.next }])),
  };
  if (paramsData !== undefined) spec.parameters = paramsData;
  if (values.image) spec.image = values.image;
  if (poolsData) {
    spec.pools = [
      ...Object.entries(poolsData).map(([name, jobs]) => ({ name, jobs, replicas: { min: 1, max: 10 } })),
      ...(nodes.some((n) => !Object.values(poolsData).flat().includes(n)) ? [{ name: "default", replicas: { min: 1, max: 10 } }] : []),
    ];
  }
  const resource = {
    apiVersion: "jobchain.dev/v1alpha1",
    kind: "JobGraph",
    metadata: { name: values.name ?? resourceNameOf(graph), ...(values.namespace ? { namespace: values.namespace } : {}) },
    spec,
  };
  process.stdout.write(stringify(resource, { lineWidth: 0 }));
  return EXIT.ok;
}
