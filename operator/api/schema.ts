// The JobGraph and JobTask resources (jobchain.dev/v1alpha1). These zod schemas are the source of truth: the
// operator parses with them, `make crds` generates the CRDs' OpenAPI schemas and CEL rules from them (crd.ts), and
// docs/crd-reference.md is generated from their descriptions. spec.jobs, spec.graph and spec.parameters reuse the
// configuration-file schemas of core/config, so a configuration directory moves to a cluster unchanged.
//
// Conventions of this file:
// - `.describe()` texts become the CRD descriptions and the reference; keep them user-facing.
// - `.meta({ "x-kubernetes-validations": [...] })` carries the CEL rules of a node; the same check is written in
//   TypeScript beside it (a refine), so the operator and `jobchain manifest` refuse what admission refuses.
// - `.meta({ [DOC_DEFAULT]: v })` documents a default the operator applies (not the apiserver: defaults written
//   into stored objects would change the spec hash the operator versions runners by).
// - Collections carry size limits: the apiserver's CEL cost estimator needs them to accept the rules.
import { z } from "zod";
import { graphsSectionSchema, jobsSectionSchema, nameSchema, NAME_PATTERN, NAME_RULE, parametersSectionSchema } from "../../core/config/schema.ts";

export const GROUP = "jobchain.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = "jobchain.dev/v1alpha1";
/** The short-name category of both kinds: `kubectl get jobchain`. */
export const CATEGORY = "jobchain";

/** Same shape as the operator's kube ResourceType. */
export const JOBGRAPHS = { group: GROUP, version: VERSION, plural: "jobgraphs", kind: "JobGraph", namespaced: true } as const;
export const JOBTASKS = { group: GROUP, version: VERSION, plural: "jobtasks", kind: "JobTask", namespaced: true } as const;

/** Labels on everything the operator creates. `app.kubernetes.io/managed-by` has the value MANAGED_BY. */
export const LABELS = { graph: "jobchain.dev/graph", pool: "jobchain.dev/pool", managedBy: "app.kubernetes.io/managed-by" } as const;
export const MANAGED_BY = "jobchain";

/** Results whose JSON is larger than this many bytes are not inlined in status.result; status.resultRef names them. */
export const RESULT_INLINE_LIMIT_BYTES = 8192;
/** Seconds a pool stays at its replicas after its backlog empties before scaling down (scaleDownDelaySeconds). */
export const DEFAULT_SCALE_DOWN_DELAY_SECONDS = 300;

/** Size limits of the collections (the CEL cost estimator multiplies them). */
export const LIMITS = {
  jobs: 256,
  next: 64,
  pools: 16,
  poolJobs: 128,
  groups: 64,
  params: 256,
  tolerations: 64,
  labels: 64,
  conditions: 16,
  imageLength: 512,
  urlLength: 1024,
} as const;

/** Key of `.meta()` for a default that the operator applies and the reference documents. */
export const DOC_DEFAULT = "x-jobchain-default";

/** The `x-kubernetes-validations` entry of a CRD node. */
export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
  fieldPath?: string;
  optionalOldSelf?: boolean;
}
const CEL = "x-kubernetes-validations";
function cel(...rules: CelRule[]): Record<string, CelRule[]> {
  return { [CEL]: rules };
}

// ---- names -----------------------------------------------------------------------------------------------------

/** A DNS-1123 label: what a JobGraph and a pool may be called, because they name Deployments and label values. */
export const DNS_LABEL_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS_LABEL_RULE = "at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit";
export const dnsLabelSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(DNS_LABEL_PATTERN, `must be ${DNS_LABEL_RULE}`);

/** Every key of a map is a job/group name (the pattern and length of core's nameSchema). */
const NAME_KEYS_CEL = `self.all(k, k.matches('${NAME_PATTERN.source}') && k != '__proto__')`;
function nameKeysRule(what: string): CelRule {
  return { rule: NAME_KEYS_CEL, message: `every ${what} name must be ${NAME_RULE}` };
}

/** Limits the number of keys of a record in both zod and the CRD (minProperties/maxProperties). */
function keyCount<T extends z.ZodType>(schema: T, min: number, max: number, what: string): T {
  const count = (v: unknown) => (typeof v === "object" && v !== null ? Object.keys(v).length : 0);
  return schema
    .refine((v) => count(v) >= min, `at least ${min} ${what}`)
    .refine((v) => count(v) <= max, `at most ${max} ${what}`)
    .meta(min > 0 ? { minProperties: min, maxProperties: max } : { maxProperties: max }) as T;
}

// ---- shared: Kubernetes shapes ---------------------------------------------------------------------------------

/** A resource.Quantity: an integer or a string like "500m", "1.5", "2Gi" (Kubernetes' own pattern). */
export const QUANTITY_PATTERN =
  /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;
export const quantitySchema = z
  .union([z.int().nonnegative(), z.string().regex(QUANTITY_PATTERN, "must be a Kubernetes quantity such as 500m, 1.5 or 2Gi")])
  .meta({ "x-kubernetes-int-or-string": true, description: "A Kubernetes quantity: an integer or a string such as `500m` or `2Gi`." });

const resourceListSchema = keyCount(z.record(z.string().min(1), quantitySchema), 0, LIMITS.labels, "resources");
export const resourcesSchema = z
  .strictObject({
    requests: resourceListSchema.optional().describe("Minimum resources of each runner container, e.g. `{cpu: 250m, memory: 256Mi}`."),
    limits: resourceListSchema.optional().describe("Maximum resources of each runner container."),
  })
  .describe("Compute resources of each runner container (as a container's `resources`).");

export const tolerationSchema = z
  .strictObject({
    key: z.string().max(316).optional().describe("Taint key the toleration applies to; empty with operator Exists matches every taint."),
    operator: z.enum(["Exists", "Equal"]).optional().describe("`Equal` (default) or `Exists`."),
    value: z.string().max(63).optional().describe("Taint value to match with operator Equal."),
    effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional().describe("Taint effect to match; empty matches every effect."),
    tolerationSeconds: z.int().optional().describe("For effect NoExecute: how long the pod stays bound after the taint appears."),
  })
  .describe("A Kubernetes pod toleration.");

// ---- conditions (metav1.Condition) -----------------------------------------------------------------------------

export const CONDITION_STATUSES = ["True", "False", "Unknown"] as const;
export type ConditionStatus = (typeof CONDITION_STATUSES)[number];
const isoTime = () => z.iso.datetime({ offset: true });

export const conditionSchema = z
  .strictObject({
    type: z
      .string()
      .max(316)
      .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/)
      .describe("Kind of condition in CamelCase: `Valid`, `Ready` (JobGraph), `Succeeded`, `Failed` (JobTask)."),
    status: z.enum(CONDITION_STATUSES).describe("`True`, `False` or `Unknown`."),
    observedGeneration: z.int().min(0).optional().describe("metadata.generation the condition was set for."),
    lastTransitionTime: isoTime().describe("When the condition last changed status."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe("Programmatic identifier of the condition's last transition, in CamelCase."),
    message: z.string().max(32768).describe("Human-readable details of the transition (may be empty)."),
  })
  .describe("A metav1.Condition.");
export type Condition = z.infer<typeof conditionSchema>;

/** A list of conditions, one per type (a list-map keyed by type, as Kubernetes' own types declare it). */
const conditionsSchema = z
  .array(conditionSchema)
  .max(LIMITS.conditions)
  .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] });

// ---- JobGraph ----------------------------------------------------------------------------------------------------

export const replicasSchema = z
  .strictObject({
    min: z.int().min(0).max(2147483647).describe("Fewest runner replicas; 0 lets the pool scale to zero when idle."),
    max: z.int().min(1).max(2147483647).describe("Most runner replicas the autoscaler may ask for."),
  })
  .refine((r) => r.min <= r.max, { message: "replicas.min must not exceed replicas.max", path: ["min"] })
  .meta(cel({ rule: "self.min <= self.max", message: "replicas.min must not exceed replicas.max", fieldPath: ".min" }))
  .describe("Bounds of the pool's autoscaling.");

export const poolSchema = z
  .strictObject({
    name: dnsLabelSchema.describe(`Pool name, unique in the graph: ${DNS_LABEL_RULE} (it names the pool's Deployment).`),
    jobs: z
      .array(nameSchema)
      .min(1)
      .max(LIMITS.poolJobs)
      .optional()
      .describe("Jobs of spec.jobs this pool runs. A pool without `jobs` runs every job no other pool names."),
    replicas: replicasSchema,
    scaleDownDelaySeconds: z
      .int()
      .min(0)
      .optional()
      .meta({ [DOC_DEFAULT]: DEFAULT_SCALE_DOWN_DELAY_SECONDS })
      .describe("Seconds without backlog before the pool scales down (to `replicas.min`, which may be 0)."),
    concurrency: z.int().min(1).optional().describe("Tasks each runner works on at once (the runner's default otherwise)."),
    resources: resourcesSchema.optional(),
    nodeSelector: keyCount(z.record(z.string(), z.string()), 0, LIMITS.labels, "node selector labels")
      .optional()
      .describe("Node labels the runner pods must match."),
    tolerations: z.array(tolerationSchema).max(LIMITS.tolerations).optional().describe("Tolerations of the runner pods."),
  })
  .describe("A runner pool: one Deployment running some of the graph's jobs.");
export type Pool = z.infer<typeof poolSchema>;

export const natsSchema = z
  .strictObject({
    url: z.string().min(1).max(LIMITS.urlLength).optional().describe("NATS server URL(s), comma-separated (the operator's default otherwise)."),
    secretRef: z
      .strictObject({ name: z.string().min(1).max(253).describe("Name of a Secret in the JobGraph's namespace.") })
      .optional()
      .describe("Secret holding the NATS credentials the runners use (keys as documented for the runner)."),
  })
  .describe("NATS connection of the graph's runners (the operator's defaults otherwise).");

/** One graphs.yaml entry. */
const graphEntrySchema = graphsSectionSchema.valueType;
/** One parameters.yaml entry: group → job → parameter set. */
const parametersEntrySchema = parametersSectionSchema.valueType;

/** The graph's node names. */
function nodeNames(graph: Record<string, unknown>): Set<string> {
  return new Set(Object.keys(graph));
}
/** The `next` of a node in either file form (a name, a list, null/absent). */
export function nextOf(node: unknown): string[] {
  if (typeof node !== "object" || node === null) return [];
  const next = (node as { next?: unknown }).next;
  if (typeof next === "string") return [next];
  return Array.isArray(next) ? next.filter((n): n is string => typeof n === "string") : [];
}

// The cross-field rules of a JobGraph spec. Each is one CEL rule (message as given) and the same check in TypeScript.
// The CRD takes the canonical forms only (crd.ts says why): `next` as a list (`{next: [a, b]}`, or null/`{}` for a
// tail) and a job's parameters as a mapping. Configuration files and parseJobGraphSpec also take a single name and a
// list of one mapping; `jobchain manifest` writes the canonical forms.
const specRules = {
  graphJobsDefined: {
    rule: "self.graph.all(k, k in self.jobs)",
    message: "every node of spec.graph must be a job of spec.jobs",
    fieldPath: ".graph",
  },
  nextInGraph: {
    // A null node or a null `next` reads as absent in CEL, so has() covers both.
    rule: "self.graph.all(k, !has(self.graph[k].next) || self.graph[k].next.all(n, n in self.graph))",
    message: "every name in `next` must be a node of spec.graph",
    fieldPath: ".graph",
  },
  poolJobsDefined: {
    rule: "!has(self.pools) || self.pools.all(p, !has(p.jobs) || p.jobs.all(j, j in self.jobs))",
    message: "every job a pool names must be a job of spec.jobs",
    fieldPath: ".pools",
  },
  poolJobsOnce: {
    rule: "!has(self.pools) || self.pools.all(p, !has(p.jobs) || p.jobs.all(j, self.pools.filter(q, has(q.jobs) && j in q.jobs).size() == 1))",
    message: "a job may be named by one pool only",
    fieldPath: ".pools",
  },
  oneDefaultPool: {
    rule: "!has(self.pools) || self.pools.filter(p, !has(p.jobs)).size() <= 1",
    message: "at most one pool may omit `jobs` (it runs every job no other pool names)",
    fieldPath: ".pools",
  },
  parameterJobsInGraph: {
    rule: "!has(self.parameters) || self.parameters.all(g, self.parameters[g].all(j, j in self.graph))",
    message: "every job named in spec.parameters must be a node of spec.graph",
    fieldPath: ".parameters",
  },
} as const satisfies Record<string, CelRule>;

function checkSpec(spec: JobGraphSpecShape, ctx: z.RefinementCtx): void {
  const jobs = new Set(Object.keys(spec.jobs));
  const nodes = nodeNames(spec.graph);
  const missing = [...nodes].filter((k) => !jobs.has(k));
  for (const k of missing) ctx.addIssue({ code: "custom", path: ["graph", k], message: `'${k}' is not a job of spec.jobs` });
  for (const [k, node] of Object.entries(spec.graph)) {
    nextOf(node).forEach((n, i) => {
      if (!nodes.has(n)) ctx.addIssue({ code: "custom", path: ["graph", k, "next", i], message: `'${n}' is not a node of spec.graph` });
    });
  }
  const pools = spec.pools ?? [];
  const seenPool = new Set<string>();
  const poolOf = new Map<string, string>();
  let defaults = 0;
  pools.forEach((p, i) => {
    if (seenPool.has(p.name)) ctx.addIssue({ code: "custom", path: ["pools", i, "name"], message: `pool name '${p.name}' is used twice` });
    seenPool.add(p.name);
    if (p.jobs === undefined) defaults++;
    p.jobs?.forEach((j, ji) => {
      if (!jobs.has(j)) ctx.addIssue({ code: "custom", path: ["pools", i, "jobs", ji], message: `'${j}' is not a job of spec.jobs` });
      const other = poolOf.get(j);
      if (other !== undefined && other !== p.name) {
        ctx.addIssue({ code: "custom", path: ["pools", i, "jobs", ji], message: `'${j}' is also named by pool '${other}'` });
      }
      poolOf.set(j, p.name);
    });
  });
  if (defaults > 1) ctx.addIssue({ code: "custom", path: ["pools"], message: specRules.oneDefaultPool.message });
  for (const [group, perJob] of Object.entries(spec.parameters ?? {})) {
    for (const job of Object.keys(perJob)) {
      if (!nodes.has(job)) ctx.addIssue({ code: "custom", path: ["parameters", group, job], message: `'${job}' is not a node of spec.graph` });
    }
  }
}

const jobGraphSpecShape = z.strictObject({
  jobs: keyCount(jobsSectionSchema, 1, LIMITS.jobs, "jobs")
    .meta(cel(nameKeysRule("job")))
    .describe("The jobs of this graph, exactly as in a jobs.yaml: `name: {type, properties, timeout, retry, concurrency, rateLimit, save_result}`."),
  graph: keyCount(graphEntrySchema, 1, LIMITS.jobs, "graph nodes")
    .meta(cel(nameKeysRule("node")))
    .describe("The edges, exactly as one graphs.yaml entry: `job: {next: [job, ...]}`; a tail has `next: []`, `{}` or no value."),
  parameters: keyCount(parametersEntrySchema, 0, LIMITS.groups, "parameter groups")
    .meta(cel(nameKeysRule("group")))
    .optional()
    .describe("Parameter groups, exactly as one parameters.yaml entry: `group: {job: {param: value}}`; one graph instance per group."),
  image: z.string().min(1).max(LIMITS.imageLength).optional().describe("Runner image (the operator's default runner image otherwise)."),
  pools: z
    .array(poolSchema)
    .max(LIMITS.pools)
    .optional()
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
    .describe("Runner pools (default: one pool running every job)."),
  nats: natsSchema.optional(),
});
type JobGraphSpecShape = z.infer<typeof jobGraphSpecShape>;

export const jobGraphSpecSchema = jobGraphSpecShape
  .superRefine(checkSpec)
  .meta(cel(...Object.values(specRules)))
  .describe("What to run: the jobs, their graph, parameter groups, and the runner pools.");
export type JobGraphSpec = z.infer<typeof jobGraphSpecSchema>;

export const poolStatusSchema = z
  .strictObject({
    name: z.string().describe("Pool name."),
    replicas: z.int().min(0).describe("Runner pods that exist."),
    readyReplicas: z.int().min(0).describe("Runner pods that are ready."),
    desiredReplicas: z.int().min(0).describe("Replicas the autoscaler last asked for."),
    backlog: z.int().min(0).describe("Tasks waiting or in flight on the pool's consumers."),
  })
  .describe("One pool as the operator last saw it.");
export type PoolStatus = z.infer<typeof poolStatusSchema>;

export const graphVersionSchema = z.strictObject({
  hash: z.string().describe("Hash of the spec this version runs."),
  instances: z.array(z.string()).max(LIMITS.groups).optional().describe("Graph instance ids (`graph/group`) of this version."),
  draining: z.boolean().describe("True for an old version that finishes its accepted tasks and is then removed."),
  since: isoTime().optional().describe("When this version started (or, when draining, started draining)."),
  backlog: z.int().min(0).optional().describe("Tasks this version still has to finish."),
});
export type GraphVersion = z.infer<typeof graphVersionSchema>;

export const jobGraphStatusSchema = z
  .strictObject({
    observedGeneration: z.int().min(0).optional().describe("metadata.generation the status describes."),
    conditions: conditionsSchema.optional().describe("`Valid` (the spec's problems, all named) and `Ready` (every pool can serve)."),
    pools: z
      .array(poolStatusSchema)
      .max(LIMITS.pools)
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
      .optional()
      .describe("Replicas and backlog of each pool."),
    poolsReady: z.string().optional().describe("Ready/desired runner replicas over all pools, e.g. `3/4` (a printer column)."),
    backlog: z.int().min(0).optional().describe("Sum of the pools' backlogs (a printer column)."),
    heads: z.array(z.string()).max(LIMITS.jobs).optional().describe("Jobs without predecessors (where tasks enter)."),
    tails: z.array(z.string()).max(LIMITS.jobs).optional().describe("Jobs without successors (whose outputs are the result)."),
    instances: z.array(z.string()).max(LIMITS.groups).optional().describe("Graph instance ids (`graph/group`) tasks are submitted to."),
    version: z.string().optional().describe("Hash of the spec new tasks run on."),
    versions: z.array(graphVersionSchema).max(16).optional().describe("Every version still running: the current one and draining ones."),
  })
  .describe("What the operator observed and did.");
export type JobGraphStatus = z.infer<typeof jobGraphStatusSchema>;

// ---- JobTask -----------------------------------------------------------------------------------------------------

export const TASK_PHASES = ["Pending", "Running", "Succeeded", "Failed"] as const;
export type TaskPhase = (typeof TASK_PHASES)[number];

export const IMMUTABLE_SPEC_MESSAGE = "spec is immutable: create a new JobTask";

export const jobTaskSpecSchema = z
  .strictObject({
    graph: dnsLabelSchema.describe("Name of the JobGraph (in the same namespace) that runs the task."),
    group: nameSchema.optional().describe("Parameter group of the graph; required when the graph has several groups."),
    input: z.record(z.string(), z.unknown()).describe("The task: any JSON object, as a line of a tasks file."),
    timeoutSeconds: z.number().positive().optional().describe("Seconds the whole task may take before it fails."),
    ttlSecondsAfterFinished: z.int().min(0).optional().describe("Seconds after finishing before the JobTask is deleted (kept otherwise)."),
  })
  .meta(cel({ rule: "self == oldSelf", message: IMMUTABLE_SPEC_MESSAGE }))
  .describe(`What to run; immutable after creation.`);
export type JobTaskSpec = z.infer<typeof jobTaskSpecSchema>;

export const nodeStatusSchema = z.strictObject({
  phase: z.enum(TASK_PHASES).describe("Phase of this job for the task."),
  attempts: z.int().min(0).optional().describe("Attempts made so far."),
  startTime: isoTime().optional().describe("When the first attempt started."),
  completionTime: isoTime().optional().describe("When the job finished."),
});
export type NodeStatus = z.infer<typeof nodeStatusSchema>;

export const jobTaskStatusSchema = z
  .strictObject({
    phase: z.enum(TASK_PHASES).optional().describe("`Pending`, `Running`, `Succeeded` or `Failed`."),
    progress: z.string().optional().describe("`<jobs done>/<jobs in graph>`, e.g. `2/5`."),
    nodes: keyCount(z.record(z.string(), nodeStatusSchema), 0, LIMITS.jobs, "nodes").optional().describe("Per job: phase, attempts and times."),
    result: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(`The task's result as \`jobchain run\` prints it, when its JSON is at most ${RESULT_INLINE_LIMIT_BYTES} bytes.`),
    resultRef: z
      .strictObject({
        instance: z.string().describe("Graph instance id (`graph/group`)."),
        taskId: z.string().describe("Task id."),
      })
      .optional()
      .describe(`Where a result larger than ${RESULT_INLINE_LIMIT_BYTES} bytes is stored: \`jobchain results\` reads it.`),
    error: z
      .strictObject({
        job: z.string().optional().describe("The job that failed."),
        message: z.string().describe("What went wrong."),
      })
      .optional()
      .describe("Why the task failed."),
    startTime: isoTime().optional().describe("When the task started running."),
    completionTime: isoTime().optional().describe("When the task finished."),
    traceId: z.string().optional().describe("OpenTelemetry trace id of the task."),
    conditions: conditionsSchema.optional().describe("`Succeeded` and `Failed`, for `kubectl wait --for=condition=...`."),
    observedGeneration: z.int().min(0).optional().describe("metadata.generation the status describes."),
    instance: z.string().optional().describe("Graph instance id (`graph/group`) the task was submitted to."),
    taskId: z.string().optional().describe("Task id on NATS (derived from the resource's uid)."),
    submitted: z.boolean().optional().describe("True once the task was submitted over NATS."),
  })
  .describe("Progress and outcome of the task.");
export type JobTaskStatus = z.infer<typeof jobTaskStatusSchema>;

// ---- the resources -----------------------------------------------------------------------------------------------

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
  [key: string]: unknown;
}

export interface JobGraph {
  apiVersion: typeof API_VERSION;
  kind: "JobGraph";
  metadata: ObjectMeta;
  spec: JobGraphSpec;
  status?: JobGraphStatus;
}

export interface JobTask {
  apiVersion: typeof API_VERSION;
  kind: "JobTask";
  metadata: ObjectMeta;
  spec: JobTaskSpec;
  status?: JobTaskStatus;
}

// Metadata rules of a JobGraph (the root node's CEL: structural schemas allow no other metadata constraints).
export const jobGraphRootRules: CelRule[] = [
  {
    rule: `self.metadata.name.size() <= 63 && self.metadata.name.matches('${DNS_LABEL_PATTERN.source}')`,
    message: `a JobGraph name must be ${DNS_LABEL_RULE}: it names the graph, its Deployments and the ${LABELS.graph} label`,
  },
];
