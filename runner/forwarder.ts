// Messages from a runner to the next node, gathered per node within one turn of the event loop.
//
// Under load a runner completes many tasks in the same turn (a pulled batch of messages runs together); sending
// what goes to the same node as one batch message costs JetStream one publish, one delivery and one ack instead
// of one each per task. A task that finishes alone leaves alone, as a plain message, so gathering adds no wait:
// a batch closes at the end of the turn, or earlier when it reaches its task or byte limit.
import { batchId, type WorkEnvelope } from "./envelope.ts";

/** Where gathered messages go: one JSON body (a WorkEnvelope or a WorkBatch) to one node. */
export interface ForwardSink {
  publish(to: string, body: string, msgId: string, task: WorkEnvelope | undefined): Promise<{ duplicate: boolean }>;
}

export interface ForwarderLimits {
  /** Tasks in one batch message. */
  maxTasks: number;
  /** Bytes of one batch message's body (stay under the server's max_payload). */
  maxBytes: number;
}

interface Item {
  env: WorkEnvelope;
  json: string;
  msgId: string;
  resolve: (duplicate: boolean) => void;
  reject: (err: unknown) => void;
}

interface Gathering {
  items: Item[];
  bytes: number;
}

/** Batch message overhead around the tasks: `{"v":1,"batch":[` ... `]}`. */
const BATCH_OPEN = '{"v":1,"batch":[';
const BATCH_CLOSE = "]}";

export class Forwarder {
  private readonly sink: ForwardSink;
  private readonly limits: ForwarderLimits;
  private readonly schedule: (fn: () => void) => void;
  private readonly open = new Map<string, Gathering>();

  constructor(sink: ForwardSink, limits: ForwarderLimits, schedule: (fn: () => void) => void = setImmediate) {
    this.sink = sink;
    this.limits = limits;
    this.schedule = schedule;
  }

  /**
   * Sends `env` to node `to`. `msgId` identifies this one message (task, edge): a message sent alone carries it,
   * so a repeat after a redelivery is de-duplicated; a batch carries an id derived from all of its members'.
   * Resolves once JetStream has stored the message that holds it: true when that message had been stored
   * before (a repeat: the task was already sent on this edge).
   */
  send(to: string, env: WorkEnvelope, msgId: string): Promise<boolean> {
    const json = JSON.stringify(env);
    return new Promise<boolean>((resolve, reject) => {
      const item: Item = { env, json, msgId, resolve, reject };
      let g = this.open.get(to);
      if (g && g.bytes + json.length + 1 > this.limits.maxBytes) {
        this.flush(to);
        g = undefined;
      }
      if (!g) {
        g = { items: [], bytes: BATCH_OPEN.length + BATCH_CLOSE.length };
        this.open.set(to, g);
        const opened = g;
        this.schedule(() => {
          if (this.open.get(to) === opened) this.flush(to);
        });
      }
      g.items.push(item);
      g.bytes += json.length + 1;
      if (g.items.length >= this.limits.maxTasks) this.flush(to);
    });
  }

  private flush(to: string): void {
    const g = this.open.get(to);
    if (!g) return;
    this.open.delete(to);
    const { items } = g;
    let sent: Promise<{ duplicate: boolean }>;
    try {
      if (items.length === 1) {
        const [only] = items;
        sent = this.sink.publish(to, only!.json, only!.msgId, only!.env);
      } else {
        const body = BATCH_OPEN + items.map((it) => it.json).join(",") + BATCH_CLOSE;
        sent = this.sink.publish(to, body, `${batchId(items.map((it) => it.msgId))}|${to}`, undefined);
      }
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      (ack) => {
        for (const it of items) it.resolve(ack.duplicate);
      },
      (err: unknown) => {
        for (const it of items) it.reject(err);
      },
    );
  }
}
