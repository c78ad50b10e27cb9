import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  JobChain,
  createLogger,
  defineGraph,
  fn,
  instantiate,
  loadConfigObject,
  serial,
  type NodeOptions,
  type SubmitOptions,
  type TaskOutcome,
} from "../index.ts";
import { sendJson, sendText, startServer, type Handler, type TestServer } from "../test/helpers/http-server.ts";
import { HttpFetch } from "./index.ts";

const logger = createLogger({ level: "silent" });

let server: TestServer;
let handler: Handler;

beforeEach(async () => {
  handler = (_req, res) => sendText(res, 500, "no handler set");
  server = await startServer((req, res, n) => handler(req, res, n));
});

afterEach(async () => {
  await server.close();
});

/** Runs one task through a one-node graph with an HttpFetch job named `fetch`. */
async function runFetch(
  properties: Record<string, unknown>,
  task: unknown = {},
  options: { node?: NodeOptions[string]; submit?: SubmitOptions } = {},
): Promise<TaskOutcome> {
  const chain = new JobChain([defineGraph("http", new HttpFetch("fetch", properties), options.node ? { fetch: options.node } : {})], { logger });
  try {
    return await chain.execute(task, options.submit);
  } finally {
    await chain.markInputCompleted();
  }
}

function succeeded(o: TaskOutcome): Record<string, unknown> {
  if (o.status !== "succeeded") throw new Error(`task failed: ${JSON.stringify(o.error)}`);
  return o.result;
}

describe("HttpFetch", () => {
  it("GETs a URL and parses a JSON body", async () => {
    handler = (_req, res) => sendJson(res, 200, { items: [1, 2], name: "x" }, { "x-extra": "yes" });
    const out = succeeded(await runFetch({ url: `${server.url}/data` }));
    expect(out.url).toBe(`${server.url}/data`);
    expect(out.status).toBe(200);
    expect(out.body).toEqual({ items: [1, 2], name: "x" });
    expect(out.headers).toMatchObject({ "content-type": "application/json", "x-extra": "yes" });
    expect(Object.keys(out).sort()).toEqual(["body", "headers", "status", "url"]);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ method: "GET", url: "/data", body: "" });
  });

  it("returns a text body as a string", async () => {
    handler = (_req, res) => sendText(res, 200, "héllo\nworld");
    const out = succeeded(await runFetch({ url: `${server.url}/t` }));
    expect(out.body).toBe("héllo\nworld");
    expect(out.status).toBe(200);
  });

  it("follows `response`: json parses any content type, text keeps JSON as a string", async () => {
    handler = (req, res) => (req.url === "/as-text" ? sendJson(res, 200, { a: 1 }) : sendText(res, 200, '{"b":2}'));
    expect(succeeded(await runFetch({ url: `${server.url}/as-json`, response: "json" })).body).toEqual({ b: 2 });
    expect(succeeded(await runFetch({ url: `${server.url}/as-text`, response: "text" })).body).toBe('{"a":1}');
  });

  it("fills {{task.x}} and {{x}} templates in the URL; defaults to the task's url", async () => {
    handler = (_req, res) => sendJson(res, 200, { ok: true });
    const url = `${server.url}/items/{{task.item}}?q={{ q }}&missing={{task.nope}}`;
    const out = succeeded(await runFetch({ url }, { item: 42, q: "red" }));
    expect(out.url).toBe(`${server.url}/items/42?q=red&missing=`);
    succeeded(await runFetch({}, { url: `${server.url}/from-task` }));
    expect(server.requests.map((r) => r.url)).toEqual(["/items/42?q=red&missing=", "/from-task"]);
  });

  it("fills {{inputs.job.field}} from a predecessor's output", async () => {
    handler = (_req, res) => sendJson(res, 200, {});
    const chain = new JobChain(
      [defineGraph("g", serial(fn("lookup", () => ({ path: "users/7" })), new HttpFetch("fetch", { url: `${server.url}/{{inputs.lookup.path}}` })))],
      { logger },
    );
    expect((await chain.submitTask({})).url).toBe(`${server.url}/users/7`);
    await chain.markInputCompleted();
    expect(server.requests.map((r) => r.url)).toEqual(["/users/7"]);
  });

  it("POSTs a JSON body with templated headers", async () => {
    handler = (req, res) => sendJson(res, 201, { received: JSON.parse(req.body) as unknown });
    const out = succeeded(
      await runFetch(
        {
          url: `${server.url}/submit`,
          method: "post",
          headers: { authorization: "Bearer {{task.token}}", "x-request": "r-{{task.n}}" },
          body: { a: 1, list: [true, null, "s"] },
        },
        { token: "sekret", n: 3 },
      ),
    );
    expect(out.status).toBe(201);
    expect(out.body).toEqual({ received: { a: 1, list: [true, null, "s"] } });
    const req = server.requests[0]!;
    expect(req.method).toBe("POST");
    expect(req.headers["content-type"]).toBe("application/json");
    expect(req.headers.authorization).toBe("Bearer sekret");
    expect(req.headers["x-request"]).toBe("r-3");
    expect(JSON.parse(req.body)).toEqual({ a: 1, list: [true, null, "s"] });
  });

  it("keeps a content type given in any letter case instead of adding a second one", async () => {
    handler = (_req, res) => sendJson(res, 200, {});
    succeeded(
      await runFetch({ url: `${server.url}/x`, method: "PUT", headers: { "Content-Type": "application/vnd.api+json" }, body: { a: 1 } }),
    );
    expect(server.requests[0]!.headers["content-type"]).toBe("application/vnd.api+json");
    expect(server.requests[0]!.body).toBe('{"a":1}');
  });

  it("sends a string body rendered as a template, as is", async () => {
    handler = (_req, res) => sendText(res, 200, "ok");
    succeeded(await runFetch({ url: `${server.url}/s`, method: "POST", body: "name={{task.name}}" }, { name: "ann" }));
    expect(server.requests[0]!.body).toBe("name=ann");
    expect(server.requests[0]!.headers["content-type"]).toBe("text/plain;charset=UTF-8");
  });

  it("fails the job on a 404; the error names the method, URL and status", async () => {
    handler = (_req, res) => sendText(res, 404, "no such thing");
    const o = await runFetch({ url: `${server.url}/missing` });
    expect(o.status).toBe("failed");
    if (o.status !== "failed") return;
    expect(o.error).toEqual({ job: "fetch", message: `HttpFetch: GET ${server.url}/missing returned 404: no such thing`, attempt: 1 });
  });

  it("returns the response of a 404 when fail_on_status is false", async () => {
    handler = (_req, res) => sendJson(res, 404, { error: "gone" });
    const out = succeeded(await runFetch({ url: `${server.url}/missing`, fail_on_status: false }));
    expect(out.status).toBe(404);
    expect(out.body).toEqual({ error: "gone" });
  });

  it("fails when the response is larger than max_bytes; exactly max_bytes is fine", async () => {
    handler = (_req, res) => sendText(res, 200, "x".repeat(2000));
    const o = await runFetch({ url: `${server.url}/big`, max_bytes: 1999 });
    expect(o).toMatchObject({ status: "failed", error: { job: "fetch", message: "HttpFetch: response larger than max_bytes (1999)" } });
    expect(succeeded(await runFetch({ url: `${server.url}/big`, max_bytes: 2000 })).body).toBe("x".repeat(2000));
  });

  it("refuses a URL that is not http(s) without sending anything", async () => {
    const o = await runFetch({ url: "file:///etc/passwd" });
    expect(o).toMatchObject({ status: "failed", error: { job: "fetch", message: "HttpFetch: not an http(s) URL: 'file:///etc/passwd'" } });
    expect(server.requests).toHaveLength(0);
  });

  it("retries through the job policy of a configuration: two 503s, then success, three requests", async () => {
    handler = (_req, res, n) => (n <= 2 ? sendText(res, 503, `busy ${n}`) : sendJson(res, 200, { n }));
    const { config, registry } = await loadConfigObject({
      jobs: { fetch: { type: "HttpFetch", properties: { url: `${server.url}/flaky` }, retry: { attempts: 3, backoff: 0 } } },
      graphs: { g: { fetch: {} } },
    });
    const chain = new JobChain(instantiate(config, registry), { logger });
    const result = await chain.submitTask({});
    await chain.markInputCompleted();
    expect(result.body).toEqual({ n: 3 });
    expect(server.requests).toHaveLength(3);
  });

  it("retries through a code-defined policy and fails after the last attempt, naming it", async () => {
    handler = (_req, res, n) => sendText(res, 503, `busy ${n}`);
    const o = await runFetch({ url: `${server.url}/down` }, {}, { node: { retry: { attempts: 3, backoff: 0 } } });
    expect(o).toMatchObject({
      status: "failed",
      error: { job: "fetch", message: `HttpFetch: GET ${server.url}/down returned 503: busy 3`, attempt: 3 },
    });
    expect(server.requests).toHaveLength(3);
  });

  it("aborts the request when the task is cancelled", async () => {
    const arrived = Promise.withResolvers<void>();
    const closed = Promise.withResolvers<void>();
    handler = (_req, res) => {
      res.on("close", () => closed.resolve());
      arrived.resolve(); // never answers
    };
    const ac = new AbortController();
    const outcome = runFetch({ url: `${server.url}/hang` }, {}, { submit: { signal: ac.signal } });
    await arrived.promise;
    ac.abort(new Error("stop fetching"));
    expect(await outcome).toMatchObject({ status: "failed", error: { job: "fetch", message: "stop fetching" } });
    // The client closed the connection: the request is not left hanging.
    await closed.promise;
    expect(server.requests).toHaveLength(1);
  });
});
