// Built-in jobs, registered by the layers that load configurations (the CLI, the runner command, the operator,
// and the package root's loaders). They use only the core job contract; core itself knows none of them.
import type { JobClass } from "../core/job.ts";
import { JobRegistry } from "../core/registry.ts";
import { Delay, Echo, Fail, Merge } from "./basic.ts";
import { HttpFetch } from "./http.ts";
import { OpenAIChat } from "./openai.ts";

export { Delay, Echo, Fail, Merge, HttpFetch, OpenAIChat };

export const builtinJobs: readonly JobClass[] = [Echo, Merge, Delay, Fail, HttpFetch, OpenAIChat];

let builtins: JobRegistry | undefined;

/**
 * A registry holding the built-in jobs (Echo, Merge, Delay, Fail, HttpFetch, OpenAIChat), a copy the caller may
 * add to. A user class of the same name replaces a built-in. Worker threads import built-ins from this module.
 */
export function builtinRegistry(): JobRegistry {
  if (!builtins) {
    builtins = new JobRegistry();
    for (const cls of builtinJobs) builtins.register(cls, import.meta.url, true);
  }
  return builtins.clone();
}
