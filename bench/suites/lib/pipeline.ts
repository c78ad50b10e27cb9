// A raw 3-hop JetStream pipeline with no JobChain code: submit -> s1 -> s2 -> s3 -> result, four file work-queue
// streams, a connection per stage, each stage acking its input once its output is stored. The physical floor of
// the 3-runner layout; shared by the suites that report it.
// Payload: [task id, submit time, time the previous hop published] as float64s (performance.now() ms), padded.
import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsServerHandle } from "../../../test/harness/nats.ts";
import { now, sleep } from "./stats.ts";

const PAYLOAD = 128;
/** Hops a task makes: submit->stage1, stage1->stage2, stage2->stage3, stage3->result. */
export const HOPS = 4;

/** A work-queue stream with one durable consumer `worker`. */
export async function workQueue(jsm: JetStreamManager, name: string, subject: string): Promise<void> {
  await jsm.streams.add({ name, subjects: [subject], retention: RetentionPolicy.Workqueue, storage: StorageType.File });
  await jsm.consumers.add(name, { durable_name: "worker", ack_policy: AckPolicy.Explicit, ack_wait: nanos(30_000) });
}

export interface Pipeline {
  submit(id: number): Promise<unknown>;
  /** Per-hop latencies (ms) and end-to-end latencies recorded while `record` is set. */
  hops: number[];
  e2e: number[];
  record: boolean;
  completed: number;
  stop(): Promise<void>;
}

/**
 * Starts a pipeline whose streams and subjects are named after `prefix` (several can share a server). Each stage
 * and the submitter have a connection of their own, as separate runner processes would.
 */
export async function startPipeline(server: NatsServerHandle, prefix: string): Promise<Pipeline> {
  const subjects = ["s1", "s2", "s3", "result"].map((s) => `${prefix.toLowerCase()}.${s}`);
  const streams = ["S1", "S2", "S3", "RESULT"].map((s) => `${prefix}_${s}`);
  const conns: NatsConnection[] = [];
  const loops: Promise<void>[] = [];
  const closers: (() => Promise<void>)[] = [];
  const submitter = await connect({ ...server.connectOptions, name: `bench-${prefix}-submit` });
  conns.push(submitter);
  const js = jetstream(submitter);
  const jsm = await jetstreamManager(submitter);
  const p: Pipeline = {
    hops: [],
    e2e: [],
    record: false,
    completed: 0,
    submit(id: number) {
      const buf = new Uint8Array(PAYLOAD);
      const dv = new DataView(buf.buffer);
      const t = now();
      dv.setFloat64(0, id);
      dv.setFloat64(8, t);
      dv.setFloat64(16, t);
      return js.publish(subjects[0]!, buf);
    },
    async stop() {
      for (const c of closers) await c().catch(() => undefined);
      await Promise.allSettled(loops);
      for (const nc of conns) await nc.close().catch(() => undefined);
    },
  };
  try {
    for (let i = 0; i < streams.length; i++) await workQueue(jsm, streams[i]!, subjects[i]!);
    for (let stage = 0; stage < streams.length; stage++) {
      const nc = await connect({ ...server.connectOptions, name: `bench-${prefix}-stage${stage + 1}` });
      conns.push(nc);
      const sjs = jetstream(nc);
      const consumer = await sjs.consumers.get(streams[stage]!, "worker");
      const msgs = await consumer.consume({ max_messages: 1_000 });
      closers.push(async () => void (await msgs.close()));
      const next = subjects[stage + 1];
      loops.push(
        (async () => {
          for await (const m of msgs) {
            const t = now();
            const out = new Uint8Array(m.data);
            const dv = new DataView(out.buffer);
            if (p.record) p.hops.push(t - dv.getFloat64(16));
            if (next === undefined) {
              if (p.record) p.e2e.push(t - dv.getFloat64(8));
              p.completed++;
              m.ack();
              continue;
            }
            dv.setFloat64(16, now());
            // Hand-off: the input is acked only once the output is stored in the next stream.
            sjs.publish(next, out).then(
              () => m.ack(),
              () => m.nak(),
            );
          }
        })(),
      );
    }
  } catch (err) {
    await p.stop();
    throw err;
  }
  return p;
}

/** Runs `n` tasks keeping at most `inSystem` unfinished, for at most `capMs`; returns [completed, ms]. */
export async function pipelineFullLoad(p: Pipeline, n: number, inSystem: number, capMs: number): Promise<[number, number]> {
  const start = p.completed;
  const t0 = now();
  let submitted = 0;
  while (p.completed - start < n) {
    while (submitted < n && submitted - (p.completed - start) < inSystem) p.submit(submitted++).catch(() => {});
    if (now() - t0 > capMs) break;
    await sleep(0);
  }
  return [p.completed - start, now() - t0];
}

export interface PacedResult {
  submitted: number;
  /** Tasks not yet finished when the last one was submitted: a growing backlog means the rate is not sustained. */
  backlog: number;
}

/** Submits at `perSecond` (in 1 ms ticks) for `seconds`, then waits for the stragglers. */
export async function pipelinePaced(p: Pipeline, perSecond: number, seconds: number): Promise<PacedResult> {
  const start = p.completed;
  const total = Math.round(perSecond * seconds);
  const t0 = now();
  let submitted = 0;
  while (submitted < total) {
    const due = Math.min(total, Math.floor(((now() - t0) / 1000) * perSecond));
    while (submitted < due) p.submit(submitted++).catch(() => {});
    await sleep(1);
  }
  const backlog = total - (p.completed - start);
  const deadline = now() + 10_000;
  while (p.completed - start < total && now() < deadline) await sleep(5);
  return { submitted: total, backlog };
}
