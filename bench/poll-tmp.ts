import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
const nc = await connect({ servers: "nats://127.0.0.1:4333" });
const jsm = await jetstreamManager(nc);
for (let i = 0; i < 8; i++) {
  const row: string[] = [];
  for (const n of ["clean", "analyse_words", "analyse_tone", "report"]) {
    try { const c = await jsm.consumers.info("JC_text_report__brief", `node_${n}`); row.push(`${n}:${c.num_pending}/${c.num_ack_pending}/${c.delivered.consumer_seq}`); } catch (e) { row.push(`${n}:?`); }
  }
  console.log(i, row.join("  "));
  await new Promise((r) => setTimeout(r, 1000));
}
await nc.close();
