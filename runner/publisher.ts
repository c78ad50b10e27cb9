// JetStream publishes with the acknowledgement awaited, pipelined over one reply subscription per connection.
//
// nats.js' `js.publish()` makes every publish a full request: its own reply subject, its own timer and a captured
// stack for the timeout error. That costs ~40 µs of CPU a publish, which at a few publishes per task is most of a
// runner's time. Here a publish is one `nc.publish()` with a reply subject under a shared inbox; acks are matched
// by the reply token and a single sweep times out the ones that never came. ~8-10 µs a publish, same guarantees:
// a publish resolves only once the stream has stored the message (or recognised its id as a duplicate).
import { createInbox, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";

/** What the stream said when it stored a message. */
export interface StoredAck {
  stream: string;
  seq: number;
  /** The message id was already stored within the duplicate window: nothing new was stored. */
  duplicate: boolean;
}

/** The stream refused the message (e.g. a per-subject limit, a wrong expected sequence). */
export class PublishRejectedError extends Error {
  override readonly name = "PublishRejectedError";
  /** JetStream API error code, e.g. 10077 for "maximum messages per subject exceeded". */
  readonly errCode: number;
  readonly code: number;
  readonly subject: string;
  constructor(subject: string, error: { code?: number; err_code?: number; description?: string }) {
    super(`JetStream refused a message on '${subject}': ${error.description ?? "no description"} (error ${error.err_code ?? "?"})`);
    this.subject = subject;
    this.errCode = error.err_code ?? 0;
    this.code = error.code ?? 0;
  }
}

/** No acknowledgement came: the server is unreachable, or no stream captures the subject. Safe to retry. */
export class PublishUnconfirmedError extends Error {
  override readonly name = "PublishUnconfirmedError";
  readonly subject: string;
  constructor(subject: string, reason: string) {
    super(`no JetStream acknowledgement for a message on '${subject}': ${reason}`);
    this.subject = subject;
  }
}

interface Pending {
  subject: string;
  resolve: (ack: StoredAck) => void;
  reject: (err: Error) => void;
  at: number;
}

export interface PublishOptions {
  /** Message id: a repeat within the stream's duplicate window is acknowledged as a duplicate, not stored. */
  msgId?: string | undefined;
  headers?: MsgHdrs | undefined;
}

const decoder = new TextDecoder();

/**
 * Writes of one connection held until the end of the current turn of the event loop, then made together.
 *
 * nats.js writes what it has buffered at the next microtask checkpoint. A runner under load publishes and acks
 * from many promise continuations in one turn, so that is a socket write (a system call) every few messages,
 * the largest single cost in a profile. Deferring them to the end of the turn makes them one write.
 */
export class Outbox {
  private queue: (() => void)[] = [];
  private scheduled = false;
  private readonly schedule: (fn: () => void) => void;

  constructor(schedule: (fn: () => void) => void = setImmediate) {
    this.schedule = schedule;
  }

  /**
   * Runs `write` (an `nc.publish`, a message's `ack()`, or anything that makes them, like closing a batch) at the
   * end of this turn, in the order deferred.
   */
  defer(write: () => void): void {
    this.queue.push(write);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.flush());
    }
  }

  private flush(): void {
    // What is deferred during the flush (the publish of a batch closed by it) goes out in this flush as well.
    for (let i = 0; i < this.queue.length; i++) {
      try {
        this.queue[i]!();
      } catch {
        // A write that fails (the connection closed meanwhile) fails alone; its owner hears of it otherwise.
      }
    }
    this.queue = [];
    this.scheduled = false;
  }
}

const outboxes = new WeakMap<NatsConnection, Outbox>();

/** The outbox of a connection, shared by everything that writes on it. */
export function outboxFor(nc: NatsConnection): Outbox {
  let o = outboxes.get(nc);
  if (!o) {
    o = new Outbox();
    outboxes.set(nc, o);
  }
  return o;
}

export class JetStreamPublisher {
  private readonly nc: NatsConnection;
  private readonly prefix: string;
  private readonly pending = new Map<string, Pending>();
  private readonly timeoutMs: number;
  private readonly outbox: Outbox;
  private next = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private subscribed = false;

  constructor(nc: NatsConnection, options: { timeoutMs?: number } = {}) {
    this.nc = nc;
    this.prefix = `${createInbox()}.`;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.outbox = outboxFor(nc);
  }

  private start(): void {
    this.subscribed = true;
    this.nc.subscribe(`${this.prefix}*`, { callback: (_err, m) => this.onAck(m) });
    // Publishes sent just before a disconnect may never be acknowledged; they fail after `timeoutMs` and the
    // caller repeats them (message ids make that safe).
    this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.min(1000, this.timeoutMs / 4)));
    this.sweeper.unref();
    void this.nc.closed().then(() => {
      clearInterval(this.sweeper);
      for (const [token, p] of this.pending) {
        this.pending.delete(token);
        p.reject(new PublishUnconfirmedError(p.subject, "the connection is closed"));
      }
    });
  }

  /** Publishes to a stream's subject; resolves once it is stored. */
  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<StoredAck> {
    if (!this.subscribed) this.start();
    let h = options.headers;
    if (options.msgId !== undefined) {
      h ??= natsHeaders();
      h.set("Nats-Msg-Id", options.msgId);
    }
    const token = (this.next++).toString(36);
    return new Promise<StoredAck>((resolve, reject) => {
      this.pending.set(token, { subject, resolve, reject, at: Date.now() });
      this.outbox.defer(() => {
        try {
          this.nc.publish(subject, data, h ? { reply: this.prefix + token, headers: h } : { reply: this.prefix + token });
        } catch (err) {
          // e.g. the connection closed meanwhile
          if (this.pending.delete(token)) reject(err as Error);
        }
      });
    });
  }

  /** Publishes awaiting in flight. */
  get inFlight(): number {
    return this.pending.size;
  }

  private onAck(m: Msg): void {
    const token = m.subject.slice(this.prefix.length);
    const p = this.pending.get(token);
    if (!p) return;
    this.pending.delete(token);
    if (m.headers?.code === 503) {
      p.reject(new PublishUnconfirmedError(p.subject, "no stream captures this subject (was it removed?)"));
      return;
    }
    let reply: { stream?: string; seq?: number; duplicate?: boolean; error?: { code?: number; err_code?: number; description?: string } };
    try {
      reply = JSON.parse(decoder.decode(m.data));
    } catch {
      p.reject(new PublishUnconfirmedError(p.subject, "the acknowledgement was not JSON"));
      return;
    }
    if (reply.error) p.reject(new PublishRejectedError(p.subject, reply.error));
    else p.resolve({ stream: reply.stream ?? "", seq: reply.seq ?? 0, duplicate: reply.duplicate === true });
  }

  private sweep(): void {
    const before = Date.now() - this.timeoutMs;
    for (const [token, p] of this.pending) {
      // Insertion order is publish order: the first one young enough ends the sweep.
      if (p.at > before) break;
      this.pending.delete(token);
      p.reject(new PublishUnconfirmedError(p.subject, `none within ${this.timeoutMs} ms`));
    }
  }
}

const publishers = new WeakMap<NatsConnection, JetStreamPublisher>();

/** The publisher of a connection (one reply subscription per connection, shared by every bus on it). */
export function publisherFor(nc: NatsConnection): JetStreamPublisher {
  let p = publishers.get(nc);
  if (!p) {
    p = new JetStreamPublisher(nc);
    publishers.set(nc, p);
  }
  return p;
}
