import { describe, expect, it } from "vitest";
import { parseJobGraphSpec, parseJobTaskSpec, fieldPath } from "./index.ts";

const valid = {
  jobs: { fetch: { type: "Fetch", properties: { url: "$url" } }, count: { type: "WordCount" } },
  graph: { fetch: { next: ["count"] }, count: null },
  parameters: { docs: { fetch: { url: "https://example.org" } } },
  pools: [
    { name: "io", jobs: ["fetch"], replicas: { min: 0, max: 4 }, resources: { requests: { cpu: "250m", memory: 1024 } } },
    { name: "rest", replicas: { min: 1, max: 2 }, tolerations: [{ key: "k", operator: "Exists", effect: "NoSchedule" }] },
  ],
  nats: { url: "nats://nats:4222", secretRef: { name: "nats-creds" } },
};

function problems(spec: unknown): string[] {
  const r = parseJobGraphSpec(spec);
  return r.ok ? [] : r.problems;
}

describe("parseJobGraphSpec", () => {
  it("accepts a spec in the shapes of jobs.yaml, a graphs.yaml entry and a parameters.yaml entry", () => {
    const r = parseJobGraphSpec(valid);
    expect(r).toEqual({ ok: true, value: valid });
  });

  it("accepts a single name as next, as configuration files do", () => {
    expect(problems({ ...valid, graph: { fetch: { next: "count" }, count: {} } })).toEqual([]);
  });

  it("names the field path of each problem", () => {
    const bad = structuredClone(valid) as any;
    bad.pools[1].replicas.min = 3;
    bad.pools[0].replicas.max = 0;
    bad.jobs.fetch.timeout = -1;
    bad.jobs.count.colour = "red";
    bad.jobs.count.retry = { attempts: 2, backoff: "soon" };
    expect(problems(bad)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^spec\.pools\[1\]\.replicas\.min: replicas\.min must not exceed replicas\.max/),
        expect.stringMatching(/^spec\.pools\[0\]\.replicas\.max: /),
        expect.stringMatching(/^spec\.jobs\.fetch\.timeout: /),
        "spec.jobs.count.colour: unknown field",
        "spec.jobs.count.retry.backoff: must be a number of seconds or {initial, factor, max, jitter}",
      ]),
    );
  });

  it("checks the references the CRD's CEL rules check", () => {
    expect(problems({ ...valid, graph: { fetch: { next: ["cuont"] }, count: null } })).toEqual(["spec.graph.fetch.next[0]: 'cuont' is not a node of spec.graph"]);
    expect(problems({ ...valid, graph: { ...valid.graph, extra: null } })).toEqual(["spec.graph.extra: 'extra' is not a job of spec.jobs"]);
    expect(problems({ ...valid, pools: [{ name: "a", jobs: ["nope"], replicas: { min: 0, max: 1 } }] })).toEqual(["spec.pools[0].jobs[0]: 'nope' is not a job of spec.jobs"]);
    expect(problems({ ...valid, pools: [valid.pools[1], valid.pools[1]] })).toEqual(
      expect.arrayContaining(["spec.pools[1].name: pool name 'rest' is used twice", expect.stringMatching(/^spec\.pools: at most one pool may omit/)]),
    );
    expect(problems({ ...valid, pools: [valid.pools[0], { ...valid.pools[0], name: "io2" }] })).toEqual(["spec.pools[1].jobs[0]: 'fetch' is also named by pool 'io'"]);
    expect(problems({ ...valid, parameters: { docs: { nope: {} } } })).toEqual(["spec.parameters.docs.nope: 'nope' is not a node of spec.graph"]);
  });

  it("refuses pool names that cannot name a Deployment and bad quantities", () => {
    const bad = structuredClone(valid) as any;
    bad.pools[0].name = "My_Pool";
    bad.pools[0].resources.limits = { cpu: "lots", memory: 1.5 };
    const p = problems(bad);
    expect(p.some((x) => x.startsWith("spec.pools[0].name: "))).toBe(true);
    expect(p.some((x) => x.startsWith("spec.pools[0].resources.limits.cpu: "))).toBe(true);
    expect(p.some((x) => x.startsWith("spec.pools[0].resources.limits.memory: "))).toBe(true);
  });

  it("returns problems rather than throwing, whatever the input", () => {
    for (const v of [undefined, null, 3, "x", [], { jobs: [] }, { jobs: { a: null }, graph: { a: 5 } }, { __proto__: { jobs: 1 } }]) {
      const r = parseJobGraphSpec(v);
      expect(r.ok).toBe(false);
    }
    expect(problems({})).toEqual(expect.arrayContaining([expect.stringMatching(/^spec\.jobs: /), expect.stringMatching(/^spec\.graph: /)]));
  });
});

describe("parseJobTaskSpec", () => {
  it("accepts a task and refuses bad fields with their paths", () => {
    expect(parseJobTaskSpec({ graph: "text-report", group: "detailed", input: { url: "x" }, timeoutSeconds: 1.5 })).toMatchObject({ ok: true });
    const r = parseJobTaskSpec({ graph: "Text_Report", input: [1], ttlSecondsAfterFinished: -1 });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems.map((p) => p.split(":")[0])).toEqual(expect.arrayContaining(["spec.graph", "spec.input", "spec.ttlSecondsAfterFinished"]));
    }
  });
});

describe("fieldPath", () => {
  it("writes indexes and non-identifier keys in brackets", () => {
    expect(fieldPath("spec", ["pools", 1, "replicas", "min"])).toBe("spec.pools[1].replicas.min");
    expect(fieldPath("spec", ["jobs", "my-job", "timeout"])).toBe("spec.jobs[my-job].timeout");
  });
});
