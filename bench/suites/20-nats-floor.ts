// The physical floor of the distributed engine: what nats-server and the nats.js v3 client do on this machine
// with no JobChain code in the path. Everything runs against a nats-server started by the test harness
// (JetStream, file storage, loopback), in this one process, and is stopped at the end.
//
//   - core NATS request-reply, one synchronous client: req/s, p50/p99 round trip
//   - JetStream async publish to a file-storage work-queue stream: msgs/s
//   - JetStream durable pull consumer, consume() with explicit acks: msgs/s
//   - a 3-hop JetStream pipeline (submit -> stage1 -> stage2 -> stage3 -> result, every hop a work-queue stream
//     with a durable consumer, each stage acks its input once its output is stored): tasks/s at full load, and
//     per-hop latency at steady submission rates of 10%, 25% and 50% of it (the design states its per-hop
//     latency target at half load)
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { startNats, type NatsServerHandle } from "../../test/harness/nats.ts";
import type { BenchRow, BenchSuite } from "../types.ts";
import { HOPS, pipelineFullLoad, pipelinePaced, startPipeline, workQueue } from "./lib/pipeline.ts";
import { fmtInt, now, percentiles, rate, Window } from "./lib/stats.ts";

const REQ_N = 20_000;
const REQ_WARMUP = 2_000;
const PUB_N = 100_000;
const PAYLOAD = 128;
const PUB_WINDOW = 1_000;
const PIPE_N = 20_000;
const PIPE_WARMUP = 2_000;
const PIPE_IN_SYSTEM = 1_000;
/** Paced latency runs, as fractions of the full-load rate. */
const LOAD_STEPS = [0.1, 0.25, 0.5];
const PACED_SECONDS = 2;
/** Longest any one phase may run; a phase cut short reports the rate over what it completed. */
const PHASE_CAP_MS = 20_000;



async function requestReply(server: NatsServerHandle): Promise<BenchRow[]> {
  const responder = await connect({ ...server.connectOptions, name: "bench-responder" });
  const client = await connect({ ...server.connectOptions, name: "bench-requester" });
  try {
    responder.subscribe("bench.echo", { callback: (_err, m) => void m.respond(m.data) });
    await responder.flush();
    const payload = new Uint8Array(PAYLOAD);
    for (let i = 0; i < REQ_WARMUP; i++) await client.request("bench.echo", payload, { timeout: 5_000 });
    const rtt = new Float64Array(REQ_N);
    const t0 = now();
    let n = 0;
    for (; n < REQ_N; n++) {
      const t = now();
      await client.request("bench.echo", payload, { timeout: 5_000 });
      rtt[n] = now() - t;
      if ((n & 1023) === 0 && now() - t0 > PHASE_CAP_MS) break;
    }
    const elapsed = now() - t0;
    const [p50, p99] = percentiles(rtt.subarray(0, n), [50, 99]);
    const note = `1 synchronous client, ${fmtInt(n)} round trips, ${PAYLOAD} B`;
    return [
      { name: "core request-reply, 1 sync client", value: rate(n, elapsed), unit: "req/s", note },
      { name: "core request-reply round trip p50", value: p50! * 1000, unit: "µs" },
      { name: "core request-reply round trip p99", value: p99! * 1000, unit: "µs" },
    ];
  } finally {
    await client.close();
    await responder.close();
  }
}

async function publishConsume(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager): Promise<BenchRow[]> {
  await workQueue(jsm, "FLOOR", "floor.work");
  const payload = new Uint8Array(PAYLOAD).fill(1);
  const win = new Window(PUB_WINDOW);
  let failed: unknown;
  const t0 = now();
  let sent = 0;
  for (; sent < PUB_N && failed === undefined; sent++) {
    const s = win.slot();
    if (s) await s;
    js.publish("floor.work", payload).then(
      () => win.done(),
      (err) => {
        failed ??= err;
        win.done();
      },
    );
    if ((sent & 1023) === 0 && now() - t0 > PHASE_CAP_MS) break;
  }
  await win.drain();
  const pubMs = now() - t0;
  if (failed) throw failed;
  const stored = (await jsm.streams.info("FLOOR")).state.messages;

  const consumer = await js.consumers.get("FLOOR", "worker");
  const t1 = now();
  let got = 0;
  const msgs = await consumer.consume({ max_messages: 1_000 });
  const cap = setTimeout(() => void msgs.stop(), PHASE_CAP_MS);
  for await (const m of msgs) {
    m.ack();
    if (++got === stored) break;
  }
  clearTimeout(cap);
  const consumeMs = now() - t1;
  await nc.flush();
  await msgs.close();
  return [
    {
      name: "JetStream async publish, file work queue",
      value: rate(sent, pubMs),
      unit: "msgs/s",
      note: `${fmtInt(sent)} msgs of ${PAYLOAD} B, ${PUB_WINDOW} acks outstanding`,
    },
    {
      name: "JetStream durable consume(), explicit acks",
      value: rate(got, consumeMs),
      unit: "msgs/s",
      note: `${fmtInt(got)} msgs, 1 client, max_messages 1000`,
    },
  ];
}

async function threeHop(server: NatsServerHandle): Promise<BenchRow[]> {
  const p = await startPipeline(server, "PIPE");
  try {
    await pipelineFullLoad(p, PIPE_WARMUP, PIPE_IN_SYSTEM, PHASE_CAP_MS);
    const [done, ms] = await pipelineFullLoad(p, PIPE_N, PIPE_IN_SYSTEM, PHASE_CAP_MS);
    const full = rate(done, ms);
    const capped = done < PIPE_N ? ` (time-capped: ${fmtInt(done)} of ${fmtInt(PIPE_N)})` : "";
    const rows: BenchRow[] = [
      {
        name: "3-hop JetStream pipeline, full load",
        value: full,
        unit: "tasks/s",
        note: `${fmtInt(done)} tasks, ${PIPE_IN_SYSTEM} in flight, 1 process, a connection per stage, 4 file work-queue streams${capped}`,
      },
    ];
    // Latency under a steady submission rate, as fractions of the full-load rate. Paced tasks travel in small
    // batches, which costs more per task than the full-load run, so the knee can come before 50%: the note says
    // when a rate was not sustained (backlog over 250 ms of submissions when the last task went in).
    for (const load of LOAD_STEPS) {
      const perSecond = Math.max(50, Math.round(full * load));
      p.hops = [];
      p.e2e = [];
      p.record = true;
      const r = await pipelinePaced(p, perSecond, PACED_SECONDS);
      p.record = false;
      const [h50, h99] = percentiles(p.hops, [50, 99]);
      const [e50] = percentiles(p.e2e, [50]);
      const sustained = r.backlog <= perSecond * 0.25;
      rows.push({
        name: `3-hop pipeline per-hop latency p50 at ${load * 100}% load`,
        value: h50! * 1000,
        unit: "µs",
        note:
          `${fmtInt(perSecond)} tasks/s for ${PACED_SECONDS} s; p99 ${fmtInt(h99! * 1000)} µs, end-to-end p50 ` +
          `${fmtInt(e50! * 1000)} µs` +
          (sustained ? "" : `; NOT sustained (backlog ${fmtInt(r.backlog)} tasks)`) +
          (load === LOAD_STEPS[0] ? `; ${HOPS} hops a task: submit, 2 stage hand-offs, result` : ""),
      });
    }
    return rows;
  } finally {
    await p.stop();
  }
}

const suite: BenchSuite = {
  name: "nats-floor",
  async run() {
    const server = await startNats();
    let nc: NatsConnection | undefined;
    try {
      const rows: BenchRow[] = [];
      rows.push(...(await requestReply(server)));
      nc = await connect({ ...server.connectOptions, name: "bench-js" });
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      rows.push(...(await publishConsume(nc, js, jsm)));
      rows.push(...(await threeHop(server)));
      rows[0]!.note += `; nats-server ${server.version}`;
      return rows;
    } finally {
      await nc?.close();
      await server.stop();
    }
  },
};
export default suite;
