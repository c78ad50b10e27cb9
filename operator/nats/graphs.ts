// The operator's side of NATS: it creates each graph version's streams and consumers before any runner starts
// (so JobTasks and `jobchain submit` are accepted while a pool is scaled to zero), publishes the descriptors
// clients look graphs up by (the version's own id and the alias `<namespace>_<name>`), reads backlogs for the
// scaler and what runners reported, and removes a version's streams once it has drained.
import type { NatsConnection } from "@nats-io/transport-node";
import { InstanceBus, describe, readRunnerReport, type BusOptions, type RunnerReport } from "../../runner/index.ts";
import type { GraphPlan, PoolPlan } from "../graph/plan.ts";

export interface PoolBacklog {
  /** Messages waiting plus delivered and not yet acknowledged. */
  backlog: number;
  /** Acknowledged deliveries so far (a counter, for the rate). */
  acknowledged: number;
}

/** Creates what a version needs in NATS and publishes its descriptors. Idempotent. */
export async function ensureVersion(nc: NatsConnection, plan: GraphPlan, bus: BusOptions = {}): Promise<void> {
  for (const instance of plan.instances) {
    const b = await InstanceBus.open(nc, instance.id, bus, { nodes: instance.nodes.map((n) => n.name), update: false });
    const d = describe(instance);
    await b.publishDescriptor(d);
    await b.publishDescriptor(d, instance.group === undefined ? plan.alias : `${plan.alias}/${instance.group}`);
  }
}

/** The backlog of a pool's consumers over every instance (parameter group) of a version. */
export async function poolBacklog(nc: NatsConnection, graphIds: string[], nodes: string[]): Promise<PoolBacklog> {
  let backlog = 0;
  let acknowledged = 0;
  for (const id of graphIds) {
    const b = await InstanceBus.open(nc, id);
    for (const node of nodes) {
      try {
        const info = await b.backlog(node);
        backlog += info.pending + info.ackPending;
        acknowledged += info.acknowledged;
      } catch {
        // no consumer (yet): nothing waits for it
      }
    }
  }
  return { backlog, acknowledged };
}

/**
 * Tasks an instance's work streams still hold: a work-queue stream keeps a message until it is acknowledged, so
 * this counts everything waiting or in flight on every node, whatever nodes that version had.
 */
export async function streamBacklog(nc: NatsConnection, graphIds: string[]): Promise<number> {
  let n = 0;
  for (const id of graphIds) {
    const b = await InstanceBus.open(nc, id);
    try {
      n += (await b.jsm.streams.info(b.names.stream)).state.messages;
    } catch {
      // no stream: nothing left
    }
  }
  return n;
}

export function runnerReport(nc: NatsConnection, plan: GraphPlan, pool: PoolPlan): Promise<RunnerReport | undefined> {
  return readRunnerReport(nc, `${plan.graphId}.${pool.name}`).catch(() => undefined);
}

/** Removes every stream and bucket of the given instances (a drained version, or a deleted JobGraph). */
export async function removeInstances(nc: NatsConnection, instanceIds: string[]): Promise<void> {
  for (const id of instanceIds) await InstanceBus.cleanup(nc, id);
}
