// Lets job modules import "jobchain" wherever they live. A project that installs the package resolves its own
// copy as usual; only when resolution fails is the bare specifier resolved from the copy running this process
// (the package's own exports, as a module inside it would import itself), so job directories work with a
// global or npx install too (and then share one Job class with the engine).
// Module hooks are per thread: the CLI and each job worker thread install them.
import { registerHooks } from "node:module";

let installed = false;

export function resolveJobchainFromHere(): void {
  if (installed) return;
  if (!import.meta.url.endsWith(".js")) return; // running from source (tests): the package resolves itself
  installed = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      try {
        return nextResolve(specifier, context);
      } catch (err) {
        if ((err as { code?: string }).code !== "ERR_MODULE_NOT_FOUND") throw err;
        if (specifier === "jobchain" || specifier.startsWith("jobchain/")) return nextResolve(specifier, { ...context, parentURL: import.meta.url });
        throw err;
      }
    },
  });
}
