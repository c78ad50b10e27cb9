import { describe, expect, it } from "vitest";
import { createLogger } from "../../core/index.ts";
import { StatusWriter, mergeStatus } from "./status-writer.ts";
import type { JobTaskStatus } from "../api/index.ts";

function writer(write: (ns: string, name: string, s: JobTaskStatus) => Promise<void>) {
  return new StatusWriter({ coalesceMs: 20, write, logger: createLogger({ level: "silent" }) });
}

describe("StatusWriter", () => {
  it("merges changes like a JSON merge patch: maps merged, values and arrays replaced", () => {
    expect(mergeStatus<JobTaskStatus>({ nodes: { a: { phase: "Running" } }, progress: "0/2" }, { nodes: { b: { phase: "Succeeded" } }, progress: "1/2" })).toEqual({
      nodes: { a: { phase: "Running" }, b: { phase: "Succeeded" } },
      progress: "1/2",
    });
  });

  it("writes a burst of changes to one resource as one patch", async () => {
    const writes: JobTaskStatus[] = [];
    const w = writer(async (_ns, _n, s) => void writes.push(s));
    w.update("ns", "t", { phase: "Running", nodes: { a: { phase: "Running" } } });
    w.update("ns", "t", { nodes: { a: { phase: "Succeeded" } }, progress: "1/2" });
    w.update("ns", "t", { nodes: { b: { phase: "Succeeded" } }, progress: "2/2" });
    await new Promise((r) => setTimeout(r, 60));
    await w.flush();
    expect(writes).toEqual([{ phase: "Running", nodes: { a: { phase: "Succeeded" }, b: { phase: "Succeeded" } }, progress: "2/2" }]);
  });

  it("shows a change while it is being written, so a reconcile that the watch brings first does not act on an older status", async () => {
    let release!: () => void;
    const w = writer(() => new Promise<void>((r) => (release = r)));
    w.update("ns", "t", { phase: "Running", submitted: true });
    await new Promise((r) => setTimeout(r, 40));
    w.update("ns", "t", { phase: "Succeeded" }, true);
    await new Promise((r) => setImmediate(r));
    release();
    await new Promise((r) => setTimeout(r, 5));
    // The second write is in flight now.
    expect(w.pending("ns/t").phase).toBe("Succeeded");
    release();
    await w.flush();
    expect(w.pending("ns/t")).toMatchObject({ phase: "Succeeded", submitted: true });
  });

  it("retries a failed write with what came in meanwhile, and forgets a resource that is gone (404)", async () => {
    let calls = 0;
    const seen: JobTaskStatus[] = [];
    const w = writer(async (_ns, name, s) => {
      calls++;
      seen.push(s);
      if (name === "gone") throw Object.assign(new Error("not found"), { status: 404 });
      if (calls === 1) throw Object.assign(new Error("unavailable"), { status: 503 });
    });
    w.update("ns", "t", { phase: "Running" }, true);
    await new Promise((r) => setTimeout(r, 5));
    w.update("ns", "t", { progress: "1/1" }, true);
    await new Promise((r) => setTimeout(r, 1200));
    await w.flush();
    expect(seen.at(-1)).toEqual({ phase: "Running", progress: "1/1" });
    w.update("ns", "gone", { phase: "Failed" }, true);
    await new Promise((r) => setTimeout(r, 10));
    await w.flush();
    expect(w.pending("ns/gone")).toEqual({});
  });
});
