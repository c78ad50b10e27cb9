// OpenTelemetry tracing, configured by the YAML file named in JOBCHAIN_OT_CONFIG. Off by default; when off,
// the engine never touches the OpenTelemetry API, so tracing costs nothing.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Tracer } from "@opentelemetry/api";
import { ExportResultCode, hrTimeToMicroseconds, type ExportResult } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { resourceFromAttributes } from "@opentelemetry/resources";
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

function expandHome(p: string): string {
  return p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}

/** Serialises a finished span as one JSON object (the original's field names, plus the duration). */
export function spanToJson(span: ReadableSpan): Record<string, unknown> {
  const ctx = span.spanContext();
  return {
    name: span.name,
    context: { trace_id: ctx.traceId, span_id: ctx.spanId },
    parent_id: span.parentSpanContext?.spanId ?? null,
    start_time: hrTimeToMicroseconds(span.startTime),
    end_time: hrTimeToMicroseconds(span.endTime),
    duration_us: hrTimeToMicroseconds(span.duration),
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, timestamp: hrTimeToMicroseconds(e.time), attributes: e.attributes ?? {} })),
    status: { status_code: span.status.code, description: span.status.message ?? null },
  };
}

/** Appends spans as JSON lines; rotates to `path.1`, `path.2`, ... when the file would pass `maxSize`. */
export class JsonLinesFileExporter implements SpanExporter {
  readonly file: string;
  private readonly maxSize: number;
  private readonly maxFiles: number;
  constructor(file: string, maxSize: number, maxFiles: number) {
    this.file = expandHome(file);
    this.maxSize = maxSize;
    this.maxFiles = maxFiles;
    mkdirSync(path.dirname(this.file), { recursive: true });
  }
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    try {
      const text = spans.map((s) => JSON.stringify(spanToJson(s))).join("\n") + "\n";
      const size = existsSync(this.file) ? statSync(this.file).size : 0;
      if (size > 0 && size + text.length > this.maxSize) this.rotate();
      appendFileSync(this.file, text);
      done({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      done({ code: ExportResultCode.FAILED, error: error as Error });
    }
  }
  private rotate(): void {
    if (this.maxFiles === 0) {
      rmSync(this.file, { force: true });
      return;
    }
    rmSync(`${this.file}.${this.maxFiles}`, { force: true });
    for (let i = this.maxFiles - 1; i >= 1; i--) {
      if (existsSync(`${this.file}.${i}`)) renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
    }
    renameSync(this.file, `${this.file}.1`);
  }
  async shutdown(): Promise<void> {}
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
  let processor: SpanProcessor;
  const batch = {
    maxQueueSize: config.batch_processor.max_queue_size,
    scheduledDelayMillis: config.batch_processor.schedule_delay_millis,
  };
  if (config.exporter === "console") {
    processor = new SimpleSpanProcessor(new ConsoleSpanExporter());
  } else if (config.exporter === "file") {
    const f = config.file_exporter;
    processor = new BatchSpanProcessor(new JsonLinesFileExporter(f.path, f.max_size_bytes, f.max_files), batch);
  } else {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    const exporter = new OTLPTraceExporter({
      ...(config.otlp?.endpoint ? { url: config.otlp.endpoint } : {}),
      ...(config.otlp?.headers ? { headers: config.otlp.headers } : {}),
    });
    processor = new BatchSpanProcessor(exporter, batch);
  }
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": process.env.OTEL_SERVICE_NAME ?? config.service_name }),
    spanProcessors: [processor],
  });
  return {
    tracer: provider.getTracer("jobchain"),
    shutdown: async () => {
      await provider.forceFlush();
      await provider.shutdown();
    },
  };
}
