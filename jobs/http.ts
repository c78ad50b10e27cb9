import { Job, type JobContext, type Task } from "../core/job.ts";
import { render } from "./template.ts";

/**
 * Fetches a URL. Properties: `url` (a `{{task.x}}` template; default: the task's `url`), `method` (GET),
 * `headers`, `body` (sent as JSON unless a string), `response` (`auto` | `json` | `text`), `max_bytes`
 * (default 10 MiB), `fail_on_status` (default true: a 4xx/5xx status fails the job, so retries apply).
 * Output: `{ url, status, headers, body }`.
 */
export class HttpFetch extends Job {
  async run(task: Task, ctx: JobContext): Promise<Record<string, unknown>> {
    const p = this.properties;
    const scope = { task, inputs: ctx.inputs, ...task };
    const url = typeof p.url === "string" ? render(p.url, scope) : String(task.url ?? "");
    if (!/^https?:\/\//.test(url)) throw new Error(`HttpFetch: not an http(s) URL: '${url}'`);
    const method = String(p.method ?? "GET").toUpperCase();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((p.headers as Record<string, unknown> | undefined) ?? {})) {
      headers[k] = render(String(v), scope);
    }
    let body: string | undefined;
    if (p.body !== undefined) {
      body = typeof p.body === "string" ? render(p.body, scope) : JSON.stringify(p.body);
      if (typeof p.body !== "string" && !Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) {
        headers["content-type"] = "application/json";
      }
    }
    const res = await fetch(url, { method, headers, body: body ?? null, signal: ctx.signal, redirect: "follow" });
    const maxBytes = typeof p.max_bytes === "number" ? p.max_bytes : 10 * 1024 * 1024;
    const buf = await readLimited(res, maxBytes);
    const text = new TextDecoder().decode(buf);
    if (res.status >= 400 && p.fail_on_status !== false) {
      throw new Error(`HttpFetch: ${method} ${url} returned ${res.status}: ${text.slice(0, 200)}`);
    }
    const mode = String(p.response ?? "auto");
    const isJson = mode === "json" || (mode === "auto" && /json/.test(res.headers.get("content-type") ?? ""));
    return {
      url,
      status: res.status,
      headers: Object.fromEntries(res.headers),
      body: isJson && text ? JSON.parse(text) : text,
    };
  }
}

async function readLimited(res: Response, maxBytes: number): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new Error(`HttpFetch: response larger than max_bytes (${maxBytes})`);
    chunks.push(chunk);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}
