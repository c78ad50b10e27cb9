// `{{path}}` templates over the task and inputs, for built-in jobs that build URLs and prompts.

/** Reads a dotted path (`task.url`, `inputs.fetch.body`) from `scope`. */
export function lookup(scope: unknown, dotted: string): unknown {
  let cur: unknown = scope;
  for (const part of dotted.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Replaces `{{ path }}` with values from `scope`; objects are inserted as JSON, missing values as "". */
export function render(template: string, scope: unknown): string {
  return template.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_, p: string) => {
    const v = lookup(scope, p);
    if (v === undefined || v === null) return "";
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  });
}
