// Shapes of the configuration sections. These zod schemas are the single source of truth for the file
// format: the loader validates with them, and the CRD schema is generated from them.
import { z } from "zod";

/** Names of graphs, jobs and parameter groups: they become parts of ids, NATS subjects and resource names. */
export const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$/;
export const NAME_RULE = "at most 63 letters, digits, '_' and '-' (not starting with '-'), and not '__proto__'";
/** A valid name: the pattern, and not `__proto__`, which cannot be a key of a plain object. */
export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name) && name !== "__proto__";
}
export const nameSchema = z.string().refine(isValidName, `a name may contain only ${NAME_RULE}`);

export const backoffSchema = z.union([
  z.number().nonnegative(),
  z.strictObject({
    initial: z.number().nonnegative().optional(),
    factor: z.number().min(1).optional(),
    max: z.number().nonnegative().optional(),
    jitter: z.boolean().optional(),
  }),
]);

export const retrySchema = z.strictObject({
  attempts: z.int().min(1).max(1000),
  backoff: backoffSchema.optional(),
});

export const rateLimitSchema = z.strictObject({
  max: z.int().positive(),
  per: z.number().positive().optional(),
  key: z.string().min(1).optional(),
});

// The descriptions also document the JobGraph resource (docs/crd-reference.md is generated from them).
export const jobEntrySchema = z
  .strictObject({
    type: z.string().min(1).describe("The job class: a built-in job or one exported by the runner's job modules."),
    properties: z
      .record(z.string(), z.unknown())
      .nullish()
      .describe("The job's settings, passed to its constructor; `$name` placeholders take values from the parameters."),
    /** Seconds one attempt may take. */
    timeout: z.number().positive().optional().describe("Seconds one attempt may take."),
    retry: retrySchema.optional().describe("Attempts and backoff when the job fails."),
    concurrency: z.int().positive().optional().describe("Tasks one worker runs this job for at once."),
    rateLimit: rateLimitSchema.optional().describe("At most `max` starts per `per` seconds, optionally per `key`."),
    save_result: z.boolean().optional().describe("Keep this job's output in the task's saved results."),
  })
  .describe("A job: its class and settings.");
export type JobEntry = z.infer<typeof jobEntrySchema>;

export const jobsSectionSchema = z.record(nameSchema, jobEntrySchema);

/** A graph node: `{next: [..]}`; an empty value means a tail. `next` may also be a single name. */
export const graphNodeSchema = z
  .strictObject({ next: z.union([z.array(z.string()), z.string()]).nullish() })
  .nullish();
export const graphsSectionSchema = z.record(nameSchema, z.record(nameSchema, graphNodeSchema));

export const paramSetSchema = z.record(z.string(), z.unknown());
/** `graph: { group: { job: {param: value} | [{param: value}] } }` */
export const parametersSectionSchema = z.record(
  nameSchema,
  z.record(nameSchema, z.record(nameSchema, z.union([paramSetSchema, z.array(paramSetSchema)]))),
);

export const ALLOWED_JOB_FIELDS = Object.keys(jobEntrySchema.shape);

/** `graph: { pool: [job, ...] }`: which runner pool serves which nodes (default: one pool per graph). */
export const poolsSectionSchema = z.record(nameSchema, z.record(nameSchema, z.array(nameSchema)));
