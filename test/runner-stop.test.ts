// A runner stops when asked, within its drain timeout, even when its nats-server has gone away or a job ignores
// its abort signal; what it held unacknowledged is redelivered, so stopping loses nothing.
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startNats } from "./harness/nats.ts";
import { cli } from "./helpers/cli.ts";
import { mathConfig } from "./helpers/graphs.ts";
import { startRunner, type Proc } from "./helpers/procs.ts";
import { until } from "./helpers/until.ts";

let config: { dir: string; cleanup: () => void };
let procs: Proc[] = [];
const DRAIN_S = 2;
// The job of every task sleeps much longer than the drain timeout and ignores its abort signal.
const SLEEP_MS = 25_000;

beforeAll(() => {
  config = mathConfig();
});
afterAll(() => config?.cleanup());
afterEach(async () => {
  await Promise.all(procs.map((p) => p.kill("SIGKILL")));
  procs = [];
});

describe("runner stop", { timeout: 240_000 }, () => {
  for (const natsGone of [true, false]) {
    it(`stops on SIGTERM within its drain timeout${natsGone ? " after its nats-server was killed" : " while its jobs ignore their abort signal"}; what it held is redelivered`, async () => {
      await using nats = await startNats();
      const flags = ["--graph", "single", "--drain-timeout", String(DRAIN_S), "--ack-wait", "5"];
      const runner = await startRunner(config.dir, flags, nats.url);
      procs.push(runner);
      const ids = ["s0", "s1", "s2"];
      const tasks = ids.map((id, i) => JSON.stringify({ id, v: i, sleep_ms: SLEEP_MS }));
      const sub = await cli(["submit", "--graph", "single", "--no-wait", "--nats", nats.url, ...tasks.flatMap((t) => ["--input", t])]);
      expect(sub.code).toBe(0);
      const nc = await connect(nats.connectOptions);
      const jsm = await jetstreamManager(nc);
      await until(async () => (await jsm.consumers.info("JC_single", "node_a")).num_ack_pending === ids.length, 60_000, "the runner to hold every task");
      await nc.close();
      if (natsGone) await nats.kill();

      const asked = performance.now();
      const code = await runner.kill("SIGTERM");
      const seconds = (performance.now() - asked) / 1000;
      expect(code).toBe(0);
      expect(runner.stderr()).toContain("jobchain runner: stopped");
      for (const id of ids) expect(runner.stderr()).toContain(`job 'a' of task '${id}' (graph single) ignored its abort signal`);
      // Generous for a loaded machine, and far below the jobs' sleep that used to hold the process.
      expect(seconds).toBeLessThan(DRAIN_S + 10);

      // Nothing accepted is lost: another runner gets the tasks again and records each result.
      if (natsGone) await nats.restart();
      procs.push(await startRunner(config.dir, ["--graph", "single", "--ack-wait", "5"], nats.url));
      // The second runner's jobs sleep too; the results wait for them.
      const r = await cli(["results", "--graph", "single", ...ids.flatMap((id) => ["--id", id]), "--wait", "150", "--nats", nats.url], { timeoutMs: 180_000 });
      expect(r.lines.map((l) => [l.id, l.status, l.result]).sort()).toEqual(ids.map((id, i) => [id, "succeeded", { v: i + 1 }]));
      expect(r.code).toBe(0);
    });
  }
});
