// OpenTelemetry tracing, configured by the YAML file named in JOBCHAIN_OT_CONFIG. Off by default; when off,
// the engine never touches the OpenTelemetry API and the SDK is never loaded, so tracing costs nothing.
import { readFileSync } from "node:fs";
import type { Tracer } from "@opentelemetry/api";
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

/** A running tracer and the way to flush and stop it. */
export interface Tracing {
  tracer: Tracer;
  shutdown(): Promise<void>;
}

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

/**
 * Starts tracing when JOBCHAIN_OT_CONFIG names a configuration file (or `configFile` is given); resolves to
 * undefined when tracing is off.
 */
export async function setupTracing(configFile = process.env.JOBCHAIN_OT_CONFIG): Promise<Tracing | undefined> {
  if (!configFile) return undefined;
  const config = readTracingConfig(configFile);
  if (config.exporter === "none") return undefined;
  // The SDK is loaded only when tracing is on, so a process without tracing never pays for it.
  const { buildProvider } = await import("./tracing-sdk.ts");
  const provider = await buildProvider(config);
  return {
    tracer: provider.getTracer("jobchain"),
    shutdown: async () => {
      await provider.forceFlush();
      await provider.shutdown();
    },
  };
}
