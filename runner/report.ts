// What a runner started by the operator reports about itself: that it serves its pool, or why it cannot (a
// job type its image lacks, a configuration it cannot load). The operator shows it in the JobGraph's status.
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { decodeJson, encodeJson } from "./envelope.ts";
import { RUNNERS_BUCKET } from "./naming.ts";

export interface RunnerReport {
  ok: boolean;
  /** Why the runner cannot serve (each problem names the job or field). */
  problems?: string[] | undefined;
  /** Nodes served, as `graph:node`. */
  served?: string[] | undefined;
  /** The pod (host name) that reported. */
  host?: string | undefined;
  /** Epoch ms. */
  at: number;
}

/** Keys are `<graph id>.<pool>`; only the latest report of each is kept, for a day. */
async function bucket(nc: NatsConnection) {
  return new Kvm(jetstream(nc)).create(RUNNERS_BUCKET, { history: 1, ttl: 86_400_000 });
}

export async function writeRunnerReport(nc: NatsConnection, key: string, report: RunnerReport): Promise<void> {
  await (await bucket(nc)).put(key, encodeJson(report));
}

export async function readRunnerReport(nc: NatsConnection, key: string): Promise<RunnerReport | undefined> {
  const e = await (await bucket(nc)).get(key);
  return e && e.operation === "PUT" ? decodeJson<RunnerReport>(e.value) : undefined;
}
