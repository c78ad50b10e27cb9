import { Job, type JobContext, type Task } from "../core/job.ts";
import { childAbort } from "../core/abort.ts";
import { RateLimiters, systemClock } from "../core/limits.ts";
import { render } from "./template.ts";

/** One limiter per (base URL, key name) in the process, shared by every OpenAIChat job that uses it. */
const limiters = new RateLimiters();

/**
 * Calls an OpenAI-compatible `/chat/completions` API.
 *
 * Properties: `base_url` (default `$OPENAI_BASE_URL` or `https://api.openai.com/v1`), `model` (required),
 * `api_key_env` (name of the environment variable holding the key, default `OPENAI_API_KEY`), `system`,
 * `prompt` (a `{{task.x}}` / `{{inputs.job.field}}` template; default: the task's `prompt`), `temperature`,
 * `max_tokens`, `response_format`, `rate_limit` (`{max, per}` requests per seconds, shared by every job with the
 * same base URL and key), `retries` (extra attempts on 429 and 5xx, default 3), `timeout` (seconds per request,
 * default 120).
 * The task may also carry `messages` (a full chat history). Output: `{ content, model, usage, finish_reason }`.
 * API errors fail the job; they are never turned into a normal result.
 */
export class OpenAIChat extends Job {
  static override alias = "OpenAIJob";

  async run(task: Task, ctx: JobContext): Promise<Record<string, unknown>> {
    const p = this.properties;
    const baseUrl = String(p.base_url ?? process.env.OPENAI_BASE_URL ?? "https://api.openai.com/v1").replace(/\/+$/, "");
    const keyEnv = String(p.api_key_env ?? "OPENAI_API_KEY");
    const apiKey = process.env[keyEnv];
    if (typeof p.model !== "string" || !p.model) throw new Error("OpenAIChat: property 'model' is required");
    const scope = { task, inputs: ctx.inputs, ...task };
    let messages: unknown[];
    if (Array.isArray(task.messages)) messages = task.messages;
    else {
      const prompt = typeof p.prompt === "string" ? render(p.prompt, scope) : task.prompt;
      if (typeof prompt !== "string" || !prompt) throw new Error("OpenAIChat: no prompt: set property 'prompt' or give the task a 'prompt' or 'messages'");
      messages = [...(typeof p.system === "string" ? [{ role: "system", content: render(p.system, scope) }] : []), { role: "user", content: prompt }];
    }
    const body: Record<string, unknown> = { model: p.model, messages };
    for (const k of ["temperature", "max_tokens", "response_format", "top_p", "seed"] as const) if (p[k] !== undefined) body[k] = p[k];

    const rl = p.rate_limit as { max?: number; per?: number } | undefined;
    const limiter = rl?.max ? limiters.get({ max: rl.max, per: rl.per ?? 60, key: `${baseUrl}|${keyEnv}` }, "") : undefined;
    const retries = typeof p.retries === "number" ? p.retries : 3;
    const timeoutMs = (typeof p.timeout === "number" ? p.timeout : 120) * 1000;

    for (let attempt = 0; ; attempt++) {
      await limiter?.acquire(ctx.signal);
      const request = childAbort(ctx.signal);
      const timer = setTimeout(() => request.controller.abort(new Error(`OpenAIChat: no answer within ${timeoutMs / 1000}s`)), timeoutMs);
      let res: Response;
      let text: string;
      try {
        res = await fetch(`${baseUrl}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
          body: JSON.stringify(body),
          signal: request.signal,
        });
        text = await res.text();
      } finally {
        clearTimeout(timer);
        request.dispose();
      }
      if (res.ok) {
        const data = JSON.parse(text) as {
          model?: string;
          usage?: unknown;
          choices?: { message?: { content?: string }; finish_reason?: string }[];
        };
        const choice = data.choices?.[0];
        return { content: choice?.message?.content ?? "", model: data.model ?? p.model, usage: data.usage ?? null, finish_reason: choice?.finish_reason ?? null };
      }
      const retryable = res.status === 429 || res.status >= 500;
      if (!retryable || attempt >= retries) {
        throw new Error(`OpenAIChat: ${res.status} from ${baseUrl}: ${text.slice(0, 300)}`);
      }
      const after = Number(res.headers.get("retry-after"));
      const wait = Number.isFinite(after) && after > 0 ? after * 1000 : Math.min(30_000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
      ctx.logger.debug({ status: res.status, attempt, wait }, "OpenAIChat: retrying");
      ctx.progress({ retrying: res.status });
      await systemClock.sleep(wait, ctx.signal);
    }
  }
}
