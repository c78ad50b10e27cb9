// The tracing configuration file (JOBCHAIN_OT_CONFIG): its schema and its reader.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import { ConfigError } from "./errors.ts";

const tracingConfigSchema = z.strictObject({
  exporter: z.enum(["console", "file", "otlp", "none"]).default("file"),
  service_name: z.string().default("jobchain"),
  batch_processor: z
    .strictObject({
      max_queue_size: z.int().positive().default(2048),
      schedule_delay_millis: z.int().positive().default(1000),
    })
    .default({ max_queue_size: 2048, schedule_delay_millis: 1000 }),
  file_exporter: z
    .strictObject({
      path: z.string().default("~/.jobchain/otel_trace.jsonl"),
      max_size_bytes: z.int().positive().default(5 * 1024 * 1024),
      /** Rotated files kept beside the current one. */
      max_files: z.int().nonnegative().default(5),
      rotation_time_days: z.number().positive().optional(),
    })
    .default({ path: "~/.jobchain/otel_trace.jsonl", max_size_bytes: 5 * 1024 * 1024, max_files: 5 }),
  otlp: z.strictObject({ endpoint: z.string().optional(), headers: z.record(z.string(), z.string()).optional() }).optional(),
});
export type TracingConfig = z.infer<typeof tracingConfigSchema>;


/** Reads and checks a tracing configuration file. Throws ConfigError naming the file and field. */
export function readTracingConfig(file: string): TracingConfig {
  let data: unknown;
  try {
    data = parse(readFileSync(file, "utf8")) ?? {};
  } catch (err) {
    throw new ConfigError([{ file, path: [], message: `cannot read tracing config: ${(err as Error).message}` }]);
  }
  const parsed = tracingConfigSchema.safeParse(data);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({
        file,
        path: i.path as (string | number)[],
        message: i.message,
        hint: "see docs/observability.md for the tracing configuration",
      })),
    );
  }
  return parsed.data;
}
