// The `jobchain` package: the core library, with the built-in jobs known to its configuration loaders unless a
// registry is given. The layers above core (CLI, runner command, operator) pass builtinRegistry() themselves.
import * as core from "./core/index.ts";
import type { ChainOptions, JobChain, JobRegistry, LoadedConfig } from "./core/index.ts";
import { builtinRegistry } from "./jobs/index.ts";

export * from "./core/index.ts";
export { builtinRegistry, builtinJobs } from "./jobs/index.ts";

/** Options of the loaders; `registry` defaults to the built-in jobs. */
export interface LoadOptions extends Omit<core.LoadOptions, "registry"> {
  registry?: JobRegistry | undefined;
}

const withBuiltins = <T extends LoadOptions>(options: T): T & core.LoadOptions => ({ ...options, registry: options.registry ?? builtinRegistry() });

/** core's loadConfig, starting from the built-in jobs unless `options.registry` is given. */
export function loadConfig(target: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  return core.loadConfig(target, withBuiltins(options));
}

/** core's loadConfigObject, starting from the built-in jobs unless `options.registry` is given. */
export function loadConfigObject(config: Parameters<typeof core.loadConfigObject>[0], options: LoadOptions & { dir?: string } = {}): Promise<LoadedConfig> {
  return core.loadConfigObject(config, withBuiltins(options));
}

/** core's loadChain, starting from the built-in jobs unless `options.registry` is given. */
export function loadChain(target: string, options: ChainOptions & LoadOptions = {}): Promise<JobChain> {
  return core.loadChain(target, withBuiltins(options));
}
