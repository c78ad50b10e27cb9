import { ConfigError } from "../../core/index.ts";
import { builtinRegistry } from "../../jobs/index.ts";
import { parse } from "../args.ts";
import { EXIT } from "../errors.ts";
import { configFlags, jobDirectories } from "./common.ts";

export const usage = `usage: jobchain jobs [--jobs DIR]... [--format text|json]

Lists the job types this installation provides: the built-in jobs and every job class exported by the modules in
--jobs DIR and in the directories of $JOBCHAIN_JOBS (separated by ':'; the project image sets /app/jobs). A runner
image's build runs it to check that its job modules load:  RUN ["jobchain", "jobs"]
Exit status: 0 when every module loaded, 2 otherwise (each problem is named with its file).`;

export async function jobs(argv: string[]): Promise<number> {
  const { values } = parse("jobs", argv, { ...configFlags, format: { type: "string" } }, 0);
  if (values.help) {
    process.stdout.write(usage + "\n");
    return EXIT.ok;
  }
  const format = values.format ?? "text";
  if (format !== "text" && format !== "json") {
    throw new ConfigError([{ file: "<command line>", path: ["--format"], message: `must be text or json, got '${format}'`, hint: "use --format text or --format json" }]);
  }
  const registry = builtinRegistry().clone();
  const problems = [];
  for (const dir of jobDirectories(values.jobs)) problems.push(...(await registry.loadDirectory(dir)));
  if (problems.length) throw new ConfigError(problems);
  const types = registry.names().map((type) => ({ type, source: registry.isBuiltin(type) ? "built-in" : registry.sourceOf(type) ?? "<code>" }));
  if (format === "json") {
    process.stdout.write(JSON.stringify(types) + "\n");
  } else {
    const width = Math.max(...types.map((t) => t.type.length));
    process.stdout.write(types.map((t) => `${t.type.padEnd(width)}  ${t.source}`).join("\n") + "\n");
  }
  return EXIT.ok;
}
