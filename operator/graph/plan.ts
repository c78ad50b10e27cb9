// From a JobGraph to what runs it: the configuration the runners load, the graph instances, the version (a hash
// of everything that changes how a task runs) and one plan per pool. Validation is the configuration loader's
// own (`jobchain validate`), with problems re-addressed to the resource's fields.
import { createHash } from "node:crypto";
import { ConfigError, resolveConfig, sourcesFromObject, type ConfigProblem, type GraphInstance } from "../../core/index.ts";
import type { JobGraphSpec } from "../api/index.ts";

/** Names in NATS: `<namespace>_<name>` (Kubernetes names never hold `_`, so two resources never share one). */
export const NAME_LIMIT = 63;
const VERSION_LENGTH = 8;

export interface PoolPlan {
  name: string;
  /** The graph's nodes this pool serves. */
  nodes: string[];
  min: number;
  max: number;
  scaleDownDelaySeconds: number;
  concurrency: number | undefined;
  resources: Record<string, unknown> | undefined;
  nodeSelector: Record<string, string> | undefined;
  tolerations: unknown[] | undefined;
}

export interface GraphPlan {
  /** The id direct NATS submissions use: `<namespace>_<name>`; it always leads to the current version. */
  alias: string;
  /** Hash of the jobs, edges, parameters, pool membership and image. */
  version: string;
  /** The graph's id in NATS: `<namespace>_<name>_<version>`. Each version has its own streams. */
  graphId: string;
  /** What the runners of this version load (`jobchain runner` reads it from JOBCHAIN_CONFIG). */
  config: { jobs: unknown; graphs: Record<string, unknown>; parameters?: Record<string, unknown>; pools: Record<string, Record<string, string[]>> };
  instances: GraphInstance[];
  pools: PoolPlan[];
  image: string;
}

export type PlanResult = { ok: true; plan: GraphPlan } | { ok: false; problems: string[] };

export const DEFAULT_POOL = "default";
export const DEFAULT_SCALE_DOWN_DELAY_SECONDS = 300;

/** JSON with object keys sorted, so equal specs hash equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function fieldOf(p: ConfigProblem, graphId: string): string {
  const [section, ...rest] = p.path;
  // The configuration is keyed by the NATS graph id; the resource by its own fields.
  const tail = section === "graphs" || section === "parameters" || section === "pools" ? rest.slice(1) : rest;
  const base = section === "graphs" ? "spec.graph" : section === "parameters" ? "spec.parameters" : section === "pools" ? "spec.pools" : section === "jobs" ? "spec.jobs" : "spec";
  const where = [base, ...tail.map(String)].join(".");
  return `${where}: ${p.message.replaceAll(`'${graphId}'`, "the graph")}${p.hint ? ` (${p.hint.replaceAll(`'${graphId}'`, "the graph")})` : ""}`;
}

/**
 * Checks a JobGraph spec and plans it. Every problem is reported at once, each naming the field. `knownTypes`
 * (the job types of the runner image, when the operator knows them) makes an unknown type a problem; without it
 * the runners report unknown types when they start.
 */
export function planGraph(
  meta: { namespace: string; name: string },
  spec: JobGraphSpec,
  options: { defaultImage: string; knownTypes?: ReadonlySet<string> | undefined },
): PlanResult {
  const problems: string[] = [];
  const alias = `${meta.namespace}_${meta.name}`;
  if (alias.length + 1 + VERSION_LENGTH > NAME_LIMIT) {
    problems.push(
      `metadata.name: namespace and name together are too long for a graph id (${alias.length} characters, at most ${NAME_LIMIT - 1 - VERSION_LENGTH}); use a shorter name`,
    );
  }
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(meta.name)) {
    problems.push(`metadata.name: '${meta.name}' may hold only lowercase letters, digits and '-' (no dots): it becomes part of NATS subjects`);
  }
  const graphNodes = Object.keys(spec.graph ?? {});

  // Pools: a pool without `jobs` takes every job no other pool names; at most one such pool.
  const declared = spec.pools && spec.pools.length > 0 ? spec.pools : [{ name: DEFAULT_POOL, replicas: { min: 1, max: 1 } }];
  const named = new Map<string, string>();
  const catchAll = declared.filter((p) => !p.jobs);
  if (catchAll.length > 1) problems.push(`spec.pools: pools ${catchAll.map((p) => `'${p.name}'`).join(" and ")} both list no jobs; only one pool may take the rest`);
  const seen = new Set<string>();
  declared.forEach((p, i) => {
    if (seen.has(p.name)) problems.push(`spec.pools[${i}].name: pool '${p.name}' is declared twice`);
    seen.add(p.name);
    if (p.replicas.min > p.replicas.max) problems.push(`spec.pools[${i}].replicas: min ${p.replicas.min} is greater than max ${p.replicas.max}`);
    (p.jobs ?? []).forEach((j, k) => {
      if (!graphNodes.includes(j)) problems.push(`spec.pools[${i}].jobs[${k}]: pool '${p.name}' names '${j}', which is not a job of spec.graph (jobs: ${graphNodes.join(", ")})`);
      else if (named.has(j)) problems.push(`spec.pools[${i}].jobs[${k}]: job '${j}' is in pools '${named.get(j)}' and '${p.name}'; put every job in one pool`);
      else named.set(j, p.name);
    });
  });
  const rest = graphNodes.filter((n) => !named.has(n));
  if (rest.length > 0 && catchAll.length === 0) {
    problems.push(`spec.pools: job(s) ${rest.join(", ")} are in no pool; add them to a pool, or add a pool without 'jobs' to serve the rest`);
  }
  const poolNodes = (p: (typeof declared)[number]): string[] => (p.jobs ? p.jobs.filter((j) => graphNodes.includes(j)) : rest);
  const poolsSection = Object.fromEntries(declared.map((p) => [p.name, poolNodes(p)]));

  // Jobs of spec.jobs that the graph does not use are allowed (a shared jobs.yaml), but only graph jobs run.
  const image = spec.image ?? options.defaultImage;
  const hashed = { jobs: spec.jobs, graph: spec.graph, parameters: spec.parameters ?? null, pools: poolsSection, image };
  const version = createHash("sha256").update(canonicalJson(hashed)).digest("hex").slice(0, VERSION_LENGTH);
  const graphId = `${alias}_${version}`;
  const config = {
    jobs: spec.jobs,
    graphs: { [graphId]: spec.graph },
    ...(spec.parameters ? { parameters: { [graphId]: spec.parameters } } : {}),
    pools: { [graphId]: poolsSection },
  };
  let instances: GraphInstance[] = [];
  try {
    instances = resolveConfig(sourcesFromObject(config, "JobGraph"), { knownTypes: options.knownTypes }).instances;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems.map((p) => fieldOf(p, graphId)));
  }
  if (problems.length > 0) return { ok: false, problems: [...new Set(problems)] };
  return {
    ok: true,
    plan: {
      alias,
      version,
      graphId,
      config,
      instances,
      image,
      pools: declared.map((p) => ({
        name: p.name,
        nodes: poolNodes(p),
        min: p.replicas.min,
        max: p.replicas.max,
        scaleDownDelaySeconds: p.scaleDownDelaySeconds ?? DEFAULT_SCALE_DOWN_DELAY_SECONDS,
        concurrency: p.concurrency,
        resources: p.resources as Record<string, unknown> | undefined,
        nodeSelector: p.nodeSelector,
        tolerations: p.tolerations as unknown[] | undefined,
      })),
    },
  };
}
