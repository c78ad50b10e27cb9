// The informer's state machine against a scripted client (list pages and watch streams the test controls) on a
// fake clock. The suite against a real API server is test/operator/kube-informer.test.ts.
import { describe, expect, it } from "vitest";
import type { KubeClient, ListOptions, WatchEvent, WatchOptions } from "./client.ts";
import { KubeApiError } from "./errors.ts";
import { Informer } from "./informer.ts";
import { CORE, type KubeObject } from "./resources.ts";
import { FakeClock, settle } from "../../test/helpers/fake-clock.ts";

const cm = (name: string, rv: string): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ns", resourceVersion: rv } });

interface Watch {
  options: WatchOptions;
  emit(e: WatchEvent<KubeObject>): void;
  end(): void;
  fail(e: unknown): void;
  aborted: boolean;
}

class ScriptedClient {
  readonly namespace = "ns";
  readonly stats = { requests: 0, throttled: 0, throttleWaitMs: 0, maxThrottleWaitMs: 0 };
  /** The objects the next list returns, and its resourceVersion. */
  objects: KubeObject[] = [];
  listRv = "10";
  listFailures = 0;
  lists: ListOptions[] = [];
  watches: Watch[] = [];
  async list(_t: unknown, options: ListOptions = {}) {
    this.lists.push(options);
    if (this.listFailures > 0) {
      this.listFailures--;
      throw new KubeApiError("list failed", { status: 500, request: "GET x" });
    }
    const size = options.limit ?? 500;
    const start = options.continue ? Number(options.continue) : 0;
    const items = this.objects.slice(start, start + size).map((o) => structuredClone(o));
    const more = start + size < this.objects.length;
    return { items, resourceVersion: this.listRv, ...(more ? { continue: String(start + size) } : {}) };
  }
  watch(_t: unknown, options: WatchOptions, onEvent: (e: WatchEvent<KubeObject>) => void, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const w: Watch = {
        options,
        aborted: false,
        emit: (e) => onEvent(structuredClone(e)),
        end: () => resolve(),
        fail: (e) => reject(e),
      };
      signal.addEventListener("abort", () => {
        w.aborted = true;
        resolve();
      });
      this.watches.push(w);
    });
  }
  get lastWatch(): Watch {
    return this.watches[this.watches.length - 1]!;
  }
}

function setup(options: ConstructorParameters<typeof Informer>[2] = {}) {
  const clock = new FakeClock();
  const client = new ScriptedClient();
  const inf = new Informer<KubeObject>(client as unknown as KubeClient, CORE.configMaps, { clock, backoffInitialMs: 100, backoffMaxMs: 1000, ...options });
  const log: string[] = [];
  inf.onAdd((o) => log.push(`add ${o.metadata.name}@${o.metadata.resourceVersion}`));
  inf.onUpdate((a, b) => log.push(`update ${b.metadata.name}@${a.metadata.resourceVersion}->${b.metadata.resourceVersion}`));
  inf.onDelete((o) => log.push(`delete ${o.metadata.name}`));
  return { clock, client, inf, log };
}

describe("Informer (scripted client)", () => {
  it("lists every page, then watches from the list's resourceVersion with bookmarks and a jittered timeout", async () => {
    const { client, inf, log } = setup({ pageSize: 2, watchTimeoutSeconds: 100 });
    client.objects = [cm("a", "1"), cm("b", "2"), cm("c", "3")];
    await inf.start();
    expect(client.lists.map((l) => l.continue)).toEqual([undefined, "2"]);
    expect(log).toEqual(["add a@1", "add b@2", "add c@3"]);
    await settle();
    const w = client.lastWatch;
    expect(w.options.resourceVersion).toBe("10");
    expect(w.options.allowWatchBookmarks).toBe(true);
    expect(w.options.timeoutSeconds).toBeGreaterThanOrEqual(100);
    expect(w.options.timeoutSeconds).toBeLessThanOrEqual(150);
    inf.stop();
  });

  it("applies events, advances the resourceVersion on bookmarks and resumes from it when the server ends the watch", async () => {
    const { client, inf, log } = setup();
    client.objects = [cm("a", "1")];
    await inf.start();
    await settle();
    client.lastWatch.emit({ type: "ADDED", object: cm("b", "11") });
    client.lastWatch.emit({ type: "MODIFIED", object: cm("a", "12") });
    client.lastWatch.emit({ type: "DELETED", object: cm("b", "13") });
    client.lastWatch.emit({ type: "BOOKMARK", object: { metadata: { name: "", resourceVersion: "20" } } });
    expect(inf.lastResourceVersion).toBe("20");
    expect(log).toEqual(["add a@1", "add b@11", "update a@1->12", "delete b"]);
    client.lastWatch.end();
    await settle();
    expect(client.watches).toHaveLength(2);
    expect(client.lastWatch.options.resourceVersion).toBe("20");
    expect(client.lists).toHaveLength(1);
    inf.stop();
  });

  it("relists on an ERROR event with code 410 and on an HTTP 410, diffing against the store", async () => {
    const { client, inf, log } = setup();
    client.objects = [cm("keep", "1"), cm("same", "2"), cm("gone", "3")];
    await inf.start();
    await settle();
    log.length = 0;
    client.objects = [cm("keep", "5"), cm("same", "2"), cm("new", "6")];
    client.listRv = "30";
    client.lastWatch.emit({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired", message: "too old resource version" } as never });
    await settle();
    expect(client.lists).toHaveLength(2);
    expect(log).toEqual(["update keep@1->5", "add new@6", "delete gone"]);
    expect(client.lastWatch.options.resourceVersion).toBe("30");
    expect(inf.counts.gone).toBe(1);

    client.objects = [cm("keep", "5")];
    client.lastWatch.fail(new KubeApiError("gone", { status: 410, reason: "Gone", request: "GET x" }));
    await settle();
    expect(client.lists).toHaveLength(3);
    expect(inf.list().map((o) => o.metadata.name).sort()).toEqual(["keep"]);
    inf.stop();
  });

  it("backs off exponentially after errors, never gives up, and resumes from the same resourceVersion", async () => {
    const { clock, client, inf } = setup();
    client.listFailures = 2;
    const started = inf.start();
    await settle();
    expect(client.lists).toHaveLength(1);
    await clock.advance(100); // first backoff: 50–100 ms
    expect(client.lists).toHaveLength(2);
    await clock.advance(200);
    expect(client.lists).toHaveLength(3);
    await started;
    for (let i = 0; i < 6; i++) {
      client.lastWatch.fail(new KubeApiError("reset", { status: 0, request: "GET x" }));
      await settle();
      const n = client.watches.length;
      await clock.advance(1000); // capped at 1000 ms in this setup
      expect(client.watches.length).toBe(n + 1);
    }
    expect(client.watches.every((w) => w.options.resourceVersion === "10")).toBe(true);
    expect(client.lists).toHaveLength(3);
    inf.stop();
  });

  it("restarts a watch that delivers nothing for watchdogMs, and not one that keeps talking", async () => {
    const { clock, client, inf } = setup({ watchdogMs: 1000 });
    await inf.start();
    await settle();
    const first = client.lastWatch;
    for (let i = 0; i < 5; i++) {
      await clock.advance(600);
      first.emit({ type: "BOOKMARK", object: { metadata: { name: "", resourceVersion: String(20 + i) } } });
    }
    expect(client.watches).toHaveLength(1);
    await clock.advance(1000);
    expect(first.aborted).toBe(true);
    expect(client.watches).toHaveLength(2);
    expect(client.lastWatch.options.resourceVersion).toBe("24");
    expect(inf.counts.watchdogRestarts).toBe(1);
    inf.stop();
  });

  it("resync re-delivers every object as an update of itself", async () => {
    const { clock, client, inf, log } = setup({ resyncMs: 5000 });
    client.objects = [cm("a", "1"), cm("b", "2")];
    await inf.start();
    log.length = 0;
    await clock.advance(5000);
    expect(log.sort()).toEqual(["update a@1->1", "update b@2->2"]);
    inf.stop();
  });

  it("keeps a handler's exception away from the store and the other handlers", async () => {
    const { client, inf, log } = setup();
    inf.onAdd(() => {
      throw new Error("handler bug");
    });
    client.objects = [cm("a", "1")];
    await inf.start();
    await settle();
    client.lastWatch.emit({ type: "ADDED", object: cm("b", "11") });
    expect(log).toEqual(["add a@1", "add b@11"]);
    expect(inf.list()).toHaveLength(2);
    inf.stop();
  });
});
