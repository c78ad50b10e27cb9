// Kubernetes Events (core/v1, what `kubectl describe` and `kubectl get events` show), recorded best effort off
// the caller's path: event() only queues. Repeats are aggregated like client-go's EventCorrelator: the same
// object, type, reason and message within 10 minutes bumps count and lastTimestamp of the existing Event instead
// of creating another; repeats still waiting in the queue are coalesced into one write. Each object gets a burst of
// 25 events and then one per 5 minutes (client-go's spam filter), so a hot error loop cannot flood the API.
import { randomBytes } from "node:crypto";
import os from "node:os";
import { systemClock, type Clock } from "../../core/limits.ts";
import type { Logger } from "../../core/logging.ts";
import type { KubeClient } from "./client.ts";
import { isNotFound } from "./errors.ts";
import { CORE, type KubeObject } from "./resources.ts";

/** How long an Event keeps absorbing repeats (client-go: 10 minutes). */
const AGGREGATION_WINDOW_MS = 10 * 60_000;
const MAX_QUEUE = 1000;
const MAX_REMEMBERED = 4096;
const MAX_MESSAGE = 1024;
/** Per object, like client-go's spam filter: a burst of 25 events, then one per 5 minutes. */
const SPAM_BURST = 25;
const SPAM_REFILL_MS = 5 * 60_000;

export interface EventRecorderOptions {
  component: string;
  host?: string;
  logger?: Logger;
  clock?: Clock;
  /** Most distinct events waiting to be written (default 1000); beyond it new ones are dropped and counted. */
  maxQueue?: number;
}

interface Pending {
  obj: { apiVersion?: string; kind?: string; name: string; namespace?: string; uid?: string; resourceVersion?: string };
  type: "Normal" | "Warning";
  reason: string;
  message: string;
  /** Occurrences not yet written. */
  count: number;
  firstAt: Date;
  lastAt: Date;
}

interface Sent {
  namespace: string;
  name: string;
  count: number;
  firstTimestamp: string;
  lastSeen: number;
}

function eventTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly component: string;
  private readonly host: string;
  private readonly log: Logger | undefined;
  private readonly clock: Clock;
  private readonly maxQueue: number;
  private readonly pending = new Map<string, Pending>();
  private readonly sent = new Map<string, Sent>();
  private readonly spam = new Map<string, { tokens: number; at: number }>();
  private draining: Promise<void> | undefined;
  /** Events accepted, written, dropped (queue full or the object's spam budget used up), and failed writes. */
  readonly counts = { recorded: 0, written: 0, dropped: 0, failed: 0 };

  constructor(client: KubeClient, options: EventRecorderOptions) {
    this.client = client;
    this.component = options.component;
    this.host = options.host ?? os.hostname();
    this.log = options.logger;
    this.clock = options.clock ?? systemClock;
    this.maxQueue = options.maxQueue ?? MAX_QUEUE;
  }

  /** Records an event about `obj`. Never throws and never waits: the write happens in the background. */
  event(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void {
    try {
      const m = obj.metadata;
      const msg = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message;
      const key = JSON.stringify([m.uid ?? "", obj.kind ?? "", m.namespace ?? "", m.name, type, reason, msg]);
      const now = new Date();
      if (!this.admit(JSON.stringify([m.uid ?? "", obj.kind ?? "", m.namespace ?? "", m.name]))) {
        this.counts.dropped++;
        return;
      }
      const p = this.pending.get(key);
      this.counts.recorded++;
      if (p) {
        p.count++;
        p.lastAt = now;
      } else {
        if (this.pending.size >= this.maxQueue) {
          this.counts.dropped++;
          return;
        }
        const ref: Pending["obj"] = { name: m.name };
        if (obj.apiVersion) ref.apiVersion = obj.apiVersion;
        if (obj.kind) ref.kind = obj.kind;
        if (m.namespace) ref.namespace = m.namespace;
        if (m.uid) ref.uid = m.uid;
        if (m.resourceVersion) ref.resourceVersion = m.resourceVersion;
        this.pending.set(key, { obj: ref, type, reason, message: msg, count: 1, firstAt: now, lastAt: now });
      }
      this.kick();
    } catch (e) {
      this.counts.failed++;
      this.log?.warn({ err: String(e) }, "Could not queue an event");
    }
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.pending.size > 0) this.kick();
    });
  }

  /** Takes a token of the object's spam bucket; false when the object has used up its share. */
  private admit(objectKey: string): boolean {
    const now = this.clock.now();
    let b = this.spam.get(objectKey);
    if (b) {
      b.tokens = Math.min(SPAM_BURST, b.tokens + (now - b.at) / SPAM_REFILL_MS);
      b.at = now;
      this.spam.delete(objectKey);
    } else {
      b = { tokens: SPAM_BURST, at: now };
    }
    this.spam.set(objectKey, b);
    if (this.spam.size > MAX_REMEMBERED) {
      const oldest = this.spam.keys().next();
      if (!oldest.done) this.spam.delete(oldest.value);
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Resolves when every queued event has been written (or given up on). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    // Yield first so a burst of event() calls in one tick is coalesced.
    await Promise.resolve();
    for (;;) {
      const next = this.pending.entries().next();
      if (next.done) return;
      const [key, p] = next.value;
      this.pending.delete(key);
      try {
        await this.write(key, p);
        this.counts.written++;
      } catch (e) {
        this.counts.failed++;
        this.log?.warn({ err: e instanceof Error ? e.message : String(e), reason: p.reason, object: p.obj.name }, "Could not record an event");
      }
    }
  }

  private async write(key: string, p: Pending): Promise<void> {
    const prior = this.sent.get(key);
    const now = this.clock.now();
    if (prior && now - prior.lastSeen < AGGREGATION_WINDOW_MS) {
      const count = prior.count + p.count;
      try {
        await this.client.mergePatch(CORE.events, prior.namespace, prior.name, { count, lastTimestamp: eventTime(p.lastAt) });
        prior.count = count;
        prior.lastSeen = now;
        this.remember(key, prior);
        return;
      } catch (e) {
        if (!isNotFound(e)) throw e;
        // The Event expired (the API server's event TTL) or was deleted: start a new one.
      }
    }
    const namespace = p.obj.namespace || "default";
    const name = `${p.obj.name}.${Date.now().toString(16)}${randomBytes(3).toString("hex")}`;
    await this.client.create(CORE.events, {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace },
      involvedObject: p.obj,
      type: p.type,
      reason: p.reason,
      message: p.message,
      count: p.count,
      firstTimestamp: eventTime(p.firstAt),
      lastTimestamp: eventTime(p.lastAt),
      source: { component: this.component, host: this.host },
      reportingComponent: this.component,
      reportingInstance: this.host,
    });
    this.remember(key, { namespace, name, count: p.count, firstTimestamp: eventTime(p.firstAt), lastSeen: now });
  }

  private remember(key: string, s: Sent): void {
    this.sent.delete(key);
    this.sent.set(key, s);
    if (this.sent.size > MAX_REMEMBERED) {
      const oldest = this.sent.keys().next();
      if (!oldest.done) this.sent.delete(oldest.value);
    }
  }
}
