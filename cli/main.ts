// The `jobchain` command line. Every command returns its exit code; errors are messages, never stack traces.
import { readFileSync } from "node:fs";
import { resolveJobchainFromHere } from "../core/self-resolve.ts";
import { EXIT, UsageError, reportError } from "./errors.ts";
import { graph, usage as graphUsage } from "./commands/graph.ts";
import { run, usage as runUsage } from "./commands/run.ts";
import { validate, usage as validateUsage } from "./commands/validate.ts";
import { runner, usage as runnerUsage } from "./commands/runner.ts";
import { submit, usage as submitUsage } from "./commands/submit.ts";
import { nats, usage as natsUsage } from "./commands/nats.ts";
import { results, usage as resultsUsage } from "./commands/results.ts";
import { operator, usage as operatorUsage } from "./commands/operator.ts";
import { manifest, usage as manifestUsage } from "./commands/manifest.ts";
import { jobs, usage as jobsUsage } from "./commands/jobs.ts";

export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

export const commands: Record<string, Command> = {
  run: { summary: "run tasks through a graph in this process", usage: runUsage, run },
  validate: { summary: "check a configuration", usage: validateUsage, run: validate },
  graph: { summary: "print a graph as Mermaid or dot", usage: graphUsage, run: graph },
  jobs: { summary: "list the job types this installation provides (built-in and $JOBCHAIN_JOBS)", usage: jobsUsage, run: jobs },
  runner: { summary: "serve graph nodes over NATS JetStream", usage: runnerUsage, run: runner },
  submit: { summary: "submit tasks to runners over NATS and print results", usage: submitUsage, run: submit },
  results: { summary: "print recorded results of tasks run over NATS", usage: resultsUsage, run: results },
  nats: { summary: "manage a graph's NATS streams and buckets (cleanup)", usage: natsUsage, run: nats },
  operator: { summary: "run the Kubernetes operator (JobGraph and JobTask resources)", usage: operatorUsage, run: operator },
  manifest: { summary: "print a JobGraph resource for a graph of a configuration", usage: manifestUsage, run: manifest },
};

function version(): string {
  // Runs from dist/cli/ when installed and from cli/ in a checkout: look upwards for the package manifest.
  for (const rel of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { name?: string; version: string };
      if (pkg.name === "jobchain") return pkg.version;
    } catch {
      // not there; try the next level
    }
  }
  return "unknown";
}

function help(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    "usage: jobchain <command> [options]",
    "",
    "Commands:",
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    "",
    "Run 'jobchain <command> --help' for the options of a command.",
  ].join("\n");
}

/** Runs the CLI with `argv` (without node and script) and resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  resolveJobchainFromHere();
  try {
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
      const topic = name === "help" ? rest[0] : undefined;
      process.stdout.write((topic && commands[topic] ? commands[topic].usage : help()) + "\n");
      return EXIT.ok;
    }
    if (name === "--version" || name === "-v" || name === "version") {
      process.stdout.write(version() + "\n");
      return EXIT.ok;
    }
    const command = commands[name];
    if (!command) throw new UsageError(`unknown command '${name}'`, `commands: ${Object.keys(commands).join(", ")}`);
    return await command.run(rest);
  } catch (err) {
    return reportError(err);
  }
}
