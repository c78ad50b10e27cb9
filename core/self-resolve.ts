// Lets job modules import "jobchain" wherever they live. A project that installs the package resolves its own
// copy as usual; only when resolution fails is the bare specifier mapped to the copy running this process, so
// job directories work with a global or npx install too (and then share one Job class with the engine).
// Module hooks are per thread: the CLI and each job worker thread install them.
import { registerHooks } from "node:module";

let installed = false;

export function resolveJobchainFromHere(): void {
  if (installed) return;
  const self = new URL("./index.js", import.meta.url).href;
  const jobs = new URL("../jobs/index.js", import.meta.url).href;
  if (!import.meta.url.endsWith(".js")) return; // running from source (tests): the package resolves itself
  installed = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      try {
        return nextResolve(specifier, context);
      } catch (err) {
        if ((err as { code?: string }).code !== "ERR_MODULE_NOT_FOUND") throw err;
        if (specifier === "jobchain") return nextResolve(self, context);
        if (specifier === "jobchain/jobs") return nextResolve(jobs, context);
        throw err;
      }
    },
  });
}
