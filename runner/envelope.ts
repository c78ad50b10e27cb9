// What travels in a work message and in a result message. JSON, with large bodies moved to the object store
// (claim check) so messages stay under the server's max_payload.
import { createHash } from "node:crypto";
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
  /** Runners announce each node's start and end for this task (JobTask resources show them). */
  progress?: true | undefined;
}

/** A node's turn for a task, announced on `<prefix>.progress.<task>` when the task asks for progress. */
export interface NodeProgress {
  id: string;
  node: string;
  phase: "Running" | "Succeeded" | "Failed";
  /** Epoch ms. */
  at: number;
  attempts?: number | undefined;
}

/** Several tasks for the same node in one message: fewer JetStream operations per task. */
export interface WorkBatch {
  v: 1;
  batch: WorkEnvelope[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The fields a runner relies on; anything else published on a node's subject is not a work message. */
export function isWorkEnvelope(v: unknown): v is WorkEnvelope {
  return (
    isRecord(v) &&
    v.v === 1 &&
    typeof v.id === "string" &&
    v.id !== "" &&
    typeof v.graph === "string" &&
    isRecord(v.inputs) &&
    typeof v.submitted === "number" &&
    (v.saved === undefined || isRecord(v.saved)) &&
    (v.deadline === undefined || typeof v.deadline === "number") &&
    (v.trace === undefined || isRecord(v.trace))
  );
}

/** A work message's body: one envelope, or a batch of at least one. */
export function isWorkBody(v: unknown): v is WorkEnvelope | WorkBatch {
  return isWorkEnvelope(v) || (isRecord(v) && v.v === 1 && Array.isArray(v.batch) && v.batch.length > 0 && v.batch.every(isWorkEnvelope));
}

export function isBatch(body: WorkEnvelope | WorkBatch): body is WorkBatch {
  return Array.isArray((body as WorkBatch).batch);
}

/** The tasks a work message carries: its batch, or the one envelope it is. */
export function tasksOf(body: WorkEnvelope | WorkBatch): WorkEnvelope[] {
  return isBatch(body) ? body.batch : [body];
}

/**
 * The message id of a batch, derived from its members' ids: the same batch sent again (after a crash) is
 * recognised as a duplicate, a batch of another make-up is not.
 */
export function batchId(memberIds: readonly string[]): string {
  return `batch:${createHash("sha256").update(memberIds.join("\u0000")).digest("base64url").slice(0, 32)}`;
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
