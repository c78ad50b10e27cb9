// Built-in jobs, always registered. They use only the core job contract.
import type { JobClass } from "../core/job.ts";
import { Delay, Echo, Fail, Merge } from "./basic.ts";
import { HttpFetch } from "./http.ts";
import { OpenAIChat } from "./openai.ts";

export { Delay, Echo, Fail, Merge, HttpFetch, OpenAIChat };

export const builtinJobs: readonly JobClass[] = [Echo, Merge, Delay, Fail, HttpFetch, OpenAIChat];
