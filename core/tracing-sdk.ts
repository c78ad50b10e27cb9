// The OpenTelemetry SDK side of tracing: exporters and the provider. Imported only when tracing is on.
import { appendFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
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
import { importOptional } from "./optional.ts";
import type { TracingConfig } from "./tracing-config.ts";

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

/** A tracer provider exporting as `config` says. */
export async function buildProvider(config: TracingConfig): Promise<BasicTracerProvider> {
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
    const { OTLPTraceExporter } = await importOptional("the otlp tracing exporter", ["@opentelemetry/exporter-trace-otlp-http"], () =>
      import("@opentelemetry/exporter-trace-otlp-http"),
    );
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
  return provider;
}
