import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobChain, createLogger, defineGraph, fn, serial, type JobContext, type TaskOutcome } from "../core/index.ts";
import { sendJson, sendText, startServer, type Handler, type TestServer } from "../test/helpers/http-server.ts";
import { OpenAIChat } from "./index.ts";

const logger = createLogger({ level: "silent" });
const KEY_ENV = "JOBCHAIN_TEST_OPENAI_KEY";
const OTHER_KEY_ENV = "JOBCHAIN_TEST_OTHER_KEY";

let server: TestServer;
let handler: Handler;
let base: string;

function completion(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: "chatcmpl-1",
    object: "chat.completion",
    model: "fake-model-0613",
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
    ...extra,
  };
}

beforeEach(async () => {
  process.env[KEY_ENV] = "sk-test-123";
  handler = (req, res) =>
    req.method === "POST" && req.url === "/v1/chat/completions"
      ? sendJson(res, 200, completion("ok"))
      : sendJson(res, 404, { error: { message: `no route ${req.method} ${req.url}` } });
  server = await startServer((req, res, n) => handler(req, res, n));
  base = `${server.url}/v1`;
});

afterEach(async () => {
  delete process.env[KEY_ENV];
  delete process.env[OTHER_KEY_ENV];
  await server.close();
});

async function runChat(
  properties: Record<string, unknown>,
  task: unknown,
  onProgress?: (taskId: string, job: string, info: unknown) => void,
): Promise<TaskOutcome> {
  const chain = new JobChain([defineGraph("chat", new OpenAIChat("llm", properties))], { logger, onProgress });
  try {
    return await chain.execute(task);
  } finally {
    await chain.markInputCompleted();
  }
}

describe("OpenAIChat", () => {
  it("sends model, system and rendered prompt with the key from api_key_env; returns {content, model, usage, finish_reason}", async () => {
    const chat = new OpenAIChat("llm", {
      base_url: `${base}/`,
      model: "gpt-test",
      api_key_env: KEY_ENV,
      system: "You are {{task.persona}}.",
      prompt: "Summarise {{task.title}}: {{inputs.fetch.body.text}}",
      temperature: 0.2,
      max_tokens: 64,
    });
    const graph = defineGraph("summarise", serial(fn("fetch", () => ({ body: { text: "the page text" } })), chat));
    handler = (_req, res) => sendJson(res, 200, completion("A summary."));
    const chain = new JobChain([graph], { logger });
    const result = await chain.submitTask({ persona: "a careful editor", title: "Report" });
    await chain.markInputCompleted();

    expect(result).toEqual({
      content: "A summary.",
      model: "fake-model-0613",
      usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
      finish_reason: "stop",
    });
    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe("POST");
    expect(req.url).toBe("/v1/chat/completions");
    expect(req.headers.authorization).toBe("Bearer sk-test-123");
    expect(req.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(req.body)).toEqual({
      model: "gpt-test",
      messages: [
        { role: "system", content: "You are a careful editor." },
        { role: "user", content: "Summarise Report: the page text" },
      ],
      temperature: 0.2,
      max_tokens: 64,
    });
  });

  it("sends no Authorization header when the key variable is unset", async () => {
    const o = await runChat({ base_url: base, model: "m", api_key_env: OTHER_KEY_ENV }, { prompt: "hi" });
    expect(o.status).toBe("succeeded");
    expect(server.requests[0]!.headers.authorization).toBeUndefined();
    expect(JSON.parse(server.requests[0]!.body)).toEqual({ model: "m", messages: [{ role: "user", content: "hi" }] });
  });

  it("uses the task's messages as they are, else the task's prompt", async () => {
    const messages = [
      { role: "system", content: "be brief" },
      { role: "user", content: "one" },
      { role: "assistant", content: "two" },
      { role: "user", content: "three?" },
    ];
    await runChat({ base_url: base, model: "m", api_key_env: KEY_ENV, prompt: "ignored {{task.x}}" }, { messages, x: 1 });
    await runChat({ base_url: base, model: "m", api_key_env: KEY_ENV }, { prompt: "from the task" });
    expect(server.requests.map((r) => (JSON.parse(r.body) as { messages: unknown }).messages)).toEqual([
      messages,
      [{ role: "user", content: "from the task" }],
    ]);
  });

  it("fails without a model or a prompt, sending nothing", async () => {
    expect(await runChat({ base_url: base, prompt: "x" }, {})).toMatchObject({
      status: "failed",
      error: { job: "llm", message: "OpenAIChat: property 'model' is required" },
    });
    const o = await runChat({ base_url: base, model: "m" }, { other: 1 });
    expect(o).toMatchObject({ status: "failed", error: { job: "llm" } });
    expect(o.status === "failed" && o.error.message).toMatch(/^OpenAIChat: no prompt/);
    expect(server.requests).toHaveLength(0);
  });

  it("retries a 429 with retry-after: 0 and succeeds with exactly 2 requests, reporting progress", async () => {
    handler = (_req, res, n) =>
      n === 1 ? sendJson(res, 429, { error: { message: "slow down" } }, { "retry-after": "0" }) : sendJson(res, 200, completion("second time"));
    const progress: unknown[] = [];
    const o = await runChat({ base_url: base, model: "m", api_key_env: KEY_ENV }, { id: "t1", prompt: "p" }, (...args) =>
      progress.push(args),
    );
    expect(o.status === "succeeded" && o.result.content).toBe("second time");
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]!.body).toBe(server.requests[1]!.body);
    expect(progress).toEqual([["t1", "llm", { retrying: 429 }]]);
  });

  it("fails naming the status after `retries` extra attempts on a 500: exactly 3 requests for retries: 2", async () => {
    handler = (_req, res) => sendText(res, 500, "internal trouble");
    const o = await runChat({ base_url: base, model: "m", api_key_env: KEY_ENV, retries: 2 }, { prompt: "p" });
    expect(o).toMatchObject({
      status: "failed",
      error: { job: "llm", message: `OpenAIChat: 500 from ${base}: internal trouble`, attempt: 1 },
    });
    expect(server.requests).toHaveLength(3);
  });

  it("fails at once on a 400, with one request", async () => {
    handler = (_req, res) => sendJson(res, 400, { error: { message: "bad model" } });
    const o = await runChat({ base_url: base, model: "m", api_key_env: KEY_ENV, retries: 5 }, { prompt: "p" });
    expect(o).toMatchObject({
      status: "failed",
      error: { job: "llm", message: `OpenAIChat: 400 from ${base}: {"error":{"message":"bad model"}}` },
    });
    expect(server.requests).toHaveLength(1);
  });

  it("stops waiting to retry as soon as the task is cancelled", async () => {
    handler = (_req, res) => sendJson(res, 429, { error: { message: "later" } }, { "retry-after": "3600" });
    const ac = new AbortController();
    const waiting = Promise.withResolvers<void>();
    const ctx: JobContext = {
      taskId: "t",
      graph: "chat",
      job: "llm",
      attempt: 1,
      inputs: {},
      signal: ac.signal,
      logger,
      span: undefined,
      progress: () => waiting.resolve(), // called just before the wait for the retry
    };
    const state = { settled: false, error: undefined as unknown };
    void new OpenAIChat("llm", { base_url: base, model: "m", api_key_env: KEY_ENV })
      .run({ prompt: "p" }, ctx)
      .then(
        () => (state.settled = true),
        (err: unknown) => {
          state.settled = true;
          state.error = err;
        },
      );
    await waiting.promise;
    const reason = new Error("cancelled");
    ac.abort(reason);
    await new Promise((resolve) => setImmediate(resolve));
    expect(state.settled).toBe(true);
    expect(state.error).toBe(reason);
    expect(server.requests).toHaveLength(1);
  });

  it("shares one rate limit between jobs with the same base URL and key variable", async () => {
    // 2 requests per hour: a third request through the shared limiter cannot start within the test.
    const limited = (name: string, keyEnv: string, url = base) =>
      new OpenAIChat(name, { base_url: url, model: "m", api_key_env: keyEnv, rate_limit: { max: 2, per: 3600 } });
    const chain = new JobChain(
      [
        defineGraph("first", limited("a", KEY_ENV)),
        defineGraph("second", limited("b", KEY_ENV, `${base}/`)),
        defineGraph("other_key", limited("c", OTHER_KEY_ENV)),
      ],
      { logger },
    );
    const first = await Promise.all([chain.execute({ prompt: "1" }, { graph: "first" }), chain.execute({ prompt: "2" }, { graph: "first" })]);
    expect(first.map((o) => o.status)).toEqual(["succeeded", "succeeded"]);
    expect(server.requests).toHaveLength(2);

    // Another job, same base URL (the trailing slash does not matter) and key: its budget is used up. It waits
    // for a token until its task deadline and never sends the request.
    const blocked = await chain.execute({ prompt: "3" }, { graph: "second", timeout: 0.3 });
    expect(blocked).toMatchObject({ status: "failed", error: { job: "b", message: "task timed out after 0.3s" } });
    expect(server.requests).toHaveLength(2);

    // A job with another key variable has a limiter of its own.
    const other = await chain.execute({ prompt: "4" }, { graph: "other_key" });
    expect(other.status).toBe("succeeded");
    expect(server.requests.map((r) => (JSON.parse(r.body) as { messages: { content: string }[] }).messages[0]!.content)).toEqual([
      "1",
      "2",
      "4",
    ]);
    await chain.markInputCompleted();
  });
});
