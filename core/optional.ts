// Optional peer dependencies: what only the operator (@kubernetes/client-node) or tracing (the OpenTelemetry
// SDK) needs is not installed with the package; the code that needs it loads it with a dynamic import, through
// here, so a missing package is a clear message instead of a module-resolution stack trace.
import { MissingDependencyError } from "./errors.ts";

/**
 * Runs `load` (a dynamic import). Rejects with MissingDependencyError naming `feature` and every one of
 * `packages` when the import fails because one of them is not installed; rejects with the error itself for
 * anything else.
 */
export async function importOptional<T>(feature: string, packages: readonly string[], load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown } | undefined;
    const message = typeof e?.message === "string" ? e.message : "";
    if (e?.code === "ERR_MODULE_NOT_FOUND" && packages.some((p) => message.includes(`'${p}'`))) {
      throw new MissingDependencyError(feature, packages, { cause: err });
    }
    throw err;
  }
}
