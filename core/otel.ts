// The OpenTelemetry API, loaded on first use: only a process that traces pays for it.
import { createRequire } from "node:module";

type OtelApi = typeof import("@opentelemetry/api");
let api: OtelApi | undefined;

export function otelApi(): OtelApi {
  return (api ??= createRequire(import.meta.url)("@opentelemetry/api") as OtelApi);
}

/** `SpanStatusCode.ERROR` of the OpenTelemetry API (a stable value of the specification). */
export const SPAN_STATUS_ERROR = 2;
