import { describe, expect, it } from "vitest";
import { z } from "zod";
import { CrdSchemaError, crdManifests, crdSchemaOf } from "./crd.ts";

type Node = Record<string, any>;

/** Every node of a schema with its path (`.*` for map values, `[]` for items). */
function nodes(node: Node, path = ""): [string, Node][] {
  const out: [string, Node][] = [[path, node]];
  for (const [k, v] of Object.entries(node.properties ?? {})) out.push(...nodes(v as Node, `${path}.${k}`));
  if (node.items) out.push(...nodes(node.items, `${path}[]`));
  if (typeof node.additionalProperties === "object") out.push(...nodes(node.additionalProperties, `${path}.*`));
  return out;
}

const [jobGraphCrd, jobTaskCrd] = crdManifests() as Node[];
const schemaOf = (crd: Node) => crd.spec.versions[0].schema.openAPIV3Schema as Node;

describe("crdManifests", () => {
  it("names, scope, versions and subresources as the API pins them", () => {
    for (const [crd, plural, kind, short] of [
      [jobGraphCrd, "jobgraphs", "JobGraph", "jg"],
      [jobTaskCrd, "jobtasks", "JobTask", "jt"],
    ] as const) {
      expect(crd!.metadata.name).toBe(`${plural}.jobchain.dev`);
      expect(crd!.spec).toMatchObject({ group: "jobchain.dev", scope: "Namespaced", names: { plural, kind, shortNames: [short], categories: ["jobchain"] } });
      expect(crd!.spec.versions).toHaveLength(1);
      expect(crd!.spec.versions[0]).toMatchObject({ name: "v1alpha1", served: true, storage: true, subresources: { status: {} } });
    }
  });

  it("is structural: every node typed (or free-form), no unions but int-or-string, no additionalProperties: false", () => {
    for (const crd of [jobGraphCrd!, jobTaskCrd!]) {
      for (const [path, n] of nodes(schemaOf(crd))) {
        expect(n.$ref, path).toBeUndefined();
        expect(n.oneOf ?? n.allOf ?? n.not, path).toBeUndefined();
        expect(n.additionalProperties === false, path).toBe(false);
        if (n.anyOf) expect(n["x-kubernetes-int-or-string"], path).toBe(true);
        if (n.type === undefined) expect(n["x-kubernetes-int-or-string"] ?? n["x-kubernetes-preserve-unknown-fields"], path).toBe(true);
        expect(Object.keys(n).filter((k) => k.startsWith("x-jobchain")), path).toEqual([]);
      }
    }
  });

  it("keeps unknown fields only where the data is free-form", () => {
    const free = (crd: Node) => nodes(schemaOf(crd)).filter(([, n]) => n["x-kubernetes-preserve-unknown-fields"]).map(([p]) => p);
    expect(free(jobGraphCrd!)).toEqual([".spec.jobs.*.properties", ".spec.jobs.*.retry.backoff", ".spec.parameters.*.*"]);
    expect(free(jobTaskCrd!)).toEqual([".spec.input", ".status.result"]);
  });

  it("gives quantities the int-or-string form and bounds every collection a CEL rule iterates", () => {
    const byPath = Object.fromEntries(nodes(schemaOf(jobGraphCrd!)));
    expect(byPath[".spec.pools[].resources.requests.*"]).toMatchObject({ "x-kubernetes-int-or-string": true, anyOf: [{ type: "integer" }, { type: "string" }] });
    for (const p of [".spec.jobs", ".spec.graph", ".spec.parameters", ".spec.parameters.*"]) expect(byPath[p]!.maxProperties, p).toBeGreaterThan(0);
    for (const p of [".spec.pools", ".spec.pools[].jobs", ".spec.graph.*.next"]) expect(byPath[p]!.maxItems, p).toBeGreaterThan(0);
    expect(byPath[".spec.pools"]).toMatchObject({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] });
    expect(byPath[".status.conditions"]).toMatchObject({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] });
  });

  it("makes the JobTask spec immutable", () => {
    expect(schemaOf(jobTaskCrd!).properties.spec["x-kubernetes-validations"]).toEqual([{ rule: "self == oldSelf", message: "spec is immutable: create a new JobTask" }]);
  });
});

describe("crdSchemaOf", () => {
  it("refuses a construct without a structural form, naming its path", () => {
    expect(() => crdSchemaOf(z.object({ a: z.union([z.string(), z.boolean()]) }), "spec")).toThrow(CrdSchemaError);
    expect(() => crdSchemaOf(z.object({ a: z.union([z.string(), z.boolean()]) }), "spec")).toThrow(/^spec\.a: a union/);
  });
});
