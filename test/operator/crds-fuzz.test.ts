// 300 generated and mutated JobGraph and JobTask specs through the real kube-apiserver (dry-run creates with strict
// field validation, so admission runs in full and nothing is stored). Each is either refused with a message naming
// a spec field or accepted; an accepted object (as the apiserver would store it) goes through parseJobGraphSpec /
// parseJobTaskSpec, which must answer without throwing. Where the apiserver and the parser disagree the case is
// recorded and printed (the operator reports such specs in the `Valid` condition, so disagreement is allowed; a
// throw, a 5xx or a refusal that names no field is not).
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseJobGraphSpec, parseJobTaskSpec, type ParseResult } from "../../operator/api/index.ts";
import { controlPlaneSuiteSkip } from "../harness/controlplane-vitest.ts";
import { graphObject, graphsPath, startWithCrds, taskObject, tasksPath } from "./crd-helpers.ts";
import type { KubeHttp } from "./kube-http.ts";

const skip = controlPlaneSuiteSkip("JobChain CRD fuzz");
const RUNS_PER_KIND = 150;

// ---- generators ------------------------------------------------------------------------------------------------

const goodName = fc.constantFrom("a", "b", "c", "fetch", "count", "x_y", "j-1", "_hidden");
const badName = fc.constantFrom("bad name", "-x", "", "a".repeat(64), "__proto__", "Ünï", "a.b");
const someName = fc.oneof({ weight: 9, arbitrary: goodName }, { weight: 1, arbitrary: badName });
const smallJson = fc.jsonValue({ maxDepth: 2 });

const jobEntry = fc.record(
  {
    type: fc.oneof(fc.constantFrom("Echo", "Fetch", "WordCount"), fc.string()),
    properties: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), smallJson, { maxKeys: 3 }), fc.constant(null)),
    timeout: fc.oneof(fc.double({ min: 0.001, max: 1e6, noNaN: true }), fc.integer({ min: -5, max: 5 })),
    retry: fc.record(
      {
        attempts: fc.integer({ min: -1, max: 1001 }),
        backoff: fc.oneof(fc.nat(10), fc.record({ initial: fc.nat(5), factor: fc.double({ min: 0.5, max: 4, noNaN: true }), jitter: fc.boolean() }, { requiredKeys: [] }), smallJson),
      },
      { requiredKeys: ["attempts"] },
    ),
    concurrency: fc.integer({ min: -1, max: 64 }),
    rateLimit: fc.record({ max: fc.integer({ min: 0, max: 100 }), per: fc.double({ min: 0, max: 60, noNaN: true }), key: fc.string({ maxLength: 4 }) }, { requiredKeys: ["max"] }),
    save_result: fc.boolean(),
  },
  { requiredKeys: ["type"] },
);

const quantity = fc.oneof(fc.nat(4096), fc.constantFrom("250m", "1", "1.5", "2Gi", "512Mi", "lots", "-1", "1e3"), fc.double({ noNaN: true, min: 0, max: 8 }));

// A spec built to be valid: every node a job, next in the graph, parameters for nodes, disjoint pools.
const validJob = fc.record(
  {
    type: fc.constantFrom("Echo", "Fetch", "WordCount"),
    properties: fc.dictionary(fc.string({ maxLength: 8 }), smallJson, { maxKeys: 3 }),
    timeout: fc.double({ min: 0.001, max: 1e6, noNaN: true }),
    retry: fc.record({ attempts: fc.integer({ min: 1, max: 5 }), backoff: fc.oneof(fc.nat(10), fc.record({ initial: fc.nat(5), factor: fc.double({ min: 1, max: 4, noNaN: true }) })) }, { requiredKeys: ["attempts"] }),
    concurrency: fc.integer({ min: 1, max: 64 }),
    rateLimit: fc.record({ max: fc.integer({ min: 1, max: 100 }), per: fc.double({ min: 0.1, max: 60, noNaN: true }) }, { requiredKeys: ["max"] }),
    save_result: fc.boolean(),
  },
  { requiredKeys: ["type"] },
);
const validGraphSpec = fc.uniqueArray(goodName, { minLength: 1, maxLength: 5 }).chain((names) =>
  fc.record(
    {
      jobs: fc.tuple(...names.map(() => validJob)).map((entries) => Object.fromEntries(names.map((n, i) => [n, entries[i]]))),
      graph: fc
        .tuple(...names.map(() => fc.oneof(fc.constant(null), fc.constant({}), fc.record({ next: fc.subarray(names) }))))
        .map((nodes) => Object.fromEntries(names.map((n, i) => [n, nodes[i]]))),
      parameters: fc.dictionary(goodName, fc.dictionary(fc.constantFrom(...names), fc.dictionary(fc.string({ maxLength: 5 }), smallJson, { maxKeys: 2 }), { maxKeys: 2 }), { maxKeys: 2 }),
      image: fc.constant("ghcr.io/jobchain/runner:1"),
      // Each job goes to pool 0, 1, 2 or none; pool 2 (when present) has no `jobs` and serves the rest.
      pools: fc.tuple(fc.integer({ min: 0, max: 3 }), fc.array(fc.integer({ min: 0, max: 2 }), { minLength: names.length, maxLength: names.length }), fc.nat(3), fc.nat(3)).map(([count, owner, min, extra]) =>
        Array.from({ length: count }, (_, p) => {
          const jobs = names.filter((_, i) => owner[i] === p);
          const pool: Record<string, unknown> = { name: ["io", "cpu", "rest"][p], replicas: { min, max: min + extra + 1 } };
          if (p < 2) pool.jobs = jobs.length > 0 ? jobs : [names[0]!];
          return pool;
        }).filter((pool, p, all) => p === 2 || !all.slice(0, p).some((q) => (q.jobs as string[] | undefined)?.some((j) => (pool.jobs as string[]).includes(j)))),
      ),
      nats: fc.record({ url: fc.constant("nats://nats:4222"), secretRef: fc.record({ name: fc.constant("creds") }) }, { requiredKeys: [] }),
    },
    { requiredKeys: ["jobs", "graph"] },
  ),
);

// A spec with anything in it: unknown references, bad names, out-of-range numbers, wrong enums.
const wildGraphSpec = fc
  .uniqueArray(someName, { minLength: 1, maxLength: 5 })
  .chain((names) =>
    fc.record(
      {
        jobs: fc.tuple(...names.map(() => jobEntry)).map((entries) => Object.fromEntries(names.map((n, i) => [n, entries[i]]))),
        graph: fc
          .subarray([...names, "ghost"], { minLength: 1 })
          .chain((nodes) =>
            fc.tuple(
              ...nodes.map(() =>
                fc.oneof(
                  fc.constant(null),
                  fc.constant({}),
                  fc.record({ next: fc.oneof(fc.subarray([...names, "nobody"]), fc.constantFrom(...names), fc.constant(null)) }),
                ),
              ),
            ).map((values) => Object.fromEntries(nodes.map((n, i) => [n, values[i]]))),
          ),
        parameters: fc.dictionary(someName, fc.dictionary(fc.constantFrom(...names, "ghost"), fc.oneof(fc.dictionary(fc.string({ maxLength: 5 }), smallJson, { maxKeys: 2 }), fc.array(fc.dictionary(fc.string({ maxLength: 3 }), smallJson), { maxLength: 2 })), { maxKeys: 2 }), { maxKeys: 2 }),
        image: fc.oneof(fc.constant("ghcr.io/jobchain/runner:1"), fc.string({ maxLength: 4 })),
        pools: fc.array(
          fc.record(
            {
              name: fc.oneof(fc.constantFrom("io", "cpu", "rest", "gpu-1"), someName),
              jobs: fc.subarray([...names, "ghost"], { minLength: 0 }),
              replicas: fc.record({ min: fc.integer({ min: -1, max: 5 }), max: fc.integer({ min: 0, max: 6 }) }),
              scaleDownDelaySeconds: fc.integer({ min: -1, max: 1000 }),
              concurrency: fc.integer({ min: 0, max: 8 }),
              resources: fc.record({ requests: fc.dictionary(fc.constantFrom("cpu", "memory"), quantity), limits: fc.dictionary(fc.constantFrom("cpu", "memory"), quantity) }, { requiredKeys: [] }),
              nodeSelector: fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.string({ maxLength: 5 }), fc.nat())),
              tolerations: fc.array(
                fc.record({ key: fc.string({ maxLength: 5 }), operator: fc.constantFrom("Exists", "Equal", "Maybe"), value: fc.string({ maxLength: 5 }), effect: fc.constantFrom("NoSchedule", "NoExecute", "Sometimes"), tolerationSeconds: fc.integer({ min: -10, max: 100 }) }, { requiredKeys: [] }),
                { maxLength: 2 },
              ),
            },
            { requiredKeys: ["name", "replicas"] },
          ),
          { maxLength: 3 },
        ),
        nats: fc.record({ url: fc.constantFrom("nats://nats:4222", ""), secretRef: fc.record({ name: fc.constantFrom("creds", "") }) }, { requiredKeys: [] }),
      },
      { requiredKeys: ["jobs", "graph"] },
    ),
  );

const graphSpec = fc.oneof({ weight: 3, arbitrary: validGraphSpec }, { weight: 1, arbitrary: wildGraphSpec });

const taskSpec = fc.record(
  {
    graph: fc.oneof(fc.constantFrom("text-report", "g1"), someName),
    group: someName,
    input: fc.oneof({ weight: 8, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }) }, { weight: 1, arbitrary: smallJson }),
    timeoutSeconds: fc.oneof(fc.double({ min: -1, max: 1e5, noNaN: true }), fc.integer({ min: -1, max: 100 })),
    ttlSecondsAfterFinished: fc.oneof(fc.integer({ min: -2, max: 86400 }), fc.double({ min: 0, max: 10, noNaN: true })),
  },
  { requiredKeys: ["graph", "input"] },
);

/** Every path in a JSON value (objects and arrays), the root included. */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pathsOf(v, [...prefix, i])));
  else if (typeof value === "object" && value !== null) for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...prefix, k]));
  return out;
}

type Mutation = { kind: "delete" | "replace" | "unknownField" | "wrap" | "null"; at: number; value: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom("delete", "replace", "unknownField", "wrap", "null"),
  at: fc.nat(),
  value: fc.jsonValue({ maxDepth: 2 }),
});
/** Half the specs go as generated, half with one to three mutations. */
const mutations = fc.oneof(fc.constant([] as Mutation[]), fc.array(mutation, { minLength: 1, maxLength: 3 }));

/** Applies mutations to a copy: delete a field, replace a value, add an unknown field, wrap in a list, null it. */
function mutate(spec: unknown, mutations: Mutation[]): unknown {
  const root = { spec: structuredClone(spec) };
  for (const m of mutations) {
    const paths = pathsOf(root.spec, ["spec"]);
    const p = paths[m.at % paths.length]!;
    let parent: any = root;
    for (const k of p.slice(0, -1)) parent = parent[k];
    const key = p[p.length - 1]!;
    const target = parent[key];
    switch (m.kind) {
      case "delete":
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else if (key !== "spec") delete parent[key];
        break;
      case "replace":
        parent[key] = m.value;
        break;
      case "unknownField":
        if (typeof target === "object" && target !== null && !Array.isArray(target)) target.surprise = m.value;
        break;
      case "wrap":
        parent[key] = [target];
        break;
      case "null":
        parent[key] = null;
        break;
    }
  }
  return root.spec;
}

// ---- the run -----------------------------------------------------------------------------------------------------

interface Disagreement {
  kind: string;
  apiserver: "accepted" | "refused";
  detail: string;
  spec: unknown;
}

describe.skipIf(skip)("JobChain CRD fuzz against a real kube-apiserver", () => {
  let api: KubeHttp;
  let stop = async () => {};
  const disagreements: Disagreement[] = [];
  const counts = { JobGraph: { accepted: 0, refused: 0 }, JobTask: { accepted: 0, refused: 0 } };

  beforeAll(async () => {
    ({ api, stop } = await startWithCrds());
  });

  afterAll(async () => {
    await stop();
    const byKind = (k: string) => disagreements.filter((d) => d.kind === k);
    const lines = [
      `CRD fuzz: JobGraph ${counts.JobGraph.accepted} accepted / ${counts.JobGraph.refused} refused; JobTask ${counts.JobTask.accepted} accepted / ${counts.JobTask.refused} refused`,
      `disagreements with the operator's parser: JobGraph ${byKind("JobGraph").length}, JobTask ${byKind("JobTask").length}`,
      ...disagreements.slice(0, 40).map((d) => `  ${d.kind}: apiserver ${d.apiserver}, parser ${d.apiserver === "accepted" ? "refused" : "accepted"}: ${d.detail.slice(0, 300)}`),
    ];
    console.info(lines.join("\n"));
  });

  async function check(kind: "JobGraph" | "JobTask", spec: unknown): Promise<void> {
    const [path, object, parse] =
      kind === "JobGraph"
        ? [graphsPath, graphObject("fuzz", spec), parseJobGraphSpec as (s: unknown) => ParseResult<unknown>]
        : [tasksPath, taskObject("fuzz", spec), parseJobTaskSpec as (s: unknown) => ParseResult<unknown>];
    const r = await api.post(`${path}?dryRun=All&fieldValidation=Strict`, object);
    if (r.status === 201) {
      counts[kind].accepted++;
      // What the apiserver would store (after pruning) is what the operator reads.
      const parsed = parse(r.body.spec);
      if (!parsed.ok) disagreements.push({ kind, apiserver: "accepted", detail: parsed.problems.join("; "), spec });
      return;
    }
    expect([400, 422], `unexpected answer ${r.status}: ${JSON.stringify(r.body)}`).toContain(r.status);
    const message = String(r.body?.message ?? "");
    expect(message, `a refusal must name the field: ${message}`).toMatch(/\bspec(\.|\[|:|\b)/);
    counts[kind].refused++;
    const parsed = parse(spec);
    if (parsed.ok) disagreements.push({ kind, apiserver: "refused", detail: message, spec });
  }

  for (const [kind, specs] of [
    ["JobGraph", graphSpec],
    ["JobTask", taskSpec],
  ] as const) {
    it(`${RUNS_PER_KIND} ${kind} specs are refused with a field named, or accepted and parsed without a throw`, async () => {
      await fc.assert(
        fc.asyncProperty(specs as fc.Arbitrary<unknown>, mutations, async (spec, mutations) => {
          await check(kind, mutate(spec, mutations));
        }),
        { numRuns: RUNS_PER_KIND },
      );
      // The generators reach both outcomes (a fuzz that only ever hits one side tests little).
      expect(counts[kind].accepted).toBeGreaterThan(0);
      expect(counts[kind].refused).toBeGreaterThan(0);
    }, 600_000);
  }
});
