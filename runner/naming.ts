// Names of everything a graph instance uses in NATS. Documented in docs/nats.md; the operator computes the same
// names from the same functions.
//
//   stream   JC_<graph>[__<group>]            work queue; subject jc.<graph>.<group|->.node.<node>
//   stream   JC_<graph>[__<group>]_RESULTS    one message per task: jc.<graph>.<group|->.result.<task>
//   subject  jc.<graph>.<group|->.done.<task>  a recorded result, announced (core NATS) once the stream has it
//   kv       JC_<graph>[__<group>]_JOIN       fan-in state: <task>.<node>
//   objects  JC_<graph>[__<group>]_PAYLOADS   payloads too large for a message
//   consumer node_<node>                      durable, on the work stream, one per graph node
//   kv       JC_GRAPHS                        graph descriptors published by runners: <stream name>
//   kv       JC_RATELIMITS                    shared token buckets
//   kv       JC_RUNNERS                       what runners report when they start: <graph>.<pool>
//   subject  jc.<graph>.<group|->.progress.<task>  node starts and ends of a task that asks for them (core NATS)

/** Graph, job and group names are [A-Za-z0-9_-], so they are valid in stream names and subject tokens. */
export function instanceToken(instanceId: string): string {
  const [graph, group] = instanceId.split("/");
  return group === undefined ? graph! : `${graph}__${group}`;
}

export interface InstanceNames {
  instance: string;
  stream: string;
  resultsStream: string;
  joinBucket: string;
  payloadBucket: string;
  /** `jc.<graph>.<group|->` */
  subjectPrefix: string;
  nodeSubject(node: string): string;
  resultSubject(taskId: string): string;
  /** Filter of all node subjects. */
  nodeWildcard: string;
  resultWildcard: string;
  /** Where a recorded result is announced to waiting clients (core NATS, not stored). */
  doneSubject(taskId: string): string;
  doneWildcard: string;
  progressSubject(taskId: string): string;
  progressWildcard: string;
  consumer(node: string): string;
  joinKey(taskId: string, node: string): string;
}

export const GRAPHS_BUCKET = "JC_GRAPHS";
export const RATELIMIT_BUCKET = "JC_RATELIMITS";
export const RUNNERS_BUCKET = "JC_RUNNERS";
/** The virtual node that joins several tails into one result. */
export const RESULT_NODE = "__result";

/**
 * A task id as one subject token: ids made of [A-Za-z0-9_-] are used as they are, others (dots, spaces,
 * unicode, ...) as `~` + base64url, so any id is safe in a subject and a KV key.
 */
export function taskToken(id: string): string {
  return /^[A-Za-z0-9_-]{1,200}$/.test(id) ? id : `~${Buffer.from(id, "utf8").toString("base64url")}`;
}

/** The task id a subject token stands for (the inverse of taskToken). */
export function taskIdOfToken(token: string): string {
  return token.startsWith("~") ? Buffer.from(token.slice(1), "base64url").toString("utf8") : token;
}

export function namesFor(instanceId: string): InstanceNames {
  const [graph, group] = instanceId.split("/");
  const token = instanceToken(instanceId);
  const prefix = `jc.${graph}.${group ?? "-"}`;
  return {
    instance: instanceId,
    stream: `JC_${token}`,
    resultsStream: `JC_${token}_RESULTS`,
    joinBucket: `JC_${token}_JOIN`,
    payloadBucket: `JC_${token}_PAYLOADS`,
    subjectPrefix: prefix,
    nodeSubject: (node) => `${prefix}.node.${node}`,
    resultSubject: (taskId) => `${prefix}.result.${taskToken(taskId)}`,
    nodeWildcard: `${prefix}.node.*`,
    resultWildcard: `${prefix}.result.*`,
    doneSubject: (taskId) => `${prefix}.done.${taskToken(taskId)}`,
    doneWildcard: `${prefix}.done.*`,
    progressSubject: (taskId) => `${prefix}.progress.${taskToken(taskId)}`,
    progressWildcard: `${prefix}.progress.*`,
    consumer: (node) => `node_${node}`,
    joinKey: (taskId, node) => `${taskToken(taskId)}.${node}`,
  };
}
