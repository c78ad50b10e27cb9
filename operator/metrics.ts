// The operator's own metrics, beside those the machinery records (queues, reconciles, client requests, watches).
import { Registry, type Counter, type Gauge, type Histogram } from "./kube/index.ts";

export interface OperatorMetrics {
  registry: Registry;
  /** Seconds from a JobTask's creation to its end, by outcome. */
  taskLatency: Histogram;
  scaleDecisions: Counter;
  statusWrites: Counter;
  tasksInFlight: Gauge;
  leader: Gauge;
}

export function operatorMetrics(registry = new Registry()): OperatorMetrics {
  return {
    registry,
    taskLatency: registry.histogram(
      "jobchain_jobtask_duration_seconds",
      "Seconds from a JobTask's creation to its Succeeded or Failed phase",
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      ["outcome"],
    ),
    scaleDecisions: registry.counter("jobchain_scale_decisions_total", "Replica changes the autoscaler made", ["direction"]),
    statusWrites: registry.counter("jobchain_jobtask_status_writes_total", "Status patches written for JobTasks"),
    tasksInFlight: registry.gauge("jobchain_jobtasks_in_flight", "JobTasks submitted and not yet finished"),
    leader: registry.gauge("jobchain_operator_leader", "1 while this operator is the leader"),
  };
}
