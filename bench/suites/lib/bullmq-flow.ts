// One measurement of the BullMQ peer: three-step flows (three queues, each job a child of the next, no-op
// processors) added in bulk and run to completion against a local redis-server. Shared by the suites that report
// BullMQ figures, so they all measure the same thing.
import { FlowProducer, Worker, type FlowJob } from "bullmq";
import type { RedisServerHandle } from "./redis.ts";
import { now, sleep } from "./stats.ts";

const ADD_CHUNK = 250;

function flow(prefix: string, i: number): FlowJob {
  return {
    name: "step3",
    queueName: `${prefix}-q3`,
    data: { i },
    children: [
      {
        name: "step2",
        queueName: `${prefix}-q2`,
        data: { i },
        children: [{ name: "step1", queueName: `${prefix}-q1`, data: { i } }],
      },
    ],
  };
}

export interface Trial {
  concurrency: number;
  flows: number;
  ms: number;
}

/** Runs `n` flows with workers at `concurrency`; stops counting after `capMs`. */
export async function trial(redis: RedisServerHandle, concurrency: number, n: number, tag: string, capMs = 25_000): Promise<Trial> {
  const connection = { host: redis.host, port: redis.port, maxRetriesPerRequest: null };
  const prefix = `bench-${tag}`;
  let completed = 0;
  const noop = async () => null;
  const workers = [1, 2, 3].map(
    (k) => new Worker(`${prefix}-q${k}`, noop, { connection, concurrency, autorun: true }),
  );
  workers[2]!.on("completed", () => void completed++);
  let failed: unknown;
  for (const w of workers) w.on("failed", (_job, err) => void (failed ??= err));
  const producer = new FlowProducer({ connection });
  try {
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    await producer.waitUntilReady();
    const t0 = now();
    for (let i = 0; i < n; i += ADD_CHUNK) {
      const chunk: FlowJob[] = [];
      for (let j = i; j < Math.min(n, i + ADD_CHUNK); j++) chunk.push(flow(prefix, j));
      await producer.addBulk(chunk);
    }
    while (completed < n && failed === undefined && now() - t0 < capMs) await sleep(2);
    const ms = now() - t0;
    if (failed) throw failed;
    return { concurrency, flows: completed, ms };
  } finally {
    await producer.close();
    await Promise.all(workers.map((w) => w.close()));
  }
}

