// W3C trace context in NATS message headers, so one trace spans every runner a task passes through.
import { context as otContext, propagation, type Context } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { MsgHdrs } from "@nats-io/transport-node";

const propagator = new W3CTraceContextPropagator();

const setter = { set: (h: MsgHdrs, k: string, v: string) => h.set(k, v) };
const getter = {
  get: (h: MsgHdrs | undefined, k: string) => h?.get(k) || undefined,
  keys: (h: MsgHdrs | undefined) => (h ? [...h.keys()] : []),
};

/** Writes `ctx`'s span context (traceparent, tracestate) into `headers`. */
export function injectTrace(ctx: Context, headers: MsgHdrs): void {
  propagator.inject(ctx, headers, setter);
}

/** The context carried by `headers`, or undefined when they carry none. */
export function extractTrace(headers: MsgHdrs | undefined): Context | undefined {
  if (!headers?.get("traceparent")) return undefined;
  return propagator.extract(otContext.active(), headers, getter);
}

/** Copies trace headers from one message to the next, so downstream spans join the same trace. */
export function copyTrace(from: MsgHdrs | undefined, to: MsgHdrs): void {
  const tp = from?.get("traceparent");
  if (tp) to.set("traceparent", tp);
  const ts = from?.get("tracestate");
  if (ts) to.set("tracestate", ts);
}

export { propagation };
