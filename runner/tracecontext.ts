// W3C trace context (`traceparent`, `tracestate`) carried from process to process, so one trace spans every
// runner a task passes through: in message headers for a message of one task, inside each task's envelope in a
// batch message. Parsed and written here with the API package alone, so a runner without tracing loads no SDK.
import type { Context } from "@opentelemetry/api";
import { otelApi } from "../core/otel.ts";
import type { MsgHdrs } from "@nats-io/transport-node";

/** The two W3C trace context fields, as they travel. */
export interface TraceCarrier {
  traceparent: string;
  tracestate?: string | undefined;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The carrier of `ctx`'s span context, or undefined when it has no valid span. */
export function carrierOf(ctx: Context): TraceCarrier | undefined {
  const { trace } = otelApi();
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return undefined;
  const carrier: TraceCarrier = { traceparent: `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}` };
  const state = sc.traceState?.serialize();
  if (state) carrier.tracestate = state;
  return carrier;
}

/** The carrier in message headers, if any. */
export function carrierFromHeaders(headers: MsgHdrs | undefined): TraceCarrier | undefined {
  const traceparent = headers?.get("traceparent");
  if (!traceparent) return undefined;
  const tracestate = headers!.get("tracestate");
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/** Writes a carrier into message headers. */
export function writeTrace(carrier: TraceCarrier | undefined, headers: MsgHdrs): void {
  if (!carrier) return;
  headers.set("traceparent", carrier.traceparent);
  if (carrier.tracestate) headers.set("tracestate", carrier.tracestate);
}

/** The remote context a carrier names, or undefined when there is none (or a malformed one). */
export function extractTrace(carrier: TraceCarrier | undefined): Context | undefined {
  const m = carrier ? TRACEPARENT.exec(carrier.traceparent.trim()) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  const { trace, context } = otelApi();
  return trace.setSpanContext(context.active(), {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: parseInt(m[3]!, 16) & 1, // W3C "sampled" flag
    isRemote: true,
  });
}
