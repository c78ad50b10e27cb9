// Count: records each execution it starts in the JetStream stream E2E_EXEC (subject e2e.exec), then sleeps `ms`
// and passes the task on with its node's name added. The end-to-end suite counts the records: every (task, node)
// must be executed exactly once whatever is killed meanwhile. One execution publishes with one message id, so a
// publish retried after a lost acknowledgement is stored once; a second execution is a second record.
import { randomUUID } from "node:crypto";
import os from "node:os";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Job, type JobContext, type Task } from "jobchain";

let client: Promise<JetStreamClient> | undefined;

function js(): Promise<JetStreamClient> {
  client ??= connect({
    servers: (process.env.JOBCHAIN_NATS_URL ?? "nats://127.0.0.1:4222").split(","),
    maxReconnectAttempts: -1,
    name: `e2e-count-${os.hostname()}`,
  }).then((nc) => jetstream(nc));
  return client;
}

export class Count extends Job {
  async run(task: Task, ctx: JobContext) {
    const record = JSON.stringify({ id: ctx.taskId, node: ctx.job, graph: ctx.graph, pod: os.hostname() });
    const msgID = randomUUID();
    for (;;) {
      try {
        await (await js()).publish("e2e.exec", record, { msgID, timeout: 2000 });
        break;
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const ms = Number(this.properties.ms ?? task.ms ?? 0);
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    return { ...task, [ctx.job]: true };
  }
}
