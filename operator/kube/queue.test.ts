import { describe, expect, it } from "vitest";
import { Registry } from "./metrics.ts";
import { WorkQueue } from "./queue.ts";
import { FakeClock, settle } from "../../test/helpers/fake-clock.ts";

describe("WorkQueue", () => {
  it("hands out keys in FIFO order and de-duplicates a key that is waiting", async () => {
    const q = new WorkQueue();
    for (const k of ["a", "b", "a", "c", "b"]) q.add(k);
    expect(q.length).toBe(3);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(["a", "b", "c"]);
    expect(q.length).toBe(0);
  });

  it("never hands out a key being processed; a re-add while processing is queued once when done", async () => {
    const q = new WorkQueue();
    q.add("a");
    const k = await q.get();
    expect(k).toBe("a");
    q.add("a");
    q.add("a");
    expect(q.length).toBe(0); // dirty, not queued: a second worker cannot take it
    let second: string | undefined;
    void q.get().then((x) => (second = x));
    await settle();
    expect(second).toBeUndefined();
    q.done("a");
    await settle();
    expect(second).toBe("a");
    q.done("a");
    expect(q.length).toBe(0);
  });

  it("wakes a waiting get() when a key arrives", async () => {
    const q = new WorkQueue();
    const p = q.get();
    q.add("x");
    expect(await p).toBe("x");
  });

  it("addAfter delays a key and keeps the earlier of two times", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.addAfter("a", 100);
    q.addAfter("a", 50);
    q.addAfter("a", 200);
    q.addAfter("b", 70);
    await clock.advance(49);
    expect(q.length).toBe(0);
    expect(q.delayedLength).toBe(2);
    await clock.advance(1);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe("a");
    await clock.advance(20);
    expect(await q.get()).toBe("b");
    await clock.advance(1000);
    expect(q.length).toBe(0); // the superseded 100 ms and 200 ms entries for "a" do not fire again
  });

  it("grows the per-key backoff exponentially up to the cap and forget() resets it", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 10, maxDelayMs: 100, qps: 1e6, burst: 1e6 });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t0 = clock.now();
      q.addRateLimited("k");
      while (q.length === 0) await clock.advance(1);
      delays.push(clock.now() - t0);
      await q.get();
      q.done("k");
    }
    expect(delays).toEqual([10, 20, 40, 80, 100, 100]);
    expect(q.numRequeues("k")).toBe(6);
    q.forget("k");
    expect(q.numRequeues("k")).toBe(0);
    const t0 = clock.now();
    q.addRateLimited("k");
    while (q.length === 0) await clock.advance(1);
    expect(clock.now() - t0).toBe(10);
  });

  it("applies the overall token bucket across keys (max of per-key and bucket delay)", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 1, qps: 10, burst: 2 });
    for (const k of ["a", "b", "c", "d"]) q.addRateLimited(k);
    await clock.advance(1);
    expect(q.length).toBe(2); // the burst
    await clock.advance(99);
    expect(q.length).toBe(3); // one more after 100 ms at 10/s
    await clock.advance(100);
    expect(q.length).toBe(4);
  });

  it("shutdown wakes waiting workers with undefined, drains queued keys, refuses new ones and drops delayed ones", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    const waiting = q.get();
    q.shutdown();
    expect(await waiting).toBeUndefined();

    const q2 = new WorkQueue({ clock });
    q2.add("a");
    q2.addAfter("b", 10);
    q2.shutdown();
    q2.add("c");
    expect(await q2.get()).toBe("a");
    expect(await q2.get()).toBeUndefined();
    await clock.advance(100);
    expect(q2.length).toBe(0);
    q2.done("a");
  });

  it("records depth, adds, retries and durations per queue", async () => {
    const clock = new FakeClock();
    const metrics = new Registry();
    const q = new WorkQueue({ name: "things", clock, metrics });
    q.add("a");
    q.add("b");
    q.add("a");
    let text = metrics.render();
    expect(text).toContain('workqueue_depth{name="things"} 2');
    expect(text).toContain('workqueue_adds_total{name="things"} 2');
    await q.get();
    await clock.advance(250);
    q.done("a");
    q.addRateLimited("a");
    text = metrics.render();
    expect(text).toContain('workqueue_depth{name="things"} 1');
    expect(text).toContain('workqueue_retries_total{name="things"} 1');
    expect(text).toContain('workqueue_work_duration_seconds_sum{name="things"} 0.25');
    expect(text).toContain('workqueue_work_duration_seconds_count{name="things"} 1');
  });
});
