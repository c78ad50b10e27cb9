// Task inputs for `run` and `submit`: --input JSON values first, then JSON Lines from --inputs FILE or stdin.
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { UsageError } from "./errors.ts";

export type InputItem = { task: unknown } | { error: string };

/** Parses every --input up front, so a typo is reported before any task runs. */
export function parseInlineInputs(values: string[]): unknown[] {
  return values.map((v, i) => {
    try {
      return JSON.parse(v);
    } catch (err) {
      throw new UsageError(
        `--input #${i + 1} is not valid JSON: ${(err as Error).message}`,
        `quote the JSON for your shell, e.g. --input '{"url": "https://example.org"}'`,
      );
    }
  });
}

/**
 * Yields the tasks in order. A line of the inputs file that is not valid JSON yields an error naming the file
 * and line; the other lines still run.
 */
export async function* readInputs(inline: unknown[], file: string | undefined): AsyncGenerator<InputItem> {
  for (const task of inline) yield { task };
  if (file === undefined) return;
  const name = file === "-" ? "<stdin>" : file;
  const stream = file === "-" ? process.stdin : createReadStream(file, { encoding: "utf8" });
  const opened = new Promise<void>((resolve, reject) => {
    if (file === "-") return resolve();
    stream.once("open", () => resolve());
    stream.once("error", reject);
  });
  try {
    await opened;
  } catch (err) {
    throw new UsageError(`cannot read --inputs ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let n = 0;
  for await (const raw of lines) {
    n++;
    const line = raw.trim();
    if (line === "" || line.startsWith("//")) continue;
    try {
      yield { task: JSON.parse(line) };
    } catch (err) {
      yield { error: `${name}:${n}: not valid JSON: ${(err as Error).message}` };
    }
  }
}
