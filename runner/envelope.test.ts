import { describe, expect, it } from "vitest";
import { isWorkBody, isWorkEnvelope, type WorkEnvelope } from "./envelope.ts";

const env: WorkEnvelope = { v: 1, id: "t1", graph: "g", task: { x: 1 }, inputs: {}, submitted: 1 };

describe("isWorkBody", () => {
  it("accepts an envelope and a batch of envelopes", () => {
    expect(isWorkBody(env)).toBe(true);
    expect(isWorkBody({ ...env, saved: { a: 1 }, deadline: 5, trace: { traceparent: "x" } })).toBe(true);
    expect(isWorkBody({ v: 1, batch: [env, { ...env, id: "t2" }] })).toBe(true);
  });

  it("refuses what a runner cannot handle", () => {
    const bad: unknown[] = [
      null, 1, "x", [], [env], {}, { ...env, v: 2 }, { ...env, id: "" }, { ...env, id: 5 }, { ...env, graph: undefined },
      { ...env, inputs: [] }, { ...env, inputs: null }, { ...env, submitted: "now" }, { ...env, saved: 3 }, { ...env, deadline: "x" },
      { ...env, trace: "x" }, { v: 1, batch: [] }, { v: 1, batch: [env, 1] }, { v: 1, batch: "x" }, { batch: [env] },
    ];
    for (const b of bad) expect({ b, ok: isWorkBody(b) }).toEqual({ b, ok: false });
  });

  it("never throws on arbitrary JSON values, and accepts only what has every field", () => {
    // A small deterministic generator of JSON values, including near-envelopes.
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const value = (depth: number): unknown => {
      const k = Math.floor(rnd() * 7);
      if (depth > 2 || k === 0) return [null, true, 0, -1.5, "", "a"][Math.floor(rnd() * 6)];
      if (k === 1) return Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1));
      if (k === 2) return { ...env, [["v", "id", "graph", "inputs", "submitted", "saved"][Math.floor(rnd() * 6)]!]: value(depth + 1) };
      if (k === 3) return { v: 1, batch: Array.from({ length: Math.floor(rnd() * 3) }, () => (rnd() < 0.5 ? env : value(depth + 1))) };
      return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 3) }, (_, i) => [`k${i}`, value(depth + 1)]));
    };
    for (let i = 0; i < 5_000; i++) {
      const v = JSON.parse(JSON.stringify(value(0)) ?? "null") as unknown;
      const ok = isWorkBody(v);
      const list = Array.isArray((v as { batch?: unknown })?.batch) ? (v as { batch: unknown[] }).batch : [v];
      expect(ok).toBe(list.length > 0 && list.every(isWorkEnvelope) && (list[0] === v || (v as { v?: unknown }).v === 1));
    }
  });
});
