// The CustomResourceDefinitions, generated from the zod schemas of schema.ts: z.toJSONSchema (OpenAPI 3.0), then
// rewritten into a structural schema as apiextensions.k8s.io/v1 requires it — no $ref, no anyOf except the
// int-or-string form, no `additionalProperties: false`, `x-kubernetes-preserve-unknown-fields` only where the data
// is free-form (job properties, parameter values, retry backoff, JobTask input and result). A construct this file
// does not know how to express is an error naming its path, so a new union in a schema cannot slip through as a
// non-structural schema.
import { z } from "zod";
import { backoffSchema, graphNodeSchema, isValidName, NAME_PATTERN, parametersSectionSchema } from "../../core/config/schema.ts";
import {
  CATEGORY,
  DOC_DEFAULT,
  GROUP,
  JOBGRAPHS,
  JOBTASKS,
  LIMITS,
  VERSION,
  jobGraphRootRules,
  jobGraphSpecSchema,
  jobGraphStatusSchema,
  jobTaskSpecSchema,
  jobTaskStatusSchema,
  type CelRule,
} from "./schema.ts";

export type JsonSchema = { [key: string]: unknown };

/** A zod construct that has no structural OpenAPI form. */
export class CrdSchemaError extends Error {
  override name = "CrdSchemaError";
}

/** Keys a structural CRD schema node may carry (apiextensions.k8s.io/v1 JSONSchemaProps, as used here). */
const ALLOWED_KEYS = new Set([
  "type",
  "description",
  "properties",
  "required",
  "items",
  "additionalProperties",
  "enum",
  "format",
  "pattern",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "nullable",
  "anyOf",
  "x-kubernetes-int-or-string",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-validations",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  DOC_DEFAULT,
]);

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function hasCheck(schema: unknown, fn: unknown): boolean {
  const checks = (schema as { _zod?: { def?: { checks?: { _zod: { def: { fn?: unknown } } }[] } } })._zod?.def?.checks ?? [];
  return checks.some((c) => c._zod.def.fn === fn);
}

function replace(target: JsonSchema, value: JsonSchema): void {
  const description = target.description;
  for (const k of Object.keys(target)) delete target[k];
  Object.assign(target, value, description !== undefined && value.description === undefined ? { description } : {});
}

/** Names (job, group): the configuration's name pattern (which limits them to 63 characters), not `__proto__`. */
const NAME_RULES = { maxLength: 63, pattern: NAME_PATTERN.source, "x-kubernetes-validations": [{ rule: "self != '__proto__'", message: "a name may not be __proto__" }] };
const NAME_STRING: JsonSchema = { type: "string", ...NAME_RULES };

// Where the zod schema has a form the CRD must express differently, by schema identity.
function override(ctx: { zodSchema: unknown; jsonSchema: JsonSchema }): void {
  const { zodSchema, jsonSchema } = ctx;
  if (hasCheck(zodSchema, isValidName)) {
    Object.assign(jsonSchema, structuredClone(NAME_RULES));
  } else if (zodSchema === graphNodeSchema) {
    // The list form only: `{next: [a, b]}`, `{next: []}`, `{}` or null. Files (and parseJobGraphSpec) also accept
    // `next: a`; `jobchain manifest` writes lists. One type per field keeps the schema structural and the CEL
    // rules simple enough for the cost estimator.
    replace(jsonSchema, {
      type: "object",
      nullable: true,
      description: "A node: `{next: [job, ...]}`; a tail has `next: []`, `{}` or no value.",
      properties: {
        next: {
          type: "array",
          nullable: true,
          maxItems: LIMITS.next,
          items: structuredClone(NAME_STRING),
          description: "The jobs that get this job's output (a list; a tail has none).",
        },
      },
    });
  } else if (zodSchema === backoffSchema) {
    // Seconds, or {initial, factor, max, jitter}: a number-or-object has no structural type, so the node is
    // free-form here, and CEL cannot see an untyped node: the operator's parse (the `Valid` condition) checks it.
    replace(jsonSchema, {
      "x-kubernetes-preserve-unknown-fields": true,
      description: "Delay between attempts: seconds, or `{initial, factor, max, jitter}`.",
    });
  } else if (zodSchema === paramGroupSchema) {
    // A group names jobs of the graph (checked in parseJobGraphSpec), so it has at most as many entries.
    jsonSchema.maxProperties = LIMITS.jobs;
  } else if (zodSchema === paramValueSchema) {
    // A mapping of free-form values. Files also accept a list of one mapping; the CRD takes the mapping only (an
    // untyped node would hide spec.parameters from CEL), and `jobchain manifest` writes it so.
    replace(jsonSchema, {
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
      description: "The job's parameters: `{param: value}`.",
    });
  }
}

/** One group of a parameters.yaml entry (job → parameters) and its values (`{param: value}` or a list of one). */
const paramGroupSchema = parametersSectionSchema.valueType.valueType;
const paramValueSchema = paramGroupSchema.valueType;

function fail(path: string, what: string): never {
  throw new CrdSchemaError(`${path || "<root>"}: ${what} has no structural CRD form; add a case to operator/api/crd.ts`);
}

/** The order of keys in a written node (the rest after these, as they come): readable, deterministic YAML. */
const KEY_ORDER = ["description", "type", "format", "enum", "nullable", "x-kubernetes-int-or-string", "anyOf", "pattern"];
const KEY_LAST = ["required", "properties", "items", "additionalProperties", "x-kubernetes-validations"];
function ordered(node: JsonSchema): JsonSchema {
  const keys = Object.keys(node);
  const rank = (k: string) => (KEY_ORDER.includes(k) ? KEY_ORDER.indexOf(k) : KEY_LAST.includes(k) ? 100 + KEY_LAST.indexOf(k) : 50);
  const out: JsonSchema = {};
  for (const k of keys.sort((a, b) => rank(a) - rank(b))) out[k] = node[k];
  return out;
}

/** Rewrites a z.toJSONSchema (openapi-3.0) node into a structural CRD node, in place; returns it. */
function structural(node: JsonSchema, path: string): JsonSchema {
  delete node.$schema;
  if (node.additionalProperties === false) delete node.additionalProperties;
  if (node.maximum === MAX_SAFE) delete node.maximum;
  if (node.minimum === -MAX_SAFE) delete node.minimum;
  if (node.format === "date-time") delete node.pattern; // the apiserver checks the format itself
  if (node["x-kubernetes-int-or-string"] === true) {
    const branches = (node.anyOf ?? []) as JsonSchema[];
    const str = branches.find((b) => b.type === "string");
    const int = branches.find((b) => b.type === "integer");
    if (!str || !int || branches.length !== 2) fail(path, "an int-or-string without an integer and a string branch");
    delete node.anyOf;
    Object.assign(node, { anyOf: [{ type: "integer" }, { type: "string" }] });
    if (str.pattern !== undefined) node.pattern = str.pattern;
    return ordered(node);
  }
  if (node.anyOf !== undefined || node.oneOf !== undefined || node.allOf !== undefined || node.not !== undefined) fail(path, "a union");
  if (node.$ref !== undefined) fail(path, "a $ref");
  const ap = node.additionalProperties;
  if (ap !== undefined && typeof ap === "object" && ap !== null && Object.keys(ap).length === 0) {
    delete node.additionalProperties;
    node["x-kubernetes-preserve-unknown-fields"] = true;
  }
  if (node.type === undefined && node["x-kubernetes-preserve-unknown-fields"] !== true) {
    if (Object.keys(node).every((k) => k === "description")) node["x-kubernetes-preserve-unknown-fields"] = true;
    else fail(path, "a node without a type");
  }
  for (const k of Object.keys(node)) if (!ALLOWED_KEYS.has(k)) fail(path, `the key '${k}'`);
  if (node.properties) {
    const props = node.properties as Record<string, JsonSchema>;
    for (const [k, v] of Object.entries(props)) props[k] = structural(v, `${path}.${k}`);
  }
  if (node.items) node.items = structural(node.items as JsonSchema, `${path}[]`);
  if (typeof node.additionalProperties === "object") node.additionalProperties = structural(node.additionalProperties as JsonSchema, `${path}.*`);
  return ordered(node);
}

/** A structural CRD schema of a zod schema, with the documented defaults (DOC_DEFAULT) still in it. */
export function crdSchemaOf(schema: z.ZodType, path = ""): JsonSchema {
  const json = z.toJSONSchema(schema, {
    target: "openapi-3.0",
    io: "input",
    unrepresentable: "throw",
    cycles: "throw",
    reused: "inline",
    override: override as never,
  }) as JsonSchema;
  return structural(json, path);
}

/** Removes the documentation-only keys (deep copy). */
function stripDocKeys(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripDocKeys);
  if (typeof node !== "object" || node === null) return node;
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(node)) if (k !== DOC_DEFAULT) out[k] = stripDocKeys(v);
  return out;
}

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description?: string;
  priority?: number;
}

export const JOBGRAPH_COLUMNS: PrinterColumn[] = [
  { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: "Every pool can serve" },
  { name: "Valid", type: "string", jsonPath: '.status.conditions[?(@.type=="Valid")].status', description: "The spec has no problems", priority: 1 },
  { name: "Pools", type: "string", jsonPath: ".status.poolsReady", description: "Ready/desired runner replicas over all pools" },
  { name: "Backlog", type: "integer", jsonPath: ".status.backlog", description: "Tasks waiting or in flight" },
  { name: "Version", type: "string", jsonPath: ".status.version", description: "Spec hash new tasks run on", priority: 1 },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];

export const JOBTASK_COLUMNS: PrinterColumn[] = [
  { name: "Graph", type: "string", jsonPath: ".spec.graph", description: "The JobGraph running the task" },
  { name: "Group", type: "string", jsonPath: ".spec.group", description: "Parameter group", priority: 1 },
  { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Pending, Running, Succeeded or Failed" },
  { name: "Progress", type: "string", jsonPath: ".status.progress", description: "Jobs done / jobs in the graph" },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
  { name: "Completed", type: "date", jsonPath: ".status.completionTime", description: "When the task finished" },
];

interface KindDefinition {
  resource: typeof JOBGRAPHS | typeof JOBTASKS;
  singular: string;
  shortName: string;
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  rootRules: CelRule[];
  columns: PrinterColumn[];
}

const KINDS: KindDefinition[] = [
  {
    resource: JOBGRAPHS,
    singular: "jobgraph",
    shortName: "jg",
    description: "A graph of jobs run by warm, autoscaled runner Deployments; JobTasks and NATS clients submit tasks to it.",
    spec: jobGraphSpecSchema,
    status: jobGraphStatusSchema,
    rootRules: jobGraphRootRules,
    columns: JOBGRAPH_COLUMNS,
  },
  {
    resource: JOBTASKS,
    singular: "jobtask",
    shortName: "jt",
    description: "One task run on a JobGraph; its status follows it to its result.",
    spec: jobTaskSpecSchema,
    status: jobTaskStatusSchema,
    rootRules: [],
    columns: JOBTASK_COLUMNS,
  },
];

/** The root OpenAPI schema of a kind, with documented defaults (for the reference). */
export function rootSchemaOf(kind: KindDefinition): JsonSchema {
  const root: JsonSchema = {
    type: "object",
    description: kind.description,
    required: ["spec"],
    properties: {
      apiVersion: { type: "string", description: "`jobchain.dev/v1alpha1`." },
      kind: { type: "string", description: `\`${kind.resource.kind}\`.` },
      metadata: { type: "object" },
      spec: crdSchemaOf(kind.spec, "spec"),
      status: crdSchemaOf(kind.status, "status"),
    },
  };
  if (kind.rootRules.length > 0) root["x-kubernetes-validations"] = kind.rootRules;
  return root;
}

export function kindDefinitions(): readonly KindDefinition[] {
  return KINDS;
}
export type { KindDefinition };

function crdOf(kind: KindDefinition): JsonSchema {
  const { plural, kind: kindName } = kind.resource;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${GROUP}`, labels: { "app.kubernetes.io/name": "jobchain", "app.kubernetes.io/part-of": "jobchain" } },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: { plural, singular: kind.singular, kind: kindName, listKind: `${kindName}List`, shortNames: [kind.shortName], categories: [CATEGORY] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: kind.columns,
          schema: { openAPIV3Schema: stripDocKeys(rootSchemaOf(kind)) },
        },
      ],
    },
  };
}

/** The two CustomResourceDefinition objects (JobGraph, JobTask), as `make crds` writes them to crds/. */
export function crdManifests(): object[] {
  return KINDS.map(crdOf);
}
