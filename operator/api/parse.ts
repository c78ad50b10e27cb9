// Parsing specs read from the API (or built by `jobchain manifest`): every problem at once, each naming its field
// path the way the apiserver does (`spec.pools[1].replicas.min`), never a throw — the operator reports problems in
// the JobGraph's `Valid` condition.
import type { z } from "zod";
import { jobGraphSpecSchema, jobTaskSpecSchema, type JobGraphSpec, type JobTaskSpec } from "./schema.ts";

export type ParseResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `spec.pools[1].replicas.min`; map keys that are not identifiers in brackets: `spec.jobs[my-job]`. */
export function fieldPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else if (typeof p === "string" && IDENTIFIER.test(p)) out += `.${p}`;
    else out += `[${String(p)}]`;
  }
  return out;
}

/** What the fields with several accepted forms accept (zod says only "Invalid input" for a union). */
const FORMS: Record<string, string> = {
  backoff: "must be a number of seconds or {initial, factor, max, jitter}",
  next: "must be a list of job names (or one name)",
};

function problemsOf(error: z.ZodError, root: string): string[] {
  const out: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push(`${fieldPath(root, [...issue.path, key])}: unknown field`);
      continue;
    }
    const last = issue.path[issue.path.length - 1];
    const form = issue.code === "invalid_union" && typeof last === "string" ? FORMS[last] : undefined;
    out.push(`${fieldPath(root, issue.path)}: ${form ?? issue.message}`);
  }
  return [...new Set(out)];
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, root: string): ParseResult<T> {
  try {
    const r = schema.safeParse(value);
    return r.success ? { ok: true, value: r.data } : { ok: false, problems: problemsOf(r.error, root) };
  } catch (err) {
    // zod does not throw on bad data; this keeps a bug in a refinement from stopping the operator.
    return { ok: false, problems: [`${root}: could not be checked: ${err instanceof Error ? err.message : String(err)}`] };
  }
}

/** Checks a JobGraph spec: shapes and the cross-field rules the CRD's CEL rules also enforce. */
export function parseJobGraphSpec(spec: unknown): ParseResult<JobGraphSpec> {
  return parseWith(jobGraphSpecSchema, spec, "spec");
}

/** Checks a JobTask spec. */
export function parseJobTaskSpec(spec: unknown): ParseResult<JobTaskSpec> {
  return parseWith(jobTaskSpecSchema, spec, "spec");
}
