// Graphs written in code, in the spirit of the original's `a >> b` (serial) and `a | b` (parallel).
import { buildInstance, findCycles } from "./graph.ts";
import { Job, type JobContext, type Task } from "./job.ts";
import { DEFAULT_POLICY, resolvePolicy, type JobPolicyInput } from "./policy.ts";
import type { ResolvedNode, RunnableGraph } from "./chain.ts";
import { NAME_RULE, isValidName } from "./config/schema.ts";

export type Composable = Job | Serial | Parallel;

/** Items that run one after another: every end of one part feeds every start of the next. */
export class Serial {
  readonly kind = "serial" as const;
  readonly items: Composable[];
  constructor(items: Composable[]) {
    this.items = items;
  }
}

/** Items that run side by side on the same inputs. */
export class Parallel {
  readonly kind = "parallel" as const;
  readonly items: Composable[];
  constructor(items: Composable[]) {
    this.items = items;
  }
}

export function serial(...items: Composable[]): Serial {
  if (items.length === 0) throw new Error("serial() needs at least one item");
  return new Serial(items.flatMap((i) => (i instanceof Serial ? i.items : [i])));
}

export function parallel(...items: Composable[]): Parallel {
  if (items.length === 0) throw new Error("parallel() needs at least one item");
  return new Parallel(items.flatMap((i) => (i instanceof Parallel ? i.items : [i])));
}

type JobFunction = (task: Task, ctx: JobContext) => unknown;

class FunctionJob extends Job {
  private readonly fn: JobFunction;
  constructor(name: string, fn: JobFunction) {
    super(name);
    this.fn = fn;
  }
  run(task: Task, ctx: JobContext): unknown {
    return this.fn(task, ctx);
  }
}

/** Turns a function into a job named `name`. */
export function fn(name: string, run: JobFunction): Job {
  return new FunctionJob(name, run);
}

/** Per-job policy and options for graphs written in code, keyed by job name. */
export type NodeOptions = Record<string, JobPolicyInput & { saveResult?: boolean }>;

/** Builds a runnable graph from a composition of job instances. Job names must be unique in the graph. */
export function defineGraph(id: string, root: Composable, options: NodeOptions = {}): RunnableGraph {
  const jobs = new Map<string, Job>();
  const next = new Map<string, Set<string>>();
  const add = (job: Job): void => {
    if (!isValidName(job.name)) throw new Error(`invalid job name '${job.name}': use ${NAME_RULE}`);
    const existing = jobs.get(job.name);
    if (existing && existing !== job) throw new Error(`two different jobs are named '${job.name}' in graph '${id}'`);
    jobs.set(job.name, job);
    if (!next.has(job.name)) next.set(job.name, new Set());
  };
  // Returns the entry and exit job names of a part.
  const walk = (c: Composable): { entries: string[]; exits: string[] } => {
    if (c instanceof Job) {
      add(c);
      return { entries: [c.name], exits: [c.name] };
    }
    if (c instanceof Parallel) {
      const parts = c.items.map(walk);
      return { entries: parts.flatMap((p) => p.entries), exits: parts.flatMap((p) => p.exits) };
    }
    let first: string[] | undefined;
    let prev: string[] = [];
    for (const item of c.items) {
      const part = walk(item);
      first ??= part.entries;
      for (const p of prev) for (const e of part.entries) next.get(p)!.add(e);
      prev = part.exits;
    }
    return { entries: first ?? [], exits: prev };
  };
  walk(root);
  const cycles = findCycles(new Map([...next].map(([k, v]) => [k, [...v]] as const)));
  if (cycles.length > 0) throw new Error(`graph '${id}' has a cycle: ${[...cycles[0]!, cycles[0]![0]].join(" -> ")}`);
  for (const name of Object.keys(options)) {
    if (!jobs.has(name)) throw new Error(`options name job '${name}', which is not in graph '${id}'`);
  }
  const specs = [...jobs].map(([name, job]) => ({
    name,
    type: job.constructor.name,
    properties: job.properties,
    policy: options[name] ? resolvePolicy(options[name]) : DEFAULT_POLICY,
    saveResult: options[name]?.saveResult ?? job.properties.save_result === true,
    next: [...next.get(name)!],
    job,
  }));
  const instance = buildInstance(id, id.split("/")[0]!, id.split("/")[1], specs);
  const byName = new Map(specs.map((s) => [s.name, s.job] as const));
  return { ...instance, nodes: instance.nodes.map((n): ResolvedNode => ({ ...n, job: byName.get(n.name)! })) };
}
