import { describe, expect, it } from "vitest";
import { KubeApiError } from "./errors.ts";
import { Registry } from "./metrics.ts";
import { WorkQueue } from "./queue.ts";
import { FakeClock } from "../../test/helpers/fake-clock.ts";
import { runWorkers } from "./workers.ts";

const tick = (ms = 1): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("runWorkers", () => {
  it("never processes one key in two workers at once, and processes every key added after its last start", async () => {
    const q = new WorkQueue({ baseDelayMs: 1 });
    const inFlight = new Set<string>();
    let overlaps = 0;
    let maxParallel = 0;
    const processedVersion = new Map<string, number>();
    const version = new Map<string, number>();
    const done = runWorkers(q, 8, async (key) => {
      if (inFlight.has(key)) overlaps++;
      inFlight.add(key);
      maxParallel = Math.max(maxParallel, inFlight.size);
      const seen = version.get(key) ?? 0;
      await tick(Math.random() * 3);
      processedVersion.set(key, seen);
      inFlight.delete(key);
    });
    // 10 keys, each bumped 30 times while workers run: re-adds during processing must not run concurrently.
    for (let round = 0; round < 30; round++) {
      for (let k = 0; k < 10; k++) {
        const key = `k${k}`;
        version.set(key, (version.get(key) ?? 0) + 1);
        q.add(key);
      }
      await tick(1);
    }
    while (q.length > 0 || q.processingLength > 0) await tick(5);
    q.shutdown();
    await done;
    expect(overlaps).toBe(0);
    expect(maxParallel).toBeGreaterThan(1);
    // Level-triggered: every key was reconciled after its last change.
    for (let k = 0; k < 10; k++) expect(processedVersion.get(`k${k}`)).toBe(30);
  });

  it("requeues with backoff on error, immediately on a 409 conflict without growing the backoff, forgets on success", async () => {
    const clock = new FakeClock();
    const metrics = new Registry();
    const q = new WorkQueue({ name: "c", clock, baseDelayMs: 100, qps: 1e6, burst: 1e6 });
    const outcomes: ("error" | "conflict" | "ok")[] = ["error", "error", "conflict", "ok"];
    const requeues: number[] = [];
    const errors: unknown[] = [];
    const done = runWorkers(
      q,
      2,
      async (key) => {
        requeues.push(q.numRequeues(key));
        const o = outcomes.shift();
        if (o === "error") throw new Error("boom");
        if (o === "conflict") throw new KubeApiError("conflict", { status: 409, reason: "Conflict", request: "PUT x" });
        return { requeueAfterMs: 1000 };
      },
      { metrics, controller: "things", onError: (_k, e) => errors.push(e) },
    );
    q.add("a");
    await clock.advance(0);
    expect(requeues).toEqual([0]);
    await clock.advance(100); // first backoff: 100 ms
    expect(requeues).toEqual([0, 1]);
    await clock.advance(199);
    expect(requeues).toEqual([0, 1]);
    await clock.advance(1); // second backoff: 200 ms; then the conflict comes back at once, failure count unchanged
    expect(requeues).toEqual([0, 1, 2, 2]);
    expect(q.numRequeues("a")).toBe(0); // success forgot it
    expect(q.delayedLength).toBe(1); // requeueAfterMs
    await clock.advance(1000);
    expect(requeues.length).toBe(5);
    q.shutdown();
    await done;
    expect(errors).toHaveLength(3);
    const text = metrics.render();
    expect(text).toContain('controller_runtime_reconcile_total{controller="things",result="error"} 2');
    expect(text).toContain('controller_runtime_reconcile_total{controller="things",result="requeue"} 1');
    expect(text).toContain('controller_runtime_reconcile_total{controller="things",result="requeue_after"} 2');
    expect(text).toContain('controller_runtime_reconcile_errors_total{controller="things"} 2');
    expect(text).toContain('controller_runtime_reconcile_time_seconds_count{controller="things"} 5');
  });

  it("resolves once the queue shuts down and the key in progress has finished", async () => {
    const q = new WorkQueue();
    let finished = false;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const done = runWorkers(q, 3, async () => {
      await gate;
      finished = true;
    });
    q.add("a");
    await tick(5);
    q.shutdown();
    let resolved = false;
    void done.then(() => (resolved = true));
    await tick(5);
    expect(resolved).toBe(false);
    release();
    await done;
    expect(finished).toBe(true);
  });
});
