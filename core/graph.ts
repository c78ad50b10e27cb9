// The graph model shared by every engine: named nodes, edges, heads and tails, checked once.
import { UnknownGraphError } from "./errors.ts";
import type { JobPolicy } from "./policy.ts";

/** One node of a graph instance: a job with its resolved properties and policy. */
export interface NodeSpec {
  /** Short job name, unique in the graph. */
  name: string;
  /** Registered job type (class name or alias). */
  type: string;
  properties: Record<string, unknown>;
  policy: JobPolicy;
  /** Keep this job's output in the task's `saved` results. */
  saveResult: boolean;
  next: string[];
  prev: string[];
}

/** A runnable graph: `graph` or `graph/group` when built from a parameter group. */
export interface GraphInstance {
  id: string;
  graph: string;
  group: string | undefined;
  /** Nodes in a topological order (every node after its predecessors). */
  nodes: NodeSpec[];
  heads: string[];
  tails: string[];
  /**
   * Node pools for distributed execution: pool name -> nodes. Every node is in exactly one pool; nodes not
   * assigned in the configuration are in the pool `default`.
   */
  pools: Record<string, string[]>;
}

/** Nodes that lie on a cycle, one list per strongly connected component, each in cycle order. */
export function findCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's algorithm, iterative so that deep graphs cannot overflow the stack.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  for (const start of edges.keys()) {
    if (idx.has(start)) continue;
    const work: { node: string; i: number }[] = [{ node: start, i: 0 }];
    idx.set(start, index);
    low.set(start, index++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const next = edges.get(frame.node) ?? [];
      if (frame.i < next.length) {
        const w = next[frame.i++]!;
        if (!edges.has(w)) continue;
        if (!idx.has(w)) {
          idx.set(w, index);
          low.set(w, index++);
          stack.push(w);
          onStack.add(w);
          work.push({ node: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, idx.get(w)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === idx.get(frame.node)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(w);
        } while (w !== frame.node);
        const selfLoop = (edges.get(frame.node) ?? []).includes(frame.node);
        if (scc.length > 1 || selfLoop) cycles.push(orderCycle(scc, edges));
      }
    }
  }
  return cycles;
}

/** Orders the members of a strongly connected component along one cycle through them, for the message. */
function orderCycle(scc: string[], edges: ReadonlyMap<string, readonly string[]>): string[] {
  const members = new Set(scc);
  const start = [...scc].sort()[0]!;
  // Breadth-first search for the shortest path back to `start` inside the component.
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const n = queue.shift()!;
    for (const w of edges.get(n) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [n];
        while (path[0] !== start) path.unshift(prev.get(path[0]!)!);
        return path;
      }
      if (!prev.has(w)) {
        prev.set(w, n);
        queue.push(w);
      }
    }
  }
  return scc;
}

/** Orders nodes so each comes after all its predecessors (the graph must be acyclic). */
export function topologicalOrder(edges: ReadonlyMap<string, readonly string[]>): string[] {
  const indegree = new Map<string, number>();
  for (const n of edges.keys()) indegree.set(n, 0);
  for (const next of edges.values()) for (const w of next) indegree.set(w, (indegree.get(w) ?? 0) + 1);
  const ready = [...edges.keys()].filter((n) => indegree.get(n) === 0);
  const order: string[] = [];
  while (ready.length > 0) {
    const n = ready.shift()!;
    order.push(n);
    for (const w of edges.get(n) ?? []) {
      const d = indegree.get(w)! - 1;
      indegree.set(w, d);
      if (d === 0) ready.push(w);
    }
  }
  return order;
}

/** Builds the node list (topologically ordered, with `prev`) from specs whose `next` is already checked. */
export function buildInstance(
  id: string,
  graph: string,
  group: string | undefined,
  nodes: Omit<NodeSpec, "prev">[],
  pools: Record<string, string[]> = {},
): GraphInstance {
  const edges = new Map(nodes.map((n) => [n.name, n.next] as const));
  const prev = new Map<string, string[]>(nodes.map((n) => [n.name, []]));
  for (const n of nodes) for (const w of n.next) prev.get(w)!.push(n.name);
  const byName = new Map(nodes.map((n) => [n.name, n] as const));
  const ordered = topologicalOrder(edges).map((name) => ({ ...byName.get(name)!, prev: prev.get(name)! }));
  return {
    id,
    graph,
    group,
    nodes: ordered,
    heads: ordered.filter((n) => n.prev.length === 0).map((n) => n.name),
    tails: ordered.filter((n) => n.next.length === 0).map((n) => n.name),
    pools: completePools(ordered.map((n) => n.name), pools),
  };
}

/** Adds the pool `default` for the nodes no pool names (omitted when every node is assigned). */
export function completePools(nodes: string[], pools: Record<string, string[]>): Record<string, string[]> {
  const assigned = new Set(Object.values(pools).flat());
  const rest = nodes.filter((n) => !assigned.has(n));
  const out: Record<string, string[]> = {};
  for (const [name, members] of Object.entries(pools)) out[name] = nodes.filter((n) => members.includes(n));
  if (rest.length > 0) out.default = [...(out.default ?? []), ...rest];
  return out;
}

/**
 * The instances a selector names: the instance with that id (`graph/group`), else every instance of the graph
 * with that name (one per parameter group). Empty when nothing matches.
 */
export function instancesNamed<T extends { id: string; graph: string }>(instances: readonly T[], selector: string): T[] {
  const exact = instances.filter((i) => i.id === selector);
  return exact.length > 0 ? exact : instances.filter((i) => i.graph === selector);
}

/**
 * The one instance a selector names; with no selector, the only instance. Throws UnknownGraphError when the
 * selector matches nothing, names a graph with several parameter groups, or is missing among several instances.
 */
export function selectInstance<T extends { id: string; graph: string }>(instances: readonly T[], selector: string | undefined): T {
  if (selector === undefined) {
    if (instances.length === 1) return instances[0]!;
    throw new UnknownGraphError(undefined, instances.map((i) => i.id));
  }
  const named = instancesNamed(instances, selector);
  if (named.length === 1) return named[0]!;
  if (named.length > 1) {
    throw new UnknownGraphError(
      selector,
      named.map((i) => i.id),
      `graph '${selector}' has ${named.length} parameter groups; choose one of: ${named.map((i) => i.id).join(", ")}`,
    );
  }
  throw new UnknownGraphError(selector, instances.map((i) => i.id));
}
