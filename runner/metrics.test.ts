import { describe, expect, it } from "vitest";
import { RunnerMetrics } from "./metrics.ts";

describe("RunnerMetrics", () => {
  it("counts finished tasks as processed and failed, and tasks handed back apart from both", () => {
    const m = new RunnerMetrics();
    for (const end of ["succeeded", "failed", "handed-back", "succeeded"] as const) {
      m.started("g", "a");
      m.finished("g", "a", 0.002, end);
    }
    m.started("g", "a");
    const text = m.render();
    const value = (name: string) => Number(new RegExp(`^${name}\\{graph="g",node="a"\\} (\\S+)$`, "m").exec(text)?.[1]);
    expect(value("jobchain_node_processed_total")).toBe(3);
    expect(value("jobchain_node_failed_total")).toBe(1);
    expect(value("jobchain_node_handed_back_total")).toBe(1);
    expect(value("jobchain_node_in_flight")).toBe(1);
    // The duration histogram holds the finished tasks only.
    expect(value("jobchain_node_duration_seconds_count")).toBe(3);
    expect(text).toContain('jobchain_node_duration_seconds_bucket{graph="g",node="a",le="0.005"} 3');
  });
});
