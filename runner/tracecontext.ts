// W3C trace context (`traceparent`, `tracestate`) in NATS message headers, so one trace spans every runner a
// task passes through. Parsed and written here with the API package alone, so a runner without tracing loads
// no SDK.
import type { Context } from "@opentelemetry/api";
import { otelApi } from "../core/otel.ts";
import type { MsgHdrs } from "@nats-io/transport-node";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Writes `ctx`'s span context into `headers`. */
export function injectTrace(ctx: Context, headers: MsgHdrs): void {
  const { trace } = otelApi();
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return;
  headers.set("traceparent", `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`);
  const state = sc.traceState?.serialize();
  if (state) headers.set("tracestate", state);
}

/** The context carried by `headers`, or undefined when they carry none (or a malformed one). */
export function extractTrace(headers: MsgHdrs | undefined): Context | undefined {
  const tp = headers?.get("traceparent");
  const m = tp ? TRACEPARENT.exec(tp.trim()) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  const { trace, context } = otelApi();
  return trace.setSpanContext(context.active(), {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: parseInt(m[3]!, 16) & 1, // W3C "sampled" flag
    isRemote: true,
  });
}

/** Copies trace headers from one message to the next, so downstream spans join the same trace. */
export function copyTrace(from: MsgHdrs | undefined, to: MsgHdrs): void {
  const tp = from?.get("traceparent");
  if (tp) to.set("traceparent", tp);
  const ts = from?.get("tracestate");
  if (ts) to.set("tracestate", ts);
}
