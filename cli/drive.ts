// Drives a stream of tasks through any executor (the embedded engine or a NATS client) and prints outcomes in
// completion order, with the exit code of the CLI contract.
import type { TaskOutcome } from "../core/index.ts";
import { EXIT } from "./errors.ts";
import type { InputItem } from "./inputs.ts";
import { BufferedWriter, ProgressBar, brief, outcomeLine } from "./output.ts";

export type Format = "jsonl" | "pretty";

export interface DriveOptions {
  format: Format;
  /** Most tasks submitted but not finished; reading input pauses beyond it. */
  window: number;
  /** Submits one task; resolves to its outcome. */
  execute(task: unknown): Promise<TaskOutcome>;
  /** Called with each outcome before it is printed (e.g. to count). */
  signal?: AbortSignal | undefined;
}

export interface DriveSummary {
  submitted: number;
  succeeded: number;
  failed: number;
  badInputs: number;
  seconds: number;
  exitCode: number;
}

export async function drive(inputs: AsyncIterable<InputItem>, options: DriveOptions): Promise<DriveSummary> {
  const out = new BufferedWriter(process.stdout);
  const bar = options.format === "pretty" && process.stderr.isTTY ? new ProgressBar(process.stderr) : undefined;
  const started = performance.now();
  let submitted = 0;
  let succeeded = 0;
  let failed = 0;
  let badInputs = 0;
  let outstanding = 0;
  let inputClosed = false;
  let wake: (() => void) | undefined;
  let allDone: (() => void) | undefined;

  const onOutcome = (o: TaskOutcome): void => {
    outstanding--;
    if (o.status === "succeeded") succeeded++;
    else failed++;
    if (options.format === "jsonl") out.write(outcomeLine(o) + "\n");
    else {
      bar?.clear();
      out.write(
        o.status === "succeeded"
          ? `✓ ${o.id}  ${o.graph}  ${brief(o.result)}\n`
          : `✗ ${o.id}  ${o.graph}  job '${o.error.job}' failed${o.error.attempt ? ` (attempt ${o.error.attempt})` : ""}: ${o.error.message}\n`,
      );
      if (bar) out.flush();
      bar?.update(succeeded + failed, failed, submitted, inputClosed);
    }
    wake?.();
    if (inputClosed && outstanding === 0) allDone?.();
  };

  for await (const item of inputs) {
    if (options.signal?.aborted) break;
    if ("error" in item) {
      badInputs++;
      bar?.clear();
      process.stderr.write(`jobchain: skipped input ${item.error}\n`);
      continue;
    }
    submitted++;
    outstanding++;
    options.execute(item.task).then(onOutcome, (err: unknown) => {
      onOutcome({
        status: "failed",
        id: "",
        graph: "",
        task: item.task,
        error: { job: "", message: (err as Error)?.message ?? String(err) },
      });
    });
    // A slow reader of our output (a pipe) holds up input, so results never pile up in memory.
    if (out.blocked) await out.drained();
    if (outstanding >= options.window) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  }
  inputClosed = true;
  if (outstanding > 0) await new Promise<void>((resolve) => (allDone = resolve));
  const seconds = (performance.now() - started) / 1000;
  if (options.format === "pretty") {
    bar?.update(succeeded + failed, failed, submitted, true, true);
    bar?.clear();
    const rate = seconds > 0 ? ` (${Math.round((succeeded + failed) / seconds)} tasks/s)` : "";
    out.write(
      `\n${submitted} task${submitted === 1 ? "" : "s"}: ${succeeded} succeeded, ${failed} failed in ${seconds.toFixed(2)}s${rate}` +
        (badInputs ? `; ${badInputs} input line${badInputs === 1 ? "" : "s"} skipped` : "") +
        "\n",
    );
  }
  await out.end();
  const exitCode = badInputs > 0 ? EXIT.invalid : failed > 0 ? EXIT.failed : EXIT.ok;
  return { submitted, succeeded, failed, badInputs, seconds, exitCode };
}
