/**
 * Named errors. Each carries structured fields so callers (CLI, runner, operator status) can report them
 * without parsing messages.
 */

/** One problem found in a configuration: where it is, what is wrong, and what to do about it. */
export interface ConfigProblem {
  /** The file the problem is in (as given by the user, or the directory for missing files). */
  file: string;
  /** Path inside the document, e.g. ["graphs", "etl", "load", "next", 0]. Empty for file-level problems. */
  path: (string | number)[];
  /** 1-based line in `file`, when known. */
  line?: number;
  message: string;
  /** What to do about it. */
  hint?: string;
}

/** Formats a problem as `file:line: path: message (hint)`. */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  const at = p.path.length > 0 ? ` ${p.path.join(".")}:` : "";
  return `${where}:${at} ${p.message}${p.hint ? ` (${p.hint})` : ""}`;
}

/** The configuration is invalid. `problems` lists every problem found, not just the first. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[], options?: ErrorOptions) {
    const head = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(`invalid configuration, ${head}:\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`, options);
    this.problems = problems;
  }
}

/** A task names a graph instance that does not exist, or names none where several exist. */
export class UnknownGraphError extends Error {
  override readonly name = "UnknownGraphError";
  readonly graph: string | undefined;
  readonly available: string[];
  constructor(graph: string | undefined, available: string[], message?: string) {
    super(
      message ??
        (graph === undefined
          ? `no graph given and there are ${available.length} graph instances; choose one of: ${available.join(", ")}`
          : `unknown graph '${graph}'; available: ${available.join(", ")}`),
    );
    this.graph = graph;
    this.available = available;
  }
}

/** The structured failure of a task: which job failed, why, on which attempt. */
export interface TaskErrorInfo {
  job: string;
  message: string;
  attempt?: number;
  /** Error class name of the cause, e.g. "TimeoutError". */
  type?: string;
}

/** A task failed. `job` is the short name of the job that failed. */
export class TaskFailedError extends Error {
  override readonly name = "TaskFailedError";
  readonly taskId: string;
  readonly graph: string;
  readonly job: string;
  readonly attempt: number | undefined;
  constructor(taskId: string, graph: string, info: TaskErrorInfo, options?: ErrorOptions) {
    super(`task ${taskId} failed in job '${info.job}' of graph '${graph}': ${info.message}`, options);
    this.taskId = taskId;
    this.graph = graph;
    this.job = info.job;
    this.attempt = info.attempt;
  }
}

/** A job ran longer than its `timeout`, or a task passed its deadline. */
export class JobTimeoutError extends Error {
  override readonly name = "TimeoutError";
  readonly seconds: number;
  constructor(what: string, seconds: number) {
    super(`${what} timed out after ${seconds}s`);
    this.seconds = seconds;
  }
}

/** The engine no longer accepts tasks (after markInputCompleted or close). */
export class ClosedError extends Error {
  override readonly name = "ClosedError";
  constructor(message = "the chain no longer accepts tasks: input was marked completed") {
    super(message);
  }
}

/** Data at a node boundary did not match the job's declared schema. */
export class SchemaError extends Error {
  override readonly name = "SchemaError";
  readonly job: string;
  readonly direction: "input" | "output";
  constructor(job: string, direction: "input" | "output", detail: string) {
    super(`${direction} of job '${job}' does not match its schema: ${detail}`);
    this.job = job;
    this.direction = direction;
  }
}

/**
 * A feature needs a package that is an optional peer dependency of jobchain (the OpenTelemetry SDK for tracing,
 * @kubernetes/client-node for the operator) and is not installed. The message says what to install.
 */
export class MissingDependencyError extends Error {
  override readonly name = "MissingDependencyError";
  readonly feature: string;
  readonly packages: readonly string[];
  constructor(feature: string, packages: readonly string[], options?: { cause?: unknown }) {
    super(`${feature} needs ${packages.join(", ")}: npm install ${packages.join(" ")}`, options);
    this.feature = feature;
    this.packages = packages;
  }
}
