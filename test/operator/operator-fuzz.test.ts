// Bad input through the real API with the operator running (a `jobchain operator` process): 150 mutated
// JobGraphs and 150 generated JobTasks. Each is refused at admission with a message naming a field, or accepted
// and then reported by the operator — a graph gets a `Valid` condition for its generation (True or False with the
// problem named), a task ends `Failed` with a message or waits `Pending` naming why — and the operator never
// crashes or stops reconciling the others: a good graph and task created last still succeed.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { controlPlaneSuiteSkip } from "../harness/controlplane-vitest.ts";
import { isInvalid, type KubeObject } from "../../operator/kube/index.ts";
import { JOBGRAPHS, JOBTASKS } from "../../operator/api/index.ts";
import type { Proc } from "../helpers/procs.ts";
import { until } from "../helpers/until.ts";
import { condition, jobGraph, jobTask, startOperatorEnv, waitFor, type OperatorEnv } from "./env.ts";

const skip = controlPlaneSuiteSkip("operator fuzz");
type Obj = KubeObject & { spec?: any; status?: any };
const ns = "default";

const BASE = {
  jobs: { a: { type: "Echo" }, b: { type: "Echo", properties: { add: "$extra" } }, c: { type: "Merge" } },
  graph: { a: { next: ["b", "c"] }, b: { next: [] }, c: { next: [] } },
  parameters: { g1: { b: { extra: { k: 1 } } } },
  pools: [{ name: "main", replicas: { min: 0, max: 1 } }],
};

const anyValue = fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: -3, max: 3 }), fc.constant(null), fc.boolean(), fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }));
const path = fc.constantFrom(
  ["jobs", "a", "type"], ["jobs", "b", "properties"], ["jobs", "d"], ["jobs", "a", "timeout"], ["jobs", "a", "retry"], ["jobs", "c", "rateLimit"],
  ["graph", "a", "next"], ["graph", "b"], ["graph", "d"], ["graph", "c", "next"],
  ["parameters", "g1", "b", "extra"], ["parameters", "g2"], ["parameters"], ["pools", 0, "replicas", "min"], ["pools", 0, "jobs"], ["pools", 1],
  ["image"], ["nats"], ["nats", "url"], ["unknownField"],
);
const structural = fc.tuple(path, fc.oneof(anyValue, fc.constantFrom("Nope", "a", "b", ["a"], ["zz"], "$nothing", { next: ["a"] }, "jobchain:other")));
// Mistakes admission cannot see (a cycle, an unknown type, a placeholder without a parameter, a disallowed
// image, a backoff of the wrong shape): the operator must name them in the Valid condition.
const semantic = fc.constantFrom<[(string | number)[], unknown]>(
  [["graph", "b", "next"], ["a"]],
  [["graph", "c", "next"], ["b"]],
  [["jobs", "a", "type"], "NoSuchJob"],
  [["jobs", "c", "type"], "Echoo"],
  [["jobs", "a", "properties"], { add: "$missing" }],
  [["image"], "registry.example/other:1"],
  [["image"], "jobchain:other"],
  [["jobs", "a", "retry"], { attempts: 2, backoff: "soon" }],
  [["parameters"], { g1: { b: { extra: { k: 1 } } }, g2: { b: { extra: { k: 2 } } } }],
  [["pools"], [{ name: "one", jobs: ["a"], replicas: { min: 0, max: 1 } }, { name: "rest", replicas: { min: 0, max: 1 } }]],
);
const mutation = fc.array(fc.oneof(structural, semantic), { minLength: 1, maxLength: 2 });

function mutate(spec: Record<string, unknown>, changes: (readonly [readonly (string | number)[], unknown])[]): Record<string, unknown> {
  const out = structuredClone(spec) as any;
  for (const [p, v] of changes) {
    let o = out;
    for (const k of p.slice(0, -1)) {
      if (o[k] === null || typeof o[k] !== "object") o[k] = typeof p[p.indexOf(k) + 1] === "number" ? [] : {};
      o = o[k];
    }
    o[p.at(-1)!] = v;
  }
  return out;
}

const taskSpec = fc.record(
  {
    graph: fc.constantFrom("good", "missing", "g0", "g1", "Bad_Name", ""),
    group: fc.oneof(fc.constantFrom("g1", "g2", "__proto__"), fc.string({ maxLength: 4 })),
    input: fc.oneof(fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }), anyValue),
    timeoutSeconds: fc.oneof(fc.double({ min: -1, max: 30, noNaN: true }), fc.constant(0)),
    ttlSecondsAfterFinished: fc.integer({ min: -1, max: 5 }),
    extra: fc.string({ maxLength: 2 }),
  },
  { requiredKeys: ["graph"] },
);

describe.skipIf(skip)("operator fuzz", () => {
  let env: OperatorEnv;
  let op: Proc;

  beforeAll(async () => {
    env = await startOperatorEnv();
    op = env.operatorProcess(["--allowed-images", "jobchain:"]);
    await op.waitFor("started as", 60_000);
  }, 180_000);
  afterAll(async () => {
    await op?.kill("SIGKILL");
    await env?.stop();
  }, 60_000);

  it("refuses or reports every mutated JobGraph and generated JobTask, and keeps reconciling the rest", async () => {
    const graphs = fc.sample(mutation, { numRuns: 150, seed: 4242 });
    const accepted: string[] = [];
    let refused = 0;
    for (const [i, changes] of graphs.entries()) {
      const name = `g${i}`;
      try {
        await env.kube.create(JOBGRAPHS, jobGraph(name, mutate(BASE, changes)));
        accepted.push(name);
      } catch (err) {
        expect(isInvalid(err), String(err)).toBe(true);
        expect((err as Error).message).toMatch(/spec|metadata/);
        refused++;
      }
    }
    const tasks = fc.sample(taskSpec, { numRuns: 150, seed: 77 });
    const acceptedTasks: string[] = [];
    for (const [i, spec] of tasks.entries()) {
      const { extra, ...rest } = spec as Record<string, unknown>;
      const body = extra === "x" ? { ...rest, unknown: 1 } : rest;
      try {
        await env.kube.create(JOBTASKS, jobTask(`t${i}`, body));
        acceptedTasks.push(`t${i}`);
      } catch (err) {
        expect(isInvalid(err), String(err)).toBe(true);
        expect((err as Error).message).toMatch(/spec/);
      }
    }
    // Every accepted graph is reported for its generation.
    let valid = 0;
    await until(async () => {
      const list = (await env.kube.list<Obj>(JOBGRAPHS, { namespace: ns })).items;
      valid = list.filter((g) => condition(g, "Valid")?.status === "True").length;
      return accepted.every((n) => {
        const g = list.find((x) => x.metadata.name === n);
        const v = g && condition(g, "Valid");
        return !!v && g!.status?.observedGeneration === g!.metadata.generation && (v.status === "True" || (v.message ?? "").length > 0);
      });
    }, 120_000, "every accepted JobGraph has a Valid condition for its generation");
    // Every accepted task is Failed with a message, or waits with a reason (no runner would take an invalid
    // graph's task), or ran.
    await until(async () => {
      const list = (await env.kube.list<Obj>(JOBTASKS, { namespace: ns })).items;
      return acceptedTasks.every((n) => {
        const t = list.find((x) => x.metadata.name === n);
        if (!t) return true; // deleted after its TTL
        if (t.status?.phase === "Failed") return (t.status.error?.message ?? "").length > 0;
        return t.status?.phase === "Succeeded" || t.status?.phase === "Running" || !!condition(t, "Submitted")?.reason;
      });
    }, 120_000, "every accepted JobTask reported");
    console.log(`operator fuzz: graphs ${accepted.length} accepted (${valid} valid) / ${refused} refused; tasks ${acceptedTasks.length} accepted`);
    // Still reconciling, still alive.
    await env.kube.create(JOBGRAPHS, jobGraph("good-last", { jobs: { a: { type: "Echo" } }, graph: { a: { next: [] } } }));
    await env.kube.create(JOBTASKS, jobTask("last", { graph: "good-last", input: { ok: 1 } }));
    const last = await waitFor<Obj>(env.kube, JOBTASKS, ns, "last", (t) => t.status?.phase === "Succeeded", 120_000);
    expect(last.status.result).toEqual({ ok: 1 });
    expect(op.child.exitCode).toBeNull();
  }, 420_000);
});
