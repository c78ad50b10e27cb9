import { describe, expect, it } from "vitest";
import { decide, smoothRate, wanted, type ScaleInput } from "./scaler.ts";

const base: ScaleInput = { min: 0, max: 10, current: 1, backlog: 0, ratePerReplica: undefined, concurrency: 100, scaleDownDelayMs: 60_000, now: 1_000_000, lowSince: undefined };

describe("scaler", () => {
  it("scales from zero as soon as a backlog appears", () => {
    expect(decide({ ...base, current: 0, backlog: 1 }).desired).toBe(1);
    expect(decide({ ...base, current: 0, backlog: 450, ratePerReplica: 5 }).desired).toBe(5);
  });

  it("asks for replicas by rate and concurrency, within max", () => {
    expect(wanted({ ...base, backlog: 1000, ratePerReplica: 10 })).toBe(10);
    expect(wanted({ ...base, backlog: 100_000, ratePerReplica: 10 })).toBe(10);
    // Fast runners: the rate says one replica works the backlog off in time.
    expect(wanted({ ...base, backlog: 1000, ratePerReplica: 1000 })).toBe(1);
    expect(wanted({ ...base, backlog: 0, min: 2 })).toBe(2);
  });

  it("steps up at most by doubling", () => {
    expect(decide({ ...base, current: 2, backlog: 100_000, ratePerReplica: 1 }).desired).toBe(4);
    expect(decide({ ...base, current: 4, backlog: 100_000, ratePerReplica: 1 }).desired).toBe(8);
  });

  it("scales down only after the delay, by bounded steps, and not when the backlog returns", () => {
    let d = decide({ ...base, current: 5 });
    expect(d.desired).toBe(5);
    expect(d.lowSince).toBe(base.now);
    d = decide({ ...base, current: 5, now: base.now + 30_000, lowSince: d.lowSince });
    expect(d.desired).toBe(5);
    const back = decide({ ...base, current: 5, backlog: 2000, ratePerReplica: 10, now: base.now + 40_000, lowSince: d.lowSince });
    expect(back.lowSince).toBeUndefined();
    d = decide({ ...base, current: 5, now: base.now + 61_000, lowSince: base.now });
    expect(d.desired).toBe(3);
    expect(d.lowSince).toBe(base.now + 61_000);
    d = decide({ ...base, current: 3, now: base.now + 62_000, lowSince: d.lowSince });
    expect(d.desired).toBe(3);
    d = decide({ ...base, current: 1, now: base.now + 200_000, lowSince: base.now + 62_000 });
    expect(d.desired).toBe(0);
  });

  it("smooths the measured rate", () => {
    expect(smoothRate(undefined, 100, 2)).toBe(50);
    expect(smoothRate(50, 0, 1)).toBe(25);
    expect(smoothRate(50, -5, 1)).toBe(50);
  });
});
