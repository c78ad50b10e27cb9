// The public API of the core library (the `jobchain` package root adds the built-in jobs: ../index.ts).
export { Job, isJobClass, type JobClass, type JobLifecycle, type JobContext, type JobOutput, type Schema, type Task } from "./job.ts";
export {
  JobChain,
  NonRetryableError,
  type AbandonedJob,
  normalizeOutput,
  taskIdOf,
  type ChainOptions,
  type ChainStats,
  type ResolvedNode,
  type ResultHandler,
  type RateLimiterSource,
  type RunnableGraph,
  type SubmitOptions,
  type TaskOutcome,
} from "./chain.ts";
export { serial, parallel, fn, defineGraph, Serial, Parallel, type Composable, type NodeOptions } from "./dsl.ts";
export { loadChain, loadConfig, loadConfigObject, instantiate, type LoadOptions, type LoadedConfig } from "./load.ts";
export { JobRegistry, listJobFiles } from "./registry.ts";
export { readConfigSources, resolveConfig, sourcesFromObject, type ChainConfig } from "./config/index.ts";
export type { GraphInstance, NodeSpec } from "./graph.ts";
export { findCycles, topologicalOrder, instancesNamed, selectInstance } from "./graph.ts";
export {
  ConfigError,
  UnknownGraphError,
  TaskFailedError,
  JobTimeoutError,
  ClosedError,
  SchemaError,
  MissingDependencyError,
  formatProblem,
  type ConfigProblem,
  type TaskErrorInfo,
} from "./errors.ts";
export { resolvePolicy, backoffDelayMs, type JobPolicy, type JobPolicyInput, type RetryPolicy, type RateLimitPolicy, type BackoffPolicy } from "./policy.ts";
export { Semaphore, RateLimiter, RateLimiters, systemClock, type Clock } from "./limits.ts";
export { createLogger, logLevelFromEnv, type Logger } from "./logging.ts";
export { importOptional } from "./optional.ts";
export { setupTracing, readTracingConfig, type Tracing, type TracingConfig } from "./tracing.ts";
