import { afterEach, describe, expect, it } from "vitest";
import { serveOperatorHttp } from "./http.ts";
import { Registry } from "./metrics.ts";
import { parseExposition } from "../../test/helpers/prometheus.ts";

describe("serveOperatorHttp", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it("serves /metrics as parseable Prometheus text and answers /healthz and /readyz with 200 or 503", async () => {
    const registry = new Registry();
    registry.counter("things_total", "Things.", ["kind"]).inc({ kind: "a" }, 3);
    let healthy = true;
    let ready = false;
    const srv = await serveOperatorHttp({ port: 0, host: "127.0.0.1", registry, healthy: () => healthy, ready: () => ready });
    close = srv.close;
    const base = `http://127.0.0.1:${srv.port}`;
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(parseExposition(await metrics.text()).get("things_total")!.samples[0]!.value).toBe(3);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    ready = true;
    healthy = false;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(503);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: "POST" })).status).toBe(405);
  });

  it("answers 503 when a check throws", async () => {
    const srv = await serveOperatorHttp({
      port: 0,
      host: "127.0.0.1",
      registry: new Registry(),
      healthy: () => {
        throw new Error("x");
      },
      ready: () => true,
    });
    close = srv.close;
    expect((await fetch(`http://127.0.0.1:${srv.port}/healthz`)).status).toBe(503);
  });
});
