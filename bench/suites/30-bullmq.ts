// The peer: the same 3-job linear graph as a BullMQ flow. Each flow is three jobs on three queues, each a child
// of the next (step1 -> step2 -> step3), so BullMQ runs them in sequence; the processors are no-ops. Measured
// against a private local redis-server (no persistence) as three-step flows completed per second, including
// adding the flows, at a few worker concurrencies; the best is reported.
import { FlowProducer, Worker, type FlowJob } from "bullmq";
import type { BenchRow, BenchSuite } from "../types.ts";
import { startRedis, type RedisServerHandle } from "./lib/redis.ts";
import { now, rate, sleep } from "./lib/stats.ts";

const FLOWS = 5_000;
const WARMUP_FLOWS = 300;
const CONCURRENCIES = [10, 50, 100, 200];
const ADD_CHUNK = 250;
const TRIAL_CAP_MS = 25_000;

const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");

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

interface Trial {
  concurrency: number;
  flows: number;
  ms: number;
}

async function trial(redis: RedisServerHandle, concurrency: number, n: number, tag: string): Promise<Trial> {
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
    while (completed < n && failed === undefined && now() - t0 < TRIAL_CAP_MS) await sleep(2);
    const ms = now() - t0;
    if (failed) throw failed;
    return { concurrency, flows: completed, ms };
  } finally {
    await producer.close();
    await Promise.all(workers.map((w) => w.close()));
  }
}

const suite: BenchSuite = {
  name: "bullmq",
  async run() {
    const redis = await startRedis();
    try {
      const trials: Trial[] = [];
      for (const c of CONCURRENCIES) {
        await trial(redis, c, WARMUP_FLOWS, `warm-c${c}`);
        trials.push(await trial(redis, c, FLOWS, `c${c}`));
      }
      const rated = trials.map((t) => ({ ...t, perSec: rate(t.flows, t.ms) }));
      const best = rated.reduce((a, b) => (b.perSec > a.perSec ? b : a));
      const others = rated
        .filter((t) => t !== best)
        .map((t) => `c=${t.concurrency}: ${fmtInt(t.perSec)}/s`)
        .join(", ");
      const capped = best.flows < FLOWS ? ` (time-capped: ${fmtInt(best.flows)} of ${fmtInt(FLOWS)})` : "";
      const rows: BenchRow[] = [
        {
          name: "BullMQ FlowProducer, 3-step linear flow",
          value: best.perSec,
          unit: "flows/s",
          note:
            `${fmtInt(best.flows)} flows incl. adding, 3 workers at concurrency ${best.concurrency} (best; ${others}), ` +
            `no-op processors, local redis-server ${redis.version}${capped}`,
        },
        { name: "BullMQ 3-step flow, jobs processed", value: best.perSec * 3, unit: "jobs/s" },
      ];
      return rows;
    } finally {
      await redis.stop();
    }
  },
};
export default suite;
