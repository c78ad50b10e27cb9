// What travels in a work message and in a result message. JSON, with large bodies moved to the object store
// (claim check) so messages stay under the server's max_payload.
import type { JobOutput, TaskOutcome } from "../core/index.ts";
import type { TraceCarrier } from "./tracecontext.ts";

/** A message to one node: everything it needs to run for one task. */
export interface WorkEnvelope {
  v: 1;
  id: string;
  graph: string;
  /** The submitted task, unchanged. */
  task: unknown;
  /** Outputs of the node's predecessors (all of them), keyed by short name. Empty for heads. */
  inputs: Record<string, JobOutput>;
  /** Outputs kept by `save_result` along the way. */
  saved?: Record<string, JobOutput> | undefined;
  /** Epoch ms after which the task fails. */
  deadline?: number | undefined;
  /** Epoch ms of submission. */
  submitted: number;
  /** The task's trace context (in a batch message, where headers cannot carry one per task). */
  trace?: TraceCarrier | undefined;
}

/** Several tasks for the same node in one message: fewer JetStream operations per task. */
export interface WorkBatch {
  v: 1;
  batch: WorkEnvelope[];
}

export function isBatch(body: WorkEnvelope | WorkBatch): body is WorkBatch {
  return Array.isArray((body as WorkBatch).batch);
}

/** The fan-in state of one (task, node): inputs gathered so far. `done` once the node's message is out. */
export interface JoinState {
  inputs: Record<string, JobOutput>;
  saved?: Record<string, JobOutput> | undefined;
  done?: boolean | undefined;
  deadline?: number | undefined;
  submitted?: number | undefined;
  task?: unknown;
}

/** A recorded result: the outcome shape of the embedded engine, so every front end prints the same line. */
export type ResultRecord = TaskOutcome & { finished?: number };

/** Marks a body that was too large for a message and lives in the object store. */
export interface PayloadRef {
  $payload: string;
  size: number;
}

export function isPayloadRef(v: unknown): v is PayloadRef {
  return typeof v === "object" && v !== null && typeof (v as PayloadRef).$payload === "string";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson<T>(data: Uint8Array): T {
  return JSON.parse(decoder.decode(data)) as T;
}
