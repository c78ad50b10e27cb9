// Distributed execution over NATS JetStream: runners that serve graph nodes, and the client that submits tasks.
export { Runner, type RunnerOptions } from "./runner.ts";
export { JobChainClient, type ClientOptions, type ClientSubmitOptions, type Submitted } from "./client.ts";
export { InstanceBus, describe, isUnavailable, whileUnavailable, type BusOptions, type GraphDescriptor } from "./bus.ts";
export { NatsSettingError, connectNats, connectionOptions, natsOptionsFromEnv, natsUrl, type NatsOptions } from "./connect.ts";
export { JetStreamPublisher, PublishRejectedError, PublishUnconfirmedError, type StoredAck } from "./publisher.ts";
export { namesFor, taskToken, taskIdOfToken, instanceToken, type InstanceNames } from "./naming.ts";
export { region, servedNodes, type Region } from "./topology.ts";
export { SharedRateLimiters } from "./ratelimit.ts";
export type { WorkEnvelope, ResultRecord } from "./envelope.ts";
export { writeRunnerReport, readRunnerReport, type RunnerReport } from "./report.ts";
export type { NodeProgress } from "./envelope.ts";
