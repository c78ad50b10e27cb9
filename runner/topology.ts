// Which nodes a runner runs in memory after a message arrives, and which edges cross NATS. Pure functions of the
// graph and the set of nodes a runner serves, so they are tested without a server.
import type { GraphInstance } from "../core/index.ts";

/**
 * The nodes one message runs in this process: its entry node, then every served node all of whose
 * predecessors are already in the region. A fan-in whose inputs come from elsewhere is not in the region: its
 * inputs are joined in the JOIN bucket and it gets a message of its own.
 */
export interface Region {
  entry: string;
  /** Region nodes in topological order, entry first. */
  nodes: string[];
  /** Edges from a region node to a node outside the region (published over NATS). */
  exits: { from: string; to: string }[];
  /** Graph tails inside the region (their outputs make up the task result). */
  tails: string[];
  /** Region nodes whose outputs leave the region (exits and tails). */
  emitting: string[];
}

export function region(instance: GraphInstance, entry: string, served: ReadonlySet<string>): Region {
  const byName = new Map(instance.nodes.map((n) => [n.name, n] as const));
  if (!byName.has(entry)) throw new Error(`node '${entry}' is not in graph '${instance.id}'`);
  const inRegion = new Set([entry]);
  const nodes = [entry];
  // Topological order guarantees every predecessor is decided before its successors.
  for (const n of instance.nodes) {
    if (n.name === entry || !served.has(n.name) || n.prev.length === 0) continue;
    if (n.prev.every((p) => inRegion.has(p))) {
      inRegion.add(n.name);
      nodes.push(n.name);
    }
  }
  const exits: { from: string; to: string }[] = [];
  const tails: string[] = [];
  for (const name of nodes) {
    const n = byName.get(name)!;
    if (n.next.length === 0) tails.push(name);
    for (const t of n.next) if (!inRegion.has(t)) exits.push({ from: name, to: t });
  }
  const emitting = nodes.filter((n) => tails.includes(n) || exits.some((e) => e.from === n));
  return { entry, nodes, exits, tails, emitting };
}

/** The nodes a runner serves: `--nodes`, else the nodes of `--pool`, else every node. */
export function servedNodes(instance: GraphInstance, opts: { nodes?: string[] | undefined; pool?: string | undefined }): string[] {
  if (opts.nodes && opts.nodes.length > 0) return instance.nodes.map((n) => n.name).filter((n) => opts.nodes!.includes(n));
  if (opts.pool !== undefined) return instance.pools[opts.pool] ?? [];
  return instance.nodes.map((n) => n.name);
}
