// A small Kubernetes REST client over Node's http/https: CRUD, merge patch, server-side apply, the status
// subresource and single watch requests, with a client-side token bucket (like client-go's --qps/--burst) in
// front of every request but watches. Watches get no read timeout here: the informer's watchdog decides when a
// quiet stream is dead, and timeoutSeconds makes the server end each one.
import http from "node:http";
import https from "node:https";
import { RateLimiter, systemClock, type Clock } from "../../core/limits.ts";
import type { KubeConfigHandle } from "./config.ts";
import { KubeApiError, type KubeStatus } from "./errors.ts";
import { DURATION_BUCKETS, type Counter, type Histogram, type Registry } from "./metrics.ts";
import { apiVersionOf, resourcePath, type KubeObject, type ResourceType } from "./resources.ts";

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export interface WatchOptions extends ListOptions {
  resourceVersion: string;
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
}

export interface ClientStats {
  /** Requests sent (watches included). */
  requests: number;
  /** Requests that waited for a token of the client-side rate limiter. */
  throttled: number;
  /** Total and longest time requests waited for a token, ms. */
  throttleWaitMs: number;
  maxThrottleWaitMs: number;
}

export interface KubeClient {
  /** The configuration's default namespace. */
  readonly namespace: string;
  readonly stats: Readonly<ClientStats>;
  get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string): Promise<T | undefined>;
  list<T extends KubeObject>(type: ResourceType, options?: ListOptions): Promise<{ items: T[]; resourceVersion: string; continue?: string }>;
  create<T extends KubeObject>(type: ResourceType, obj: T, options?: { dryRun?: boolean; fieldManager?: string }): Promise<T>;
  replace<T extends KubeObject>(type: ResourceType, obj: T, options?: { subresource?: "status"; dryRun?: boolean; fieldManager?: string }): Promise<T>;
  mergePatch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    options?: { subresource?: "status"; dryRun?: boolean; fieldManager?: string },
  ): Promise<T>;
  apply<T extends KubeObject>(type: ResourceType, obj: T, options: { fieldManager: string; force?: boolean; subresource?: "status"; dryRun?: boolean }): Promise<T>;
  delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    options?: { propagationPolicy?: "Foreground" | "Background" | "Orphan"; uid?: string; resourceVersion?: string; dryRun?: boolean },
  ): Promise<boolean>;
  /**
   * One watch request: events go to `onEvent` in order (an ERROR event carries the Status object). Resolves when
   * the server ends the stream or `signal` aborts it; rejects with KubeApiError on an HTTP error or a broken
   * connection.
   */
  watch<T extends KubeObject>(type: ResourceType, options: WatchOptions, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void>;
}

export interface KubeClientOptions {
  /** Sustained requests per second (default 20). Watches are not limited. */
  qps?: number;
  /** Requests allowed at once above the sustained rate (default 30). */
  burst?: number;
  userAgent?: string;
  metrics?: Registry;
  /** Timeout of a non-watch request, ms (default 30000). */
  requestTimeoutMs?: number;
  clock?: Clock;
}

interface Request {
  verb: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
}

function queryString(q: Request["query"]): string {
  if (!q) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== "") parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

function listQuery(o: ListOptions): Request["query"] {
  return {
    labelSelector: o.labelSelector,
    fieldSelector: o.fieldSelector,
    limit: o.limit,
    continue: o.continue,
    resourceVersion: o.resourceVersion,
  };
}

/** The object with apiVersion and kind set from its type when it lacks them (custom resources require both). */
function withTypeMeta<T extends KubeObject>(type: ResourceType, obj: T): T {
  return { apiVersion: obj.apiVersion ?? apiVersionOf(type), kind: obj.kind ?? type.kind, ...obj };
}

function nameOf(obj: KubeObject, what: string): string {
  const name = obj?.metadata?.name;
  if (!name) throw new TypeError(`${what}: the object has no metadata.name`);
  return name;
}

class HttpKubeClient implements KubeClient {
  readonly namespace: string;
  readonly stats: ClientStats = { requests: 0, throttled: 0, throttleWaitMs: 0, maxThrottleWaitMs: 0 };
  private readonly config: KubeConfigHandle;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly limiter: RateLimiter;
  private readonly clock: Clock;
  private readonly userAgent: string;
  private readonly timeoutMs: number;
  private readonly requestsTotal: Counter | undefined;
  private readonly requestSeconds: Histogram | undefined;
  private readonly throttleSeconds: Histogram | undefined;

  constructor(config: KubeConfigHandle, options: KubeClientOptions) {
    this.config = config;
    this.namespace = config.namespace;
    const qps = options.qps ?? 20;
    const burst = options.burst ?? 30;
    if (!(qps > 0) || !(burst >= 1)) throw new RangeError(`qps must be > 0 and burst ≥ 1 (got qps=${qps}, burst=${burst})`);
    this.clock = options.clock ?? systemClock;
    // RateLimiter admits `max` per `per` seconds with bursts of `max`: qps = burst / per.
    this.limiter = new RateLimiter(burst, burst / qps, this.clock);
    this.userAgent = options.userAgent ?? "jobchain-operator";
    this.timeoutMs = options.requestTimeoutMs ?? 30_000;
    const secure = config.server.startsWith("https:");
    this.transport = secure ? https : http;
    this.agent = secure
      ? new https.Agent({ keepAlive: true, keepAliveMsecs: 30_000, ...config.tls })
      : new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000 });
    const m = options.metrics;
    this.requestsTotal = m?.counter("rest_client_requests_total", "Requests to the Kubernetes API by verb and HTTP code (0: no response).", ["verb", "code"]);
    this.requestSeconds = m?.histogram("rest_client_request_duration_seconds", "Latency of Kubernetes API requests (watches excluded).", DURATION_BUCKETS, ["verb"]);
    this.throttleSeconds = m?.histogram(
      "rest_client_rate_limiter_duration_seconds",
      "Time requests waited for the client-side rate limiter (qps/burst).",
      DURATION_BUCKETS,
    );
  }

  private async throttle(): Promise<void> {
    if (this.limiter.tryAcquire()) {
      this.throttleSeconds?.observe(undefined, 0);
      return;
    }
    const t0 = this.clock.now();
    await this.limiter.acquire();
    const waited = this.clock.now() - t0;
    this.stats.throttled++;
    this.stats.throttleWaitMs += waited;
    this.stats.maxThrottleWaitMs = Math.max(this.stats.maxThrottleWaitMs, waited);
    this.throttleSeconds?.observe(undefined, waited / 1000);
  }

  /** Opens a request and resolves with the response (headers received). */
  private async open(req: Request, signal: AbortSignal | undefined, timeoutMs: number | undefined): Promise<{ res: http.IncomingMessage; label: string }> {
    const label = `${req.verb} ${req.path}`;
    const headers: Record<string, string> = {
      ...(await this.config.authHeaders()),
      Accept: "application/json",
      "User-Agent": this.userAgent,
    };
    let payload: string | undefined;
    if (req.body !== undefined) {
      payload = JSON.stringify(req.body);
      headers["Content-Type"] = req.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    this.stats.requests++;
    const url = new URL(this.config.server + req.path + queryString(req.query));
    return new Promise((resolve, reject) => {
      const r = this.transport.request(
        url,
        { method: req.verb, headers, agent: this.agent, ...(signal ? { signal } : {}), ...(timeoutMs ? { timeout: timeoutMs } : {}) },
        (res) => resolve({ res, label }),
      );
      r.on("timeout", () => r.destroy(new Error(`no response within ${timeoutMs} ms`)));
      r.on("error", (e) => {
        this.requestsTotal?.inc({ verb: req.verb, code: "0" });
        reject(new KubeApiError(`${label}: ${e.message}`, { status: 0, request: label, cause: e }));
      });
      r.end(payload);
    });
  }

  private readBody(res: http.IncomingMessage, label: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      res.on("error", (e) => reject(new KubeApiError(`${label}: ${e.message}`, { status: 0, request: label, cause: e })));
      res.on("aborted", () => reject(new KubeApiError(`${label}: response aborted`, { status: 0, request: label })));
      res.on("close", () => {
        if (!res.complete) reject(new KubeApiError(`${label}: connection closed before the response ended`, { status: 0, request: label }));
      });
    });
  }

  /** A limited, timed request; resolves with the parsed JSON body, rejects with KubeApiError. */
  private async call<R>(req: Request): Promise<R> {
    await this.throttle();
    const t0 = this.clock.now();
    const { res, label } = await this.open(req, undefined, this.timeoutMs);
    const text = await this.readBody(res, label);
    const code = res.statusCode ?? 0;
    this.requestsTotal?.inc({ verb: req.verb, code: String(code) });
    this.requestSeconds?.observe({ verb: req.verb }, (this.clock.now() - t0) / 1000);
    if (code < 200 || code >= 300) throw KubeApiError.fromResponse(label, code, text);
    try {
      return (text ? JSON.parse(text) : undefined) as R;
    } catch (e) {
      throw new KubeApiError(`${label}: the response is not JSON: ${text.slice(0, 200)}`, { status: code, request: label, body: text, cause: e });
    }
  }

  private objectPath(type: ResourceType, obj: KubeObject, what: string, subresource?: string): string {
    return resourcePath(type, obj.metadata.namespace ?? (type.namespaced ? this.namespace : undefined), nameOf(obj, what), subresource);
  }

  private ns(type: ResourceType, namespace: string | undefined): string | undefined {
    return type.namespaced ? (namespace ?? this.namespace) : undefined;
  }

  async get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return await this.call<T>({ verb: "GET", path: resourcePath(type, this.ns(type, namespace), name) });
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  async list<T extends KubeObject>(type: ResourceType, options: ListOptions = {}): Promise<{ items: T[]; resourceVersion: string; continue?: string }> {
    const body = await this.call<{ items?: T[]; metadata?: { resourceVersion?: string; continue?: string } }>({
      verb: "GET",
      path: resourcePath(type, options.namespace),
      query: listQuery(options),
    });
    const items = body.items ?? [];
    // List items carry no kind/apiVersion; fill them in so objects look the same from list, get and watch.
    const apiVersion = apiVersionOf(type);
    for (const it of items) {
      it.apiVersion ??= apiVersion;
      it.kind ??= type.kind;
    }
    const out: { items: T[]; resourceVersion: string; continue?: string } = { items, resourceVersion: body.metadata?.resourceVersion ?? "" };
    if (body.metadata?.continue) out.continue = body.metadata.continue;
    return out;
  }

  create<T extends KubeObject>(type: ResourceType, obj: T, options: { dryRun?: boolean; fieldManager?: string } = {}): Promise<T> {
    const namespace = this.ns(type, obj.metadata.namespace);
    return this.call<T>({
      verb: "POST",
      path: resourcePath(type, namespace),
      query: { dryRun: options.dryRun ? "All" : undefined, fieldManager: options.fieldManager },
      body: withTypeMeta(type, obj),
    });
  }

  replace<T extends KubeObject>(type: ResourceType, obj: T, options: { subresource?: "status"; dryRun?: boolean; fieldManager?: string } = {}): Promise<T> {
    return this.call<T>({
      verb: "PUT",
      path: this.objectPath(type, obj, "replace", options.subresource),
      query: { dryRun: options.dryRun ? "All" : undefined, fieldManager: options.fieldManager },
      body: withTypeMeta(type, obj),
    });
  }

  mergePatch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    options: { subresource?: "status"; dryRun?: boolean; fieldManager?: string } = {},
  ): Promise<T> {
    return this.call<T>({
      verb: "PATCH",
      path: resourcePath(type, this.ns(type, namespace), name, options.subresource),
      query: { dryRun: options.dryRun ? "All" : undefined, fieldManager: options.fieldManager },
      body: patch,
      contentType: "application/merge-patch+json",
    });
  }

  apply<T extends KubeObject>(type: ResourceType, obj: T, options: { fieldManager: string; force?: boolean; subresource?: "status"; dryRun?: boolean }): Promise<T> {
    if (!options.fieldManager) throw new TypeError("apply: fieldManager is required for server-side apply");
    return this.call<T>({
      verb: "PATCH",
      path: this.objectPath(type, obj, "apply", options.subresource),
      query: { fieldManager: options.fieldManager, force: options.force ? "true" : undefined, dryRun: options.dryRun ? "All" : undefined },
      // JSON is YAML: the apply patch type accepts it.
      body: withTypeMeta(type, obj),
      contentType: "application/apply-patch+yaml",
    });
  }

  async delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    options: { propagationPolicy?: "Foreground" | "Background" | "Orphan"; uid?: string; resourceVersion?: string; dryRun?: boolean } = {},
  ): Promise<boolean> {
    const preconditions: Record<string, string> = {};
    if (options.uid) preconditions.uid = options.uid;
    if (options.resourceVersion) preconditions.resourceVersion = options.resourceVersion;
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (options.propagationPolicy) body.propagationPolicy = options.propagationPolicy;
    if (Object.keys(preconditions).length) body.preconditions = preconditions;
    if (options.dryRun) body.dryRun = ["All"];
    try {
      await this.call({ verb: "DELETE", path: resourcePath(type, this.ns(type, namespace), name), body });
      return true;
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return false;
      throw e;
    }
  }

  async watch<T extends KubeObject>(type: ResourceType, options: WatchOptions, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const req: Request = {
      verb: "GET",
      path: resourcePath(type, options.namespace),
      query: {
        ...listQuery({ ...options, limit: undefined, continue: undefined } as ListOptions),
        watch: "true",
        allowWatchBookmarks: options.allowWatchBookmarks ? "true" : undefined,
        timeoutSeconds: options.timeoutSeconds,
      },
    };
    let res: http.IncomingMessage;
    let label: string;
    try {
      ({ res, label } = await this.open(req, signal, undefined));
    } catch (e) {
      if (signal.aborted) return;
      throw e;
    }
    const code = res.statusCode ?? 0;
    this.requestsTotal?.inc({ verb: "WATCH", code: String(code) });
    if (code !== 200) {
      const text = await this.readBody(res, label).catch(() => "");
      throw KubeApiError.fromResponse(label, code, text);
    }
    await new Promise<void>((resolve, reject) => {
      let buffered = "";
      let failed = false;
      const fail = (e: KubeApiError): void => {
        if (failed) return;
        failed = true;
        res.destroy();
        if (signal.aborted) resolve();
        else reject(e);
      };
      const line = (raw: string): void => {
        if (!raw.trim()) return;
        let ev: WatchEvent<T>;
        try {
          ev = JSON.parse(raw) as WatchEvent<T>;
        } catch (e) {
          // A broken line means a broken stream: end this watch rather than skip an event silently.
          fail(new KubeApiError(`${label}: malformed watch event: ${raw.slice(0, 200)}`, { status: 0, request: label, cause: e }));
          return;
        }
        onEvent(ev);
      };
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (failed) return;
        buffered += chunk;
        let i: number;
        while (!failed && (i = buffered.indexOf("\n")) >= 0) {
          const raw = buffered.slice(0, i);
          buffered = buffered.slice(i + 1);
          try {
            line(raw);
          } catch (e) {
            failed = true;
            res.destroy();
            reject(e);
            return;
          }
        }
      });
      res.on("end", () => {
        if (failed) return;
        if (buffered.trim()) line(buffered);
        if (!failed) resolve();
      });
      const broken = (why: string, cause?: unknown) => () => fail(new KubeApiError(`${label}: ${why}`, { status: 0, request: label, cause }));
      res.on("aborted", broken("watch stream aborted"));
      res.on("error", (e) => fail(new KubeApiError(`${label}: ${e.message}`, { status: 0, request: label, cause: e })));
      res.on("close", () => {
        if (!failed && !res.complete) broken("watch stream closed before its end")();
      });
    });
  }
}

/** A client for the configuration's API server. */
export function createKubeClient(config: KubeConfigHandle, options: KubeClientOptions = {}): KubeClient {
  return new HttpKubeClient(config, options);
}

/** The Status object of a watch ERROR event, or undefined for any other event. */
export function watchErrorStatus(e: WatchEvent<unknown>): KubeStatus | undefined {
  return e.type === "ERROR" ? ((e.object ?? {}) as KubeStatus) : undefined;
}
