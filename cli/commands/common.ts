import path from "node:path";
import { parse as parseYaml } from "yaml";
import { loadConfig, loadConfigObject, type AbandonedJob, type LoadedConfig } from "../../core/index.ts";
import { builtinRegistry } from "../../jobs/index.ts";
import { UsageError } from "../errors.ts";
import type { Format } from "../drive.ts";

/** Flags shared by the commands that load a configuration. */
export const configFlags = {
  jobs: { type: "string", multiple: true },
} as const;

/**
 * The directories of job modules: `--jobs DIR` flags, then those listed in $JOBCHAIN_JOBS (separated by ':'),
 * which is how a runner image says where its jobs are (the project image sets JOBCHAIN_JOBS=/app/jobs).
 */
export function jobDirectories(flags: readonly string[] | undefined): string[] {
  const fromEnv = (process.env.JOBCHAIN_JOBS ?? "").split(path.delimiter).map((d) => d.trim()).filter(Boolean);
  return [...new Set([...(flags ?? []), ...fromEnv])];
}

/**
 * Loads CONFIG, or without one the configuration in $JOBCHAIN_CONFIG (JSON or YAML text, as the operator gives
 * its runners), or the current directory.
 */
export async function loadFromArgs(positional: string | undefined, jobDirs: string[] | undefined): Promise<LoadedConfig> {
  const inline = positional === undefined ? process.env.JOBCHAIN_CONFIG : undefined;
  if (inline !== undefined && inline.trim() !== "") {
    let data: unknown;
    try {
      data = parseYaml(inline);
    } catch (err) {
      throw new UsageError(`JOBCHAIN_CONFIG is not valid JSON or YAML: ${(err as Error).message}`, "set it to a configuration with jobs and graphs, or pass CONFIG");
    }
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      throw new UsageError("JOBCHAIN_CONFIG must hold a mapping with `jobs` and `graphs`", "set it to a configuration, or pass CONFIG");
    }
    return loadConfigObject(data as Record<string, unknown>, { jobDirs: jobDirectories(jobDirs), registry: builtinRegistry() });
  }
  return loadConfig(positional ?? ".", { jobDirs: jobDirectories(jobDirs), registry: builtinRegistry() });
}

export function outputFormat(value: string | undefined): Format {
  if (value === undefined) return process.stdout.isTTY ? "pretty" : "jsonl";
  if (value === "jsonl" || value === "pretty") return value;
  throw new UsageError(`--format must be jsonl or pretty, got '${value}'`);
}

/** How long a command waits for jobs that outlived their tasks before it exits without them. */
export const ABANDON_GRACE_MS = 500;

/** Names, on stderr, each job run a command exits without (the process exit ends it). */
export function warnAbandoned(jobs: readonly AbandonedJob[]): void {
  for (const a of jobs) {
    process.stderr.write(
      `jobchain: warning: job '${a.job}' of task '${a.taskId}' (graph ${a.graph}) ignored its abort signal and is still running; exiting without it (a job should stop when ctx.signal aborts)\n`,
    );
  }
}
