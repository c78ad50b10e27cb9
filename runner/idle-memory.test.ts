import { afterEach, describe, expect, it, vi } from "vitest";
import { releaseMemory, watchIdle } from "./idle-memory.ts";

const sleep = (ms: number) => vi.advanceTimersByTimeAsync(ms);

describe("idle memory", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("releases once per idle period, never while busy, and again only after new activity", async () => {
    vi.useFakeTimers();
    let busy = true;
    let released = 0;
    const w = watchIdle(() => !busy, 40, () => released++);
    await sleep(150);
    expect(released).toBe(0); // busy all along
    busy = false;
    await sleep(150);
    expect(released).toBe(1);
    await sleep(100);
    expect(released).toBe(1); // still the same idle period
    w.active();
    await sleep(150);
    expect(released).toBe(2);
    w.stop();
    w.active();
    await sleep(150);
    expect(released).toBe(2);
  });

  it("runs a full collection that leaves the heap smaller", () => {
    // Objects that are unreachable once this returns, but still on the heap until a collection.
    const litter = () => Array.from({ length: 200_000 }, (_, i) => ({ i, s: `item ${i}` })).length;
    expect(litter()).toBe(200_000);
    const before = process.memoryUsage().heapUsed;
    expect(releaseMemory()).toBe(true);
    expect(process.memoryUsage().heapUsed).toBeLessThan(before);
  });
});
