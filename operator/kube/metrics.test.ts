import { describe, expect, it } from "vitest";
import { Registry } from "./metrics.ts";
import { parseExposition } from "../../test/helpers/prometheus.ts";

describe("Registry", () => {
  it("renders counters, gauges and histograms with labels in the text format", () => {
    const r = new Registry();
    const c = r.counter("requests_total", "Requests.", ["verb", "code"]);
    c.inc({ verb: "GET", code: "200" });
    c.inc({ verb: "GET", code: "200" }, 2);
    c.inc({ verb: "PUT", code: "409" });
    const g = r.gauge("depth", "Depth.");
    g.set(undefined, 7);
    g.dec();
    const h = r.histogram("latency_seconds", "Latency.", [0.1, 1], ["op"]);
    h.observe({ op: "x" }, 0.05);
    h.observe({ op: "x" }, 0.5);
    h.observe({ op: "x" }, 5);
    const parsed = parseExposition(r.render());
    expect(parsed.get("requests_total")!.samples).toEqual([
      { name: "requests_total", labels: { verb: "GET", code: "200" }, value: 3 },
      { name: "requests_total", labels: { verb: "PUT", code: "409" }, value: 1 },
    ]);
    expect(parsed.get("depth")!.samples[0]!.value).toBe(6);
    const hs = parsed.get("latency_seconds")!;
    expect(hs.type).toBe("histogram");
    expect(hs.samples.map((s) => [s.name, s.labels.le, s.value])).toEqual([
      ["latency_seconds_bucket", "0.1", 1],
      ["latency_seconds_bucket", "1", 2],
      ["latency_seconds_bucket", "+Inf", 3],
      ["latency_seconds_sum", undefined, 5.55],
      ["latency_seconds_count", undefined, 3],
    ]);
  });

  it("escapes label values and help text", () => {
    const r = new Registry();
    r.counter("odd_total", "Line one\nline two \\ end.", ["v"]).inc({ v: 'a"b\\c\nd' });
    const text = r.render();
    expect(text).toContain("# HELP odd_total Line one\\nline two \\\\ end.");
    expect(parseExposition(text).get("odd_total")!.samples[0]!.labels.v).toBe('a"b\\c\nd');
  });

  it("returns the same metric for the same name and refuses a clash or bad labels", () => {
    const r = new Registry();
    const a = r.counter("x_total", "X.", ["a"]);
    expect(r.counter("x_total", "X.", ["a"])).toBe(a);
    expect(() => r.gauge("x_total", "X.")).toThrow(/already registered as a counter/);
    expect(() => r.counter("bad-name", "")).toThrow(/not a valid Prometheus name/);
    expect(() => a.inc({})).toThrow(/label a is missing/);
    expect(() => a.inc({ a: "1", b: "2" })).toThrow(/unknown label b/);
    expect(() => a.inc({ a: "1" }, -1)).toThrow(/cannot decrease/);
  });

  it("runs collectors before rendering", () => {
    const r = new Registry();
    const g = r.gauge("now_value", "Computed on scrape.");
    let n = 0;
    r.onCollect(() => g.set(undefined, ++n));
    expect(r.render()).toContain("now_value 1");
    expect(r.render()).toContain("now_value 2");
  });
});
