// From a configuration path to a running chain: discover job classes, read and check the configuration,
// construct one job instance per node of each graph instance.
import path from "node:path";
import { pathToFileURL } from "node:url";
import { JobChain, type ChainOptions, type RunnableGraph } from "./chain.ts";
import { readConfigSources, resolveConfig, sourcesFromObject, type ChainConfig, type Section } from "./config/index.ts";
import { ConfigError, type ConfigProblem } from "./errors.ts";
import { JobRegistry } from "./registry.ts";
import { WorkerJob } from "./workers.ts";

export interface LoadOptions {
  /** More directories of job modules, besides `<config dir>/jobs/`. */
  jobDirs?: readonly string[] | undefined;
  /**
   * The job types known before the configuration's own `jobs/` folder and `jobDirs` are read (the registry
   * itself is not changed). The layer that loads configurations chooses them: the package's built-in jobs are
   * `builtinRegistry()` of `jobchain/jobs`, and the package root's loaders start from those by default.
   */
  registry: JobRegistry;
}

export interface LoadedConfig {
  config: ChainConfig;
  registry: JobRegistry;
}

/**
 * Reads the configuration at `target` (a directory or a combined file), loads job classes from
 * `<config dir>/jobs/` and every `jobDirs` entry, and checks everything. Rejects with ConfigError listing every
 * problem.
 */
export async function loadConfig(target: string, options: LoadOptions): Promise<LoadedConfig> {
  const sources = readConfigSources(target);
  return finishLoad(sources, options);
}

/** Like loadConfig, for a configuration written as an object (`{jobs, graphs, parameters}`). */
export async function loadConfigObject(
  config: Partial<Record<Section, unknown>>,
  options: LoadOptions & { dir?: string },
): Promise<LoadedConfig> {
  return finishLoad(sourcesFromObject(config, "<inline config>", options.dir), options);
}

async function finishLoad(sources: ReturnType<typeof readConfigSources>, options: LoadOptions): Promise<LoadedConfig> {
  const registry = options.registry.clone();
  const problems: ConfigProblem[] = [];
  const dirs: string[] = [];
  if (sources.files.length > 0) {
    const own = path.join(sources.dir, "jobs");
    dirs.push(own);
    problems.push(...(await registry.loadDirectory(own, { required: false })));
  }
  for (const dir of options.jobDirs ?? []) {
    dirs.push(dir);
    problems.push(...(await registry.loadDirectory(dir)));
  }
  const config = resolveConfig(
    { ...sources, problems: [...sources.problems, ...problems] },
    { knownTypes: new Set(registry.names()), jobDirs: dirs, jobModulesFailed: problems.length > 0 },
  );
  return { config, registry };
}

/** The module URL a worker thread imports to build a job class registered from `source` (a path or file URL). */
function moduleOf(source: string | undefined): string | undefined {
  if (!source || source.startsWith("<")) return undefined;
  if (source.startsWith("file:")) return source;
  return pathToFileURL(path.resolve(source)).href;
}

/** Constructs the job instances of every graph instance. Rejects with ConfigError if a constructor throws. */
export function instantiate(config: ChainConfig, registry: JobRegistry): RunnableGraph[] {
  const problems: ConfigProblem[] = [];
  const graphs = config.instances.map((inst) => ({
    ...inst,
    nodes: inst.nodes.map((n) => {
      const cls = registry.get(n.type);
      let job;
      try {
        if (cls.worker) {
          const module = moduleOf(registry.sourceOf(n.type));
          if (!module) throw new Error(`'static worker' needs a job class loaded from a file, but ${cls.name} was registered in code`);
          job = new WorkerJob(module, cls.name, n.name, n.properties);
        } else job = new cls(n.name, n.properties);
      } catch (err) {
        problems.push({
          file: config.files[0] ?? config.dir,
          path: ["jobs", n.name],
          message: `job '${n.name}' (${n.type}) of graph '${inst.id}' could not be constructed: ${(err as Error).message}`,
          hint: "check the job's properties",
        });
      }
      return { ...n, job: job! };
    }),
  }));
  if (problems.length > 0) throw new ConfigError(problems);
  return graphs;
}

/**
 * Loads the configuration at `target` and builds a chain of all its graph instances.
 * Rejects with ConfigError listing every problem when the configuration is invalid.
 */
export async function loadChain(target: string, options: ChainOptions & LoadOptions): Promise<JobChain> {
  const { config, registry } = await loadConfig(target, options);
  return new JobChain(instantiate(config, registry), options);
}
