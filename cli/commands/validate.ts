import { parse } from "../args.ts";
import { EXIT } from "../errors.ts";
import { configFlags, loadFromArgs } from "./common.ts";

export const usage = `usage: jobchain validate [CONFIG] [--jobs DIR]...

Checks a configuration and lists its graph instances with their heads and tails.
Exit status: 0 valid, 2 invalid (every problem is listed with file, line and a hint).`;

export async function validate(argv: string[]): Promise<number> {
  const { values, positionals } = parse("validate", argv, { ...configFlags });
  if (values.help) {
    process.stdout.write(usage + "\n");
    return EXIT.ok;
  }
  const { config } = await loadFromArgs(positionals[0], values.jobs);
  const n = config.instances.length;
  const lines = [`configuration OK: ${config.files.join(", ")}`, `${n} graph instance${n === 1 ? "" : "s"}:`];
  for (const inst of config.instances) {
    lines.push(
      `  ${inst.id}: ${inst.nodes.length} job${inst.nodes.length === 1 ? "" : "s"}; heads: ${inst.heads.join(", ")}; tails: ${inst.tails.join(", ")}`,
    );
  }
  process.stdout.write(lines.join("\n") + "\n");
  return EXIT.ok;
}
