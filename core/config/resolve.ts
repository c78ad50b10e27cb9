// Semantic checks and the construction of graph instances. Every problem is collected (not just the first),
// each with file, path, line and a hint, so one run of `jobchain validate` shows everything to fix.
import type { z } from "zod";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { buildInstance, findCycles, type GraphInstance, type NodeSpec } from "../graph.ts";
import { resolvePolicy } from "../policy.ts";
import {
  ALLOWED_JOB_FIELDS,
  NAME_RULE,
  isValidName,
  graphNodeSchema,
  jobEntrySchema,
  paramSetSchema,
  poolsSectionSchema,
  type JobEntry,
} from "./schema.ts";
import type { ConfigSources, Section, SectionSource } from "./source.ts";

export interface ResolveOptions {
  /** Registered job types. When given, a job whose type is not among them is a problem. */
  knownTypes?: ReadonlySet<string> | undefined;
  /** Where job classes are looked for, named in the hint for an unknown type. */
  jobDirs?: readonly string[] | undefined;
  /** Some job module failed to load: unknown types may be defined there, so say so in their hint. */
  jobModulesFailed?: boolean | undefined;
}

/** A loaded, checked configuration: every graph instance ready to run. */
export interface ChainConfig {
  /** The configuration directory. */
  dir: string;
  files: string[];
  instances: GraphInstance[];
}

const SECTION_HINTS: Record<Section, string> = {
  jobs: "each job is `name: {type: ClassName, properties: {...}}`",
  graphs: "each graph is `graph: {job: {next: [job, ...]}}`, listing every job of the graph as a key",
  parameters: "parameters are `graph: {group: {job: {param: value}}}`",
  pools: "pools are `graph: {pool: [job, ...]}`",
};

const PLACEHOLDER = /^\$([A-Za-z_][A-Za-z0-9_]*)$/;

type Path = (string | number)[];

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate closest to `name`, when it is close enough to be a likely typo. */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  // The distance is quadratic in length: long names get no suggestion rather than a slow validation.
  if (name.length > 64) return undefined;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    if (Math.abs(c.length - name.length) > 3) continue;
    const dist = distance(name.toLowerCase(), c.toLowerCase());
    if (dist < bestD) {
      bestD = dist;
      best = c;
    }
  }
  return best !== undefined && bestD < name.length && bestD <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

/** Finds `$name` placeholders in properties (objects and lists, at any depth). */
export function findPlaceholders(value: unknown, path: Path = []): { name: string; path: Path }[] {
  if (typeof value === "string") {
    const m = PLACEHOLDER.exec(value);
    return m ? [{ name: m[1]!, path }] : [];
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => findPlaceholders(v, [...path, i]));
  if (isMapping(value)) return Object.entries(value).flatMap(([k, v]) => findPlaceholders(v, [...path, k]));
  return [];
}

/** Replaces every whole-value `$name` with the parameter's value, keeping its YAML type. */
export function substitute(value: unknown, params: Record<string, unknown>): unknown {
  if (typeof value === "string") {
    const m = PLACEHOLDER.exec(value);
    return m && Object.hasOwn(params, m[1]!) ? structuredClone(params[m[1]!]) : value;
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, params));
  if (isMapping(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, params)]));
  return value;
}

class Problems {
  readonly list: ConfigProblem[];
  constructor(initial: ConfigProblem[]) {
    this.list = [...initial];
  }
  add(src: SectionSource, path: Path, message: string, hint?: string): void {
    this.list.push({ file: src.file, path: [...src.prefix, ...path], line: src.lineOf(path), message, hint });
  }
  zod(src: SectionSource, base: Path, error: z.ZodError, hint: string): void {
    for (const issue of error.issues) {
      const path = [...base, ...(issue.path as Path)];
      if (issue.code === "unrecognized_keys") {
        for (const key of issue.keys) {
          const inJob = base[0] !== undefined && path.length === 1 && src.prefix.at(-1) !== "graphs";
          const allowed = inJob ? ALLOWED_JOB_FIELDS : ["next"];
          const guess = didYouMean(key, allowed);
          this.add(
            src,
            [...path, key],
            `unknown field '${key}'`,
            guess ? `did you mean '${guess}'?` : `allowed fields: ${allowed.join(", ")}`,
          );
        }
      } else if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) {
        this.add(src, path, `missing required field '${String(path[path.length - 1])}'`, hint);
      } else {
        this.add(src, path, issue.message.replace(/^Invalid input: /, ""), hint);
      }
    }
  }
}

interface GraphNodeRaw {
  next: string[];
}

/**
 * Checks the parsed sources and builds the graph instances.
 * Throws ConfigError listing every problem when anything is wrong.
 */
export function resolveConfig(sources: ConfigSources, options: ResolveOptions = {}): ChainConfig {
  const problems = new Problems(sources.problems);
  const { jobs: jobsSrc, graphs: graphsSrc, parameters: paramsSrc } = sources.sections;
  const noFile = sources.files.length === 0 && sources.problems.length > 0;
  const jobsBroken = sources.broken.has("jobs");
  const graphsBroken = sources.broken.has("graphs");

  // ---- jobs
  const jobs = new Map<string, JobEntry | null>(); // null: present but invalid (reported already)
  if (!jobsSrc) {
    if (!noFile && !jobsBroken)
      problems.list.push({
        file: sources.files[0] ?? sources.dir,
        path: ["jobs"],
        message: "no jobs are defined",
        hint: "add jobs.yaml (or a `jobs:` section): " + SECTION_HINTS.jobs,
      });
  } else if (!isMapping(jobsSrc.data)) {
    problems.add(jobsSrc, [], "expected a mapping of job names to job definitions", SECTION_HINTS.jobs);
  } else {
    for (const [name, entry] of Object.entries(jobsSrc.data)) {
      if (!isValidName(name)) {
        problems.add(jobsSrc, [name], `invalid job name '${name}'`, `use ${NAME_RULE}`);
      }
      const parsed = jobEntrySchema.safeParse(entry);
      if (!parsed.success) {
        if (!isMapping(entry)) {
          problems.add(jobsSrc, [name], `job '${name}' must be a mapping with a 'type'`, SECTION_HINTS.jobs);
        } else problems.zod(jobsSrc, [name], parsed.error, SECTION_HINTS.jobs);
        jobs.set(name, null);
        continue;
      }
      jobs.set(name, parsed.data);
      if (options.knownTypes && !options.knownTypes.has(parsed.data.type)) {
        const guess = didYouMean(parsed.data.type, options.knownTypes);
        const where = options.jobDirs?.length ? ` (job classes are loaded from ${options.jobDirs.join(", ")})` : "";
        problems.add(
          jobsSrc,
          [name, "type"],
          `unknown job type '${parsed.data.type}' for job '${name}'`,
          options.jobModulesFailed
            ? "it may be defined in a job module that failed to load (see above)"
            : guess
            ? `did you mean '${guess}'?`
            : `known types: ${[...options.knownTypes].sort().join(", ")}; export a class extending Job with this name${where}`,
        );
      }
    }
  }

  // ---- graphs
  const graphs = new Map<string, Map<string, GraphNodeRaw>>();
  const brokenGraphs = new Set<string>();
  if (!graphsSrc) {
    if (!noFile && !graphsBroken)
      problems.list.push({
        file: sources.files[0] ?? sources.dir,
        path: ["graphs"],
        message: "no graphs are defined",
        hint: "add graphs.yaml (or a `graphs:` section): " + SECTION_HINTS.graphs,
      });
  } else if (!isMapping(graphsSrc.data)) {
    problems.add(graphsSrc, [], "expected a mapping of graph names to graphs", SECTION_HINTS.graphs);
  } else {
    for (const [g, body] of Object.entries(graphsSrc.data)) {
      const before = problems.list.length;
      if (!isValidName(g)) problems.add(graphsSrc, [g], `invalid graph name '${g}'`, `use ${NAME_RULE}`);
      if (!isMapping(body)) {
        problems.add(graphsSrc, [g], `graph '${g}' must be a mapping of job names to {next: [...]}`, SECTION_HINTS.graphs);
        brokenGraphs.add(g);
        continue;
      }
      const nodes = new Map<string, GraphNodeRaw>();
      for (const [k, node] of Object.entries(body)) {
        if (!isValidName(k)) problems.add(graphsSrc, [g, k], `invalid job name '${k}'`, `use ${NAME_RULE}`);
        const parsed = graphNodeSchema.safeParse(node);
        if (!parsed.success) {
          problems.zod(graphsSrc, [g, k], parsed.error, SECTION_HINTS.graphs);
          nodes.set(k, { next: [] });
          continue;
        }
        const next = parsed.data?.next ?? [];
        nodes.set(k, { next: typeof next === "string" ? [next] : next });
      }
      if (nodes.size === 0) {
        problems.add(graphsSrc, [g], `graph '${g}' has no jobs`, SECTION_HINTS.graphs);
      }
      for (const [k, node] of nodes) {
        if (!jobs.has(k) && !jobsBroken) {
          const guess = didYouMean(k, jobs.keys());
          problems.add(
            graphsSrc,
            [g, k],
            `job '${k}' in graph '${g}' is not defined in jobs`,
            guess ? `did you mean '${guess}'? or define '${k}' in jobs` : `define '${k}' in jobs with a type`,
          );
        }
        const seen = new Set<string>();
        node.next.forEach((t, i) => {
          if (seen.has(t)) problems.add(graphsSrc, [g, k, "next", i], `'${t}' is listed twice in next of '${k}'`, "remove the duplicate");
          seen.add(t);
          if (nodes.has(t)) return;
          if (jobs.has(t) || jobsBroken) {
            problems.add(
              graphsSrc,
              [g, k, "next", i],
              `next of '${k}' names '${t}', which is not a job of graph '${g}'`,
              `add '${t}: {next: []}' (or its own next) to graph '${g}'`,
            );
          } else {
            const guess = didYouMean(t, nodes.keys());
            problems.add(
              graphsSrc,
              [g, k, "next", i],
              `next of '${k}' names '${t}', which is not defined`,
              guess ? `did you mean '${guess}'?` : `add '${t}' to jobs and to graph '${g}', or remove it from next`,
            );
          }
        });
      }
      const edges = new Map([...nodes].map(([k, n]) => [k, n.next.filter((t) => nodes.has(t))] as const));
      for (const cycle of findCycles(edges)) {
        problems.add(
          graphsSrc,
          [g],
          `graph '${g}' has a cycle: ${[...cycle, cycle[0]].join(" -> ")}`,
          "a graph must be acyclic; remove one of these edges",
        );
      }
      if (nodes.size > 0) {
        const targets = new Set([...edges.values()].flat());
        if ([...nodes.keys()].every((k) => targets.has(k))) {
          problems.add(graphsSrc, [g], `graph '${g}' has no head: every job has a predecessor`, "a head is a job no other job names in next");
        }
        if ([...edges.values()].every((n) => n.length > 0)) {
          problems.add(graphsSrc, [g], `graph '${g}' has no tail: every job has a next`, "a tail is a job with `next: []`");
        }
      }
      graphs.set(g, nodes);
      if (problems.list.length > before) brokenGraphs.add(g);
    }
  }

  if (graphsSrc && isMapping(graphsSrc.data) && Object.keys(graphsSrc.data).length === 0) {
    problems.add(graphsSrc, [], "no graphs are defined", SECTION_HINTS.graphs);
  }

  // ---- placeholders and parameters
  const params = new Map<string, Map<string, Map<string, Record<string, unknown> | null>>>();
  if (paramsSrc && paramsSrc.data !== null && paramsSrc.data !== undefined) {
    if (!isMapping(paramsSrc.data)) {
      problems.add(paramsSrc, [], "expected a mapping of graph names to parameter groups", SECTION_HINTS.parameters);
    } else {
      for (const [g, groups] of Object.entries(paramsSrc.data)) {
        const graph = graphs.get(g);
        if (!graph && !brokenGraphs.has(g) && !graphsBroken) {
          const guess = didYouMean(g, graphs.keys());
          problems.add(paramsSrc, [g], `parameters for graph '${g}', which is not defined`, guess ? `did you mean '${guess}'?` : "define the graph in graphs or remove these parameters");
          continue;
        }
        if (!isMapping(groups) || Object.keys(groups).length === 0) {
          problems.add(paramsSrc, [g], `parameters of graph '${g}' must be a non-empty mapping of group names`, SECTION_HINTS.parameters);
          continue;
        }
        const byGroup = new Map<string, Map<string, Record<string, unknown> | null>>();
        for (const [group, perJob] of Object.entries(groups)) {
          if (!isValidName(group)) problems.add(paramsSrc, [g, group], `invalid group name '${group}'`, `use ${NAME_RULE}`);
          if (!isMapping(perJob)) {
            problems.add(paramsSrc, [g, group], `group '${group}' must be a mapping of job names to parameters`, SECTION_HINTS.parameters);
            continue;
          }
          const byJob = new Map<string, Record<string, unknown> | null>(); // null: invalid, reported already
          for (const [job, set] of Object.entries(perJob)) {
            if (graph && !graph.has(job)) {
              problems.add(paramsSrc, [g, group, job], `job '${job}' is not in graph '${g}'`, `jobs of '${g}': ${[...graph.keys()].join(", ")}`);
              continue;
            }
            let values: unknown = set;
            if (Array.isArray(set)) {
              if (set.length !== 1) {
                problems.add(
                  paramsSrc,
                  [g, group, job],
                  set.length === 0 ? `no parameter set for job '${job}'` : `${set.length} parameter sets for job '${job}'; only one is allowed per group`,
                  "give one mapping {param: value}; make one group per set of values",
                );
                byJob.set(job, null);
                continue;
              }
              values = set[0];
            }
            const parsed = paramSetSchema.safeParse(values);
            if (!parsed.success) {
              problems.add(paramsSrc, [g, group, job], `parameters of job '${job}' must be a mapping {param: value}`, SECTION_HINTS.parameters);
              byJob.set(job, null);
              continue;
            }
            byJob.set(job, parsed.data);
          }
          byGroup.set(group, byJob);
        }
        params.set(g, byGroup);
      }
    }
  }

  for (const [g, nodes] of graphs) {
    const groups = params.get(g);
    for (const k of nodes.keys()) {
      const entry = jobs.get(k);
      if (!entry || !jobsSrc) continue;
      const holders = findPlaceholders(entry.properties ?? {}, ["properties"]);
      const needed = [...new Set(holders.map((h) => h.name))];
      if (!groups) {
        for (const h of holders) {
          problems.add(
            jobsSrc,
            [k, ...h.path],
            `placeholder '$${h.name}' of job '${k}' (graph '${g}') has no parameters`,
            `add parameters for graph '${g}': ${g}: {<group>: {${k}: {${h.name}: <value>}}}`,
          );
        }
        continue;
      }
      if (!paramsSrc) continue;
      for (const [group, byJob] of groups) {
        const set = byJob.get(k);
        if (set === null) continue;
        if (set === undefined) {
          if (needed.length > 0)
            problems.add(paramsSrc, [g, group], `group '${group}' of graph '${g}' has no parameters for job '${k}'`, `add ${k}: {${needed.map((n) => `${n}: <value>`).join(", ")}}`);
          continue;
        }
        for (const n of needed) {
          if (!Object.hasOwn(set, n))
            problems.add(paramsSrc, [g, group, k], `group '${group}' is missing parameter '${n}' for job '${k}'`, `add ${n}: <value>`);
        }
        for (const key of Object.keys(set)) {
          if (!needed.includes(key)) {
            problems.add(
              paramsSrc,
              [g, group, k, key],
              `parameter '${key}' is not used by job '${k}'`,
              needed.length ? `its placeholders are ${needed.map((n) => "$" + n).join(", ")}` : `job '${k}' has no $placeholders in its properties`,
            );
          }
        }
      }
    }
  }

  // ---- pools
  const pools = new Map<string, Record<string, string[]>>();
  const poolsSrc = sources.sections.pools;
  if (poolsSrc && poolsSrc.data !== null && poolsSrc.data !== undefined) {
    const parsed = poolsSectionSchema.safeParse(poolsSrc.data);
    if (!parsed.success) problems.zod(poolsSrc, [], parsed.error, SECTION_HINTS.pools);
    else {
      for (const [g, byPool] of Object.entries(parsed.data)) {
        const nodes = graphs.get(g);
        if (!nodes) {
          if (!brokenGraphs.has(g)) problems.add(poolsSrc, [g], `pools for graph '${g}', which is not defined`, "define the graph or remove its pools");
          continue;
        }
        const owner = new Map<string, string>();
        for (const [pool, members] of Object.entries(byPool)) {
          members.forEach((m, i) => {
            if (!nodes.has(m)) problems.add(poolsSrc, [g, pool, i], `pool '${pool}' names '${m}', which is not a job of graph '${g}'`, `jobs of '${g}': ${[...nodes.keys()].join(", ")}`);
            else if (owner.has(m)) problems.add(poolsSrc, [g, pool, i], `job '${m}' is in pools '${owner.get(m)}' and '${pool}'`, "put every job in one pool");
            else owner.set(m, pool);
          });
        }
        pools.set(g, byPool);
      }
    }
  }

  if (problems.list.length > 0) throw new ConfigError(problems.list);

  // ---- instances
  const instances: GraphInstance[] = [];
  for (const [g, nodes] of graphs) {
    const groups = params.get(g);
    const variants: [string | undefined, Map<string, Record<string, unknown> | null>][] = groups
      ? [...groups]
      : [[undefined, new Map()]];
    for (const [group, byJob] of variants) {
      const specs: Omit<NodeSpec, "prev">[] = [...nodes].map(([k, node]) => {
        const entry = jobs.get(k)!;
        const raw = entry.properties ?? {};
        const set = byJob.get(k);
        const properties = (set ? substitute(raw, set) : structuredClone(raw)) as Record<string, unknown>;
        return {
          name: k,
          type: entry.type,
          properties,
          policy: resolvePolicy(entry),
          saveResult: entry.save_result ?? properties.save_result === true,
          next: node.next,
        };
      });
      instances.push(buildInstance(group === undefined ? g : `${g}/${group}`, g, group, specs, pools.get(g)));
    }
  }
  return { dir: sources.dir, files: sources.files, instances };
}
