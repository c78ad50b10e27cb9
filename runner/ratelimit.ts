// Rate limits shared by every replica: a token bucket per key in a JetStream KV bucket, updated with
// compare-and-set. Each acquire is one read and one conditional write; contention only costs retries.
import type { NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { systemClock, type RateLimitPolicy, type RateLimiterSource } from "../core/index.ts";
import { sharedBucket } from "./bus.ts";
import { decodeJson, encodeJson } from "./envelope.ts";
import { RATELIMIT_BUCKET } from "./naming.ts";

interface Bucket {
  tokens: number;
  /** Epoch ms of the last update. */
  at: number;
}

export class SharedRateLimiter {
  private readonly kv: Promise<KV>;
  private readonly key: string;
  private readonly max: number;
  private readonly ratePerMs: number;
  constructor(kv: Promise<KV>, key: string, policy: RateLimitPolicy) {
    this.kv = kv;
    this.key = key.replace(/[^A-Za-z0-9_=.-]/g, "_");
    this.max = policy.max;
    this.ratePerMs = policy.max / (policy.per * 1000);
  }

  /** Resolves once a token is taken from the shared bucket; rejects if `signal` aborts first. */
  async acquire(signal?: AbortSignal): Promise<void> {
    const kv = await this.kv;
    for (;;) {
      signal?.throwIfAborted();
      const entry = await kv.get(this.key);
      const now = Date.now();
      const exists = entry !== null && entry.operation === "PUT";
      const prev: Bucket = exists ? decodeJson<Bucket>(entry.value) : { tokens: this.max, at: now };
      const tokens = Math.min(this.max, prev.tokens + Math.max(0, now - prev.at) * this.ratePerMs);
      if (tokens < 1) {
        await systemClock.sleep(Math.max(1, Math.ceil((1 - tokens) / this.ratePerMs)), signal);
        continue;
      }
      const next = encodeJson({ tokens: tokens - 1, at: now } satisfies Bucket);
      try {
        if (exists) await kv.update(this.key, next, entry.revision);
        else await kv.create(this.key, next);
        return;
      } catch {
        // Another replica took a token at the same moment: read again.
      }
    }
  }
}

/** Limiters whose state lives in NATS, so a limit holds across every runner process. */
export class SharedRateLimiters implements RateLimiterSource {
  private readonly kv: Promise<KV>;
  private readonly byKey = new Map<string, SharedRateLimiter>();
  /** `replicas`: copies of the bucket in a cluster (see BusOptions.replicas). */
  constructor(nc: NatsConnection, replicas?: number | undefined) {
    this.kv = sharedBucket(nc, RATELIMIT_BUCKET, replicas);
    this.kv.catch(() => undefined);
  }
  get(policy: RateLimitPolicy, ownKey: string): SharedRateLimiter {
    const key = policy.key ?? `job.${ownKey}`;
    let l = this.byKey.get(key);
    if (!l) {
      l = new SharedRateLimiter(this.kv, key, policy);
      this.byKey.set(key, l);
    }
    return l;
  }
}
