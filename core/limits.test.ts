import { describe, expect, it } from "vitest";
import { JobChain, defineGraph, fn, parallel } from "./index.ts";
import { FakeClock } from "../test/helpers/fake-clock.ts";
import { RateLimiter, RateLimiters, Semaphore } from "./limits.ts";

/** Lets every pending promise reaction run (the microtask queue drains before the next macrotask). */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

type State = "pending" | "fulfilled" | "rejected";

/** Observes a promise's state without waiting for it; read it after `flush()`. */
function track(p: Promise<unknown>): { readonly state: State; readonly reason: unknown } {
  const t = { state: "pending" as State, reason: undefined as unknown };
  p.then(
    () => void (t.state = "fulfilled"),
    (err: unknown) => {
      t.state = "rejected";
      t.reason = err;
    },
  );
  return t;
}

describe("Semaphore", () => {
  it("hands out exactly `capacity` permits at once", () => {
    const s = new Semaphore(2);
    expect(s.capacity).toBe(2);
    expect([s.tryAcquire(), s.tryAcquire(), s.tryAcquire()]).toEqual([true, true, false]);
    s.release();
    expect([s.tryAcquire(), s.tryAcquire()]).toEqual([true, false]);
  });

  it("resolves acquire at once while a permit is free", async () => {
    const s = new Semaphore(1);
    const a = track(s.acquire());
    await flush();
    expect(a.state).toBe("fulfilled");
    expect(s.tryAcquire()).toBe(false);
  });

  it("serves waiters in FIFO order, one per release", async () => {
    const s = new Semaphore(1);
    expect(s.tryAcquire()).toBe(true);
    const order: string[] = [];
    const waits = ["a", "b", "c"].map((name) => s.acquire().then(() => void order.push(name)));
    await flush();
    expect(order).toEqual([]);
    expect(s.waiting).toBe(3);
    s.release();
    await flush();
    expect(order).toEqual(["a"]);
    s.release();
    await flush();
    expect(order).toEqual(["a", "b"]);
    s.release();
    await Promise.all(waits);
    expect(order).toEqual(["a", "b", "c"]);
    expect(s.waiting).toBe(0);
    // c still holds the only permit.
    expect(s.tryAcquire()).toBe(false);
    s.release();
    expect([s.tryAcquire(), s.tryAcquire()]).toEqual([true, false]);
  });

  it("a newcomer does not jump the queue: tryAcquire fails while others wait", async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const w = track(s.acquire());
    s.release(); // handed to the waiter, not made available
    expect(s.tryAcquire()).toBe(false);
    await flush();
    expect(w.state).toBe("fulfilled");
  });

  it("rejects a waiter whose signal aborts with the signal's reason, and it holds no permit", async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const ac = new AbortController();
    const a = track(s.acquire(ac.signal));
    const b = track(s.acquire());
    const reason = new Error("stop waiting");
    ac.abort(reason);
    await flush();
    expect(a.state).toBe("rejected");
    expect(a.reason).toBe(reason);
    expect(s.waiting).toBe(1);
    s.release(); // goes to b, skipping the cancelled a
    await flush();
    expect(b.state).toBe("fulfilled");
    expect(s.tryAcquire()).toBe(false);
    s.release(); // b's permit: now free, and it is the only one
    expect([s.tryAcquire(), s.tryAcquire()]).toEqual([true, false]);
  });

  it("returns the permit to the pool when every waiter was cancelled", async () => {
    const s = new Semaphore(2);
    s.tryAcquire();
    s.tryAcquire();
    const acs = [new AbortController(), new AbortController(), new AbortController()];
    const ws = acs.map((ac) => track(s.acquire(ac.signal)));
    for (const ac of acs) ac.abort(new Error("gone"));
    await flush();
    expect(ws.map((w) => w.state)).toEqual(["rejected", "rejected", "rejected"]);
    expect(s.waiting).toBe(0);
    s.release();
    s.release();
    expect([s.tryAcquire(), s.tryAcquire(), s.tryAcquire()]).toEqual([true, true, false]);
  });

  it("rejects at once for a signal that is already aborted, and never takes a permit for it", async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const reason = new Error("already cancelled");
    const w = track(s.acquire(AbortSignal.abort(reason)));
    await flush();
    expect(w.state).toBe("rejected");
    expect(w.reason).toBe(reason);
    expect(s.waiting).toBe(0);
    s.release();
    await flush();
    expect([s.tryAcquire(), s.tryAcquire()]).toEqual([true, false]);
  });

  it("an abort after the permit was granted changes nothing", async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const ac = new AbortController();
    const w = track(s.acquire(ac.signal));
    s.release();
    await flush();
    expect(w.state).toBe("fulfilled");
    ac.abort(new Error("late"));
    await flush();
    expect(w.state).toBe("fulfilled");
    expect(s.tryAcquire()).toBe(false);
    s.release();
    expect(s.tryAcquire()).toBe(true);
  });
});

describe("RateLimiter (fake clock)", () => {
  it("allows a burst of `max`, then one start per per/max seconds", async () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(2, 1, clock);
    expect([rl.tryAcquire(), rl.tryAcquire(), rl.tryAcquire()]).toEqual([true, true, false]);
    const third = track(rl.acquire());
    await clock.advance(499);
    expect(third.state).toBe("pending");
    await clock.advance(1);
    expect(third.state).toBe("fulfilled");
    expect(clock.now()).toBe(500);
    const fourth = track(rl.acquire());
    await clock.advance(499);
    expect(fourth.state).toBe("pending");
    await clock.advance(1);
    expect(fourth.state).toBe("fulfilled");
    expect(rl.tryAcquire()).toBe(false);
  });

  it("refills over time but never beyond `max`", async () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(3, 2, clock);
    expect([rl.tryAcquire(), rl.tryAcquire(), rl.tryAcquire(), rl.tryAcquire()]).toEqual([true, true, true, false]);
    await clock.advance(60_000);
    expect([rl.tryAcquire(), rl.tryAcquire(), rl.tryAcquire(), rl.tryAcquire()]).toEqual([true, true, true, false]);
    // One token every 2000/3 ms: after 700 ms exactly one more.
    await clock.advance(700);
    expect([rl.tryAcquire(), rl.tryAcquire()]).toEqual([true, false]);
  });

  it("serves waiters in FIFO order, one per interval", async () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(2, 1, clock);
    rl.tryAcquire();
    rl.tryAcquire();
    const order: string[] = [];
    const waits = ["a", "b", "c"].map((name) => rl.acquire().then(() => void order.push(name)));
    await clock.advance(500);
    expect(order).toEqual(["a"]);
    // A newcomer waits behind the queue even when a token has built up in the meantime.
    await clock.advance(250);
    expect(rl.tryAcquire()).toBe(false);
    await clock.advance(250);
    expect(order).toEqual(["a", "b"]);
    await clock.advance(500);
    expect(order).toEqual(["a", "b", "c"]);
    await Promise.all(waits);
    expect(clock.now()).toBe(1500);
  });

  it("rejects the sleeping waiter on abort without consuming a token; the next one gets it", async () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(2, 1, clock);
    rl.tryAcquire();
    rl.tryAcquire();
    const ac = new AbortController();
    const a = track(rl.acquire(ac.signal));
    const b = track(rl.acquire());
    await clock.advance(100);
    const reason = new Error("cancelled");
    ac.abort(reason);
    await flush();
    expect(a.state).toBe("rejected");
    expect(a.reason).toBe(reason);
    await clock.advance(399);
    expect(b.state).toBe("pending");
    await clock.advance(1);
    expect(b.state).toBe("fulfilled");
    expect(clock.now()).toBe(500);
  });

  it("rejects a waiter queued behind another as soon as its signal aborts", async () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(1, 10, clock);
    rl.tryAcquire();
    const a = track(rl.acquire());
    const ac = new AbortController();
    const b = track(rl.acquire(ac.signal));
    const c = track(rl.acquire());
    await clock.advance(1000);
    const reason = new Error("task cancelled");
    ac.abort(reason);
    await flush();
    // Promptly: no fake time passes between the abort and the rejection.
    expect(b.state).toBe("rejected");
    expect(b.reason).toBe(reason);
    expect(a.state).toBe("pending");
    await clock.advance(9000);
    expect(a.state).toBe("fulfilled");
    expect(c.state).toBe("pending");
    // b consumed nothing: c gets the very next token.
    await clock.advance(10_000);
    expect(c.state).toBe("fulfilled");
    expect(clock.now()).toBe(20_000);
  });

  it("rejects at once for a signal that is already aborted and takes no token", async () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(1, 1, clock);
    rl.tryAcquire();
    const reason = new Error("already cancelled");
    const w = track(rl.acquire(AbortSignal.abort(reason)));
    await flush();
    expect(w.state).toBe("rejected");
    expect(w.reason).toBe(reason);
    await clock.advance(1000);
    expect([rl.tryAcquire(), rl.tryAcquire()]).toEqual([true, false]);
  });
});

describe("RateLimiters", () => {
  it("gives one limiter per shared key and one per job without a key", () => {
    const limiters = new RateLimiters(new FakeClock());
    const shared = limiters.get({ max: 2, per: 1, key: "llm" }, "g/a");
    expect(limiters.get({ max: 2, per: 1, key: "llm" }, "other/b")).toBe(shared);
    expect(limiters.get({ max: 2, per: 1, key: "other" }, "g/a")).not.toBe(shared);
    const own = limiters.get({ max: 2, per: 1, key: undefined }, "g/a");
    expect(own).not.toBe(shared);
    expect(limiters.get({ max: 2, per: 1, key: undefined }, "g/a")).toBe(own);
    expect(limiters.get({ max: 2, per: 1, key: undefined }, "g/b")).not.toBe(own);
  });

  it("a shared limiter's budget is shared by its users", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters(clock);
    const a = limiters.get({ max: 2, per: 1, key: "api" }, "g/a");
    const b = limiters.get({ max: 2, per: 1, key: "api" }, "g/b");
    expect([a.tryAcquire(), b.tryAcquire(), a.tryAcquire(), b.tryAcquire()]).toEqual([true, true, false, false]);
    const w = track(b.acquire());
    await clock.advance(500);
    expect(w.state).toBe("fulfilled");
  });
});

describe("rate limits in a chain (fake clock)", () => {
  it("limits job starts per job, and a shared key limits two jobs together", async () => {
    const clock = new FakeClock();
    const starts: string[] = [];
    const job = (name: string) => fn(name, () => void starts.push(name));
    const graph = defineGraph("limited", parallel(job("a"), job("b"), job("c")), {
      a: { rateLimit: { max: 1, per: 1, key: "shared" } },
      b: { rateLimit: { max: 1, per: 1, key: "shared" } },
      c: { rateLimit: { max: 2, per: 1 } },
    });
    const chain = new JobChain([graph], { clock });
    const results = [1, 2].map((i) => chain.execute({ i }));
    await flush();
    // "shared" allows one start in total; c's own limiter allows two.
    expect(starts.filter((s) => s === "c")).toEqual(["c", "c"]);
    expect(starts.filter((s) => s !== "c")).toEqual(["a"]);
    await clock.advance(1000);
    expect(starts.filter((s) => s !== "c")).toHaveLength(2);
    await clock.advance(1000);
    expect(starts.filter((s) => s !== "c")).toHaveLength(3);
    await clock.advance(1000);
    expect(starts.filter((s) => s !== "c")).toHaveLength(4);
    expect(starts.filter((s) => s === "a")).toHaveLength(2);
    expect(starts.filter((s) => s === "b")).toHaveLength(2);
    const outcomes = await Promise.all(results);
    expect(outcomes.map((o) => o.status)).toEqual(["succeeded", "succeeded"]);
    await chain.markInputCompleted();
  });
});
