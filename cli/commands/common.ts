import { loadConfig, type LoadedConfig } from "../../core/index.ts";
import { UsageError } from "../errors.ts";
import type { Format } from "../drive.ts";

/** Flags shared by the commands that load a configuration. */
export const configFlags = {
  jobs: { type: "string", multiple: true },
} as const;

export async function loadFromArgs(positional: string | undefined, jobDirs: string[] | undefined): Promise<LoadedConfig> {
  return loadConfig(positional ?? ".", { jobDirs: jobDirs ?? [] });
}

export function outputFormat(value: string | undefined): Format {
  if (value === undefined) return process.stdout.isTTY ? "pretty" : "jsonl";
  if (value === "jsonl" || value === "pretty") return value;
  throw new UsageError(`--format must be jsonl or pretty, got '${value}'`);
}
