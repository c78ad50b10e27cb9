// The peer: the same 3-job linear graph as a BullMQ flow. Each flow is three jobs on three queues, each a child
// of the next (step1 -> step2 -> step3), so BullMQ runs them in sequence; the processors are no-ops. Measured
// against a private local redis-server (no persistence) as three-step flows completed per second, including
// adding the flows, at a few worker concurrencies; the best is reported.
import type { BenchRow, BenchSuite } from "../types.ts";
import { trial, type Trial } from "./lib/bullmq-flow.ts";
import { startRedis } from "./lib/redis.ts";
import { fmtInt, rate } from "./lib/stats.ts";

const FLOWS = 5_000;
const WARMUP_FLOWS = 300;
const CONCURRENCIES = [10, 50, 100, 200];
const TRIAL_CAP_MS = 25_000;


const suite: BenchSuite = {
  name: "bullmq",
  async run() {
    const redis = await startRedis();
    try {
      const trials: Trial[] = [];
      for (const c of CONCURRENCIES) {
        await trial(redis, c, WARMUP_FLOWS, `warm-c${c}`, TRIAL_CAP_MS);
        trials.push(await trial(redis, c, FLOWS, `c${c}`, TRIAL_CAP_MS));
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
