// The operator's HTTP endpoints: /metrics (Prometheus text), /healthz (liveness) and /readyz (readiness), each
// 503 when its check says no.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "./metrics.ts";

export interface OperatorHttpOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  registry: Registry;
  healthy: () => boolean;
  ready: () => boolean;
}

export function serveOperatorHttp(options: OperatorHttpOptions): Promise<{ port: number; close(): Promise<void> }> {
  const check = (res: import("node:http").ServerResponse, fn: () => boolean): void => {
    let ok = false;
    try {
      ok = fn();
    } catch {
      ok = false;
    }
    res.writeHead(ok ? 200 : 503, { "content-type": "text/plain; charset=utf-8" }).end(ok ? "ok\n" : "not ok\n");
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
    } else if (path === "/metrics") {
      let body: string;
      try {
        body = options.registry.render();
      } catch (e) {
        res.writeHead(500, { "content-type": "text/plain" }).end(`cannot render metrics: ${(e as Error).message}\n`);
        return;
      }
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(body);
    } else if (path === "/healthz") {
      check(res, options.healthy);
    } else if (path === "/readyz") {
      check(res, options.ready);
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
