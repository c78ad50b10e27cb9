// A minimal JSON client for the test control plane: raw requests with any Accept header (the Table form), dry runs
// and field validation, and the apiserver's Status bodies as they are (the messages are what users see).
import https from "node:https";
import type { ControlPlane } from "../harness/controlplane.ts";

export interface KubeResponse {
  status: number;
  body: any;
}

export interface KubeRequestOptions {
  accept?: string;
  contentType?: string;
  token?: string;
}

export function kubeHttp(cp: ControlPlane) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 4, ca: cp.caCertPem });
  function request(method: string, path: string, body?: unknown, opts: KubeRequestOptions = {}): Promise<KubeResponse> {
    const url = new URL(path, cp.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          agent,
          timeout: 60_000,
          headers: {
            authorization: `Bearer ${opts.token ?? cp.adminToken}`,
            accept: opts.accept ?? "application/json",
            ...(payload !== undefined ? { "content-type": opts.contentType ?? "application/json", "content-length": Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => {
            let parsed: unknown = text;
            try {
              parsed = text === "" ? undefined : JSON.parse(text);
            } catch {
              // not JSON: keep the text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in 60 s`)));
      req.on("error", reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }
  return {
    request,
    get: (path: string, opts?: KubeRequestOptions) => request("GET", path, undefined, opts),
    post: (path: string, body: unknown, opts?: KubeRequestOptions) => request("POST", path, body, opts),
    put: (path: string, body: unknown, opts?: KubeRequestOptions) => request("PUT", path, body, opts),
    mergePatch: (path: string, body: unknown, opts?: KubeRequestOptions) =>
      request("PATCH", path, body, { ...opts, contentType: "application/merge-patch+json" }),
    delete: (path: string, opts?: KubeRequestOptions) => request("DELETE", path, undefined, opts),
    close: () => agent.destroy(),
  };
}
export type KubeHttp = ReturnType<typeof kubeHttp>;

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs` with `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
