// The Kubernetes operator: reconciles JobGraph and JobTask resources (jobchain.dev/v1alpha1).
export { startOperator, type Operator, type OperatorOptions } from "./operator.ts";
export { planGraph, type GraphPlan, type PoolPlan } from "./graph/plan.ts";
export { FINALIZER } from "./controllers/graphs.ts";
export { traceIdOf } from "./controllers/tasks.ts";
export { RUNNER_SECURITY_CONTEXT, deploymentFor, configMapFor } from "./graph/resources.ts";
