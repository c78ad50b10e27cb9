import { ConfigError, MissingDependencyError, UnknownGraphError, formatProblem } from "../core/index.ts";
import { NatsSettingError } from "../runner/index.ts";

/** A mistake in how the CLI was called: reported as a message (no stack), exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.hint = hint;
  }
}

export const EXIT = { ok: 0, failed: 1, invalid: 2, interrupted: 130 } as const;

/**
 * Prints an error the user can act on and returns the exit code: 2 for configuration and usage problems.
 * Unexpected errors print their message only (the stack with JOBCHAIN_LOG_LEVEL=debug).
 */
export function reportError(err: unknown, write: (s: string) => void = (s) => process.stderr.write(s)): number {
  if (err instanceof ConfigError) {
    const n = err.problems.length;
    write(`jobchain: invalid configuration (${n} problem${n === 1 ? "" : "s"}):\n`);
    for (const p of err.problems) write(`  ${formatProblem(p)}\n`);
    return EXIT.invalid;
  }
  if (err instanceof UsageError || err instanceof NatsSettingError) {
    write(`jobchain: ${err.message}\n`);
    if (err.hint) write(`  hint: ${err.hint}\n`);
    return EXIT.invalid;
  }
  if (err instanceof UnknownGraphError) {
    // With nothing to choose from, the message itself says what to do.
    write(`jobchain: ${err.message}\n${err.available.length > 0 ? "  hint: pass --graph with one of the ids above\n" : ""}`);
    return EXIT.invalid;
  }
  if (err instanceof MissingDependencyError) {
    // The message names the package and the command that installs it.
    write(`jobchain: ${err.message}\n`);
    return EXIT.invalid;
  }
  const e = err as Error;
  write(`jobchain: ${e?.message ?? String(err)}\n`);
  if (process.env.JOBCHAIN_LOG_LEVEL?.toLowerCase() === "debug" && e?.stack) write(`${e.stack}\n`);
  return EXIT.failed;
}
