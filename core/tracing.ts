// OpenTelemetry tracing, configured by the YAML file named in JOBCHAIN_OT_CONFIG. Off by default; when off,
// the engine never touches the OpenTelemetry API and the SDK is never loaded, so tracing costs nothing.
// The configuration lives in tracing-config.ts, shared with the SDK side (tracing-sdk.ts), so the two modules
// depend on it and never on each other.
import type { Tracer } from "@opentelemetry/api";
import { importOptional } from "./optional.ts";
import { readTracingConfig } from "./tracing-config.ts";

export { readTracingConfig, type TracingConfig } from "./tracing-config.ts";

/** The OpenTelemetry SDK packages tracing loads: optional peer dependencies of jobchain, installed by whoever traces. */
const TRACING_SDK = ["@opentelemetry/sdk-trace-base", "@opentelemetry/resources", "@opentelemetry/core"] as const;

/** A running tracer and the way to flush and stop it. */
export interface Tracing {
  tracer: Tracer;
  shutdown(): Promise<void>;
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
  const { buildProvider } = await importOptional("tracing (JOBCHAIN_OT_CONFIG)", TRACING_SDK, () => import("./tracing-sdk.ts"));
  const provider = await buildProvider(config);
  return {
    tracer: provider.getTracer("jobchain"),
    shutdown: async () => {
      await provider.forceFlush();
      await provider.shutdown();
    },
  };
}
