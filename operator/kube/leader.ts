// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection: acquire when the lease is
// free or its holder stopped renewing for leaseDuration (measured on our own clock from when we last saw the
// record change, so clock skew between hosts does not matter), renew every retryPeriod, and step down when no
// renewal succeeded for renewDeadline. Writes are resourceVersion-conditioned: of two candidates racing for a
// free lease, the API server lets exactly one win (409 for the other).
import { systemClock, type Clock } from "../../core/limits.ts";
import type { Logger } from "../../core/logging.ts";
import type { KubeClient } from "./client.ts";
import { isAlreadyExists, isConflict } from "./errors.ts";
import { COORDINATION, type KubeObject } from "./resources.ts";

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  namespace: string;
  name: string;
  /** Unique per candidate (e.g. pod name + random suffix). */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** After losing the lease, try to acquire it again instead of returning from run() (default false). */
  rejoin?: boolean;
  clock?: Clock;
  logger?: Logger;
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  onStoppedLeading?: () => void;
  onNewLeader?: (identity: string) => void;
}

/** kube-apiserver's MicroTime: RFC 3339 with microseconds. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly o: Required<Pick<LeaderElectorOptions, "leaseDurationMs" | "renewDeadlineMs" | "retryPeriodMs">> & LeaderElectorOptions;
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private readonly stopper = new AbortController();
  private observed: { raw: string; at: number } | undefined;
  private lease: Lease | undefined;
  private leading: AbortController | undefined;
  private work: Promise<void> | undefined;
  private reportedLeader = "";
  private running: Promise<void> | undefined;

  constructor(client: KubeClient, options: LeaderElectorOptions) {
    const o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
    if (!o.identity) throw new TypeError("LeaderElector: identity is required");
    if (!(o.leaseDurationMs > o.renewDeadlineMs)) throw new RangeError("LeaderElector: leaseDurationMs must be greater than renewDeadlineMs");
    if (!(o.renewDeadlineMs > o.retryPeriodMs * 1.2)) throw new RangeError("LeaderElector: renewDeadlineMs must be greater than 1.2 × retryPeriodMs");
    this.client = client;
    this.o = o;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger?.child({ lease: `${o.namespace}/${o.name}`, identity: o.identity });
  }

  get isLeader(): boolean {
    return this.leading !== undefined && !this.leading.signal.aborted;
  }

  /** The holder last seen on the lease ("" when free or not read yet). */
  get leader(): string {
    return this.reportedLeader;
  }

  /** Campaigns for the lease and, while holding it, renews it. Resolves after leadership ends (or stop()). */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Stops campaigning; if leading, stops the work, then releases the lease so a successor need not wait. */
  async stop(): Promise<void> {
    this.stopper.abort();
    await this.running;
  }

  private async sleep(ms: number): Promise<void> {
    await this.clock.sleep(ms, this.stopper.signal).catch(() => undefined);
  }

  private async loop(): Promise<void> {
    const stop = this.stopper.signal;
    do {
      // Acquire.
      while (!stop.aborted && !(await this.attempt())) await this.sleep(this.o.retryPeriodMs * (1 + Math.random() * 0.2));
      if (stop.aborted) return;
      this.log?.info("Acquired the lease; leading");
      const ctl = new AbortController();
      this.leading = ctl;
      this.work = Promise.resolve()
        .then(() => this.o.onStartedLeading(ctl.signal))
        .catch((e: unknown) => this.log?.error({ err: e instanceof Error ? e.message : String(e) }, "onStartedLeading failed"));
      // Renew.
      let lastRenew = this.clock.now();
      while (!stop.aborted) {
        await this.sleep(this.o.retryPeriodMs);
        if (stop.aborted) break;
        const left = this.o.renewDeadlineMs - (this.clock.now() - lastRenew);
        const ok = left > 0 && (await this.withDeadline(this.attempt(), left));
        if (ok) {
          lastRenew = this.clock.now();
        } else if (this.clock.now() - lastRenew >= this.o.renewDeadlineMs) {
          this.log?.warn({ sinceLastRenewMs: Math.round(this.clock.now() - lastRenew) }, "Could not renew the lease in time; stepping down");
          break;
        }
      }
      await this.stepDown(stop.aborted);
    } while (this.o.rejoin && !stop.aborted);
  }

  private async stepDown(release: boolean): Promise<void> {
    this.leading?.abort();
    // Let the work notice the abort before the lease is given away: two leaders must not overlap.
    if (this.work) await this.withDeadline(this.work.then(() => true), this.o.renewDeadlineMs);
    this.leading = undefined;
    this.work = undefined;
    try {
      this.o.onStoppedLeading?.();
    } catch (e) {
      this.log?.error({ err: String(e) }, "onStoppedLeading threw");
    }
    if (release) await this.release();
  }

  private async withDeadline(p: Promise<boolean>, ms: number): Promise<boolean> {
    const ctl = new AbortController();
    const timeout = this.clock.sleep(ms, ctl.signal).then(
      () => false,
      () => false,
    );
    try {
      return await Promise.race([p.catch(() => false), timeout]);
    } finally {
      ctl.abort();
    }
  }

  /** One try to acquire or renew. True when we hold the lease afterwards. */
  private async attempt(): Promise<boolean> {
    try {
      return await this.tryAcquireOrRenew();
    } catch (e) {
      this.log?.debug({ err: e instanceof Error ? e.message : String(e) }, "Lease request failed");
      return false;
    }
  }

  private noteLeader(holder: string): void {
    if (holder === this.reportedLeader) return;
    this.reportedLeader = holder;
    if (holder) {
      try {
        this.o.onNewLeader?.(holder);
      } catch (e) {
        this.log?.error({ err: String(e) }, "onNewLeader threw");
      }
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.o;
    const now = microTime(new Date());
    const durationSeconds = Math.ceil(this.o.leaseDurationMs / 1000);
    const current = await this.client.get<Lease>(COORDINATION.leases, namespace, name);
    if (!current) {
      const spec: LeaseSpec = { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 };
      try {
        this.lease = await this.client.create<Lease>(COORDINATION.leases, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec,
        });
      } catch (e) {
        if (isAlreadyExists(e)) return false;
        throw e;
      }
      this.observed = { raw: JSON.stringify(this.lease.spec ?? {}), at: this.clock.now() };
      this.noteLeader(identity);
      return true;
    }
    const spec = current.spec ?? {};
    const raw = JSON.stringify(spec);
    if (this.observed?.raw !== raw) this.observed = { raw, at: this.clock.now() };
    const holder = spec.holderIdentity ?? "";
    this.noteLeader(holder);
    const durationMs = (spec.leaseDurationSeconds ?? 0) * 1000 || this.o.leaseDurationMs;
    const expired = this.observed.at + durationMs <= this.clock.now();
    if (holder && holder !== identity && !expired) return false;
    const mine = holder === identity;
    const next: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: mine && spec.acquireTime ? spec.acquireTime : now,
      renewTime: now,
      leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
    };
    try {
      this.lease = await this.client.replace<Lease>(COORDINATION.leases, { ...current, spec: next });
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
    this.observed = { raw: JSON.stringify(this.lease.spec ?? {}), at: this.clock.now() };
    this.noteLeader(identity);
    return true;
  }

  /** Gives the lease up (holder cleared), if we still hold it. */
  private async release(): Promise<void> {
    const lease = this.lease;
    if (!lease || lease.spec?.holderIdentity !== this.o.identity) return;
    const now = microTime(new Date());
    try {
      this.lease = await this.client.replace<Lease>(COORDINATION.leases, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
      });
      this.log?.info("Released the lease");
    } catch (e) {
      // Someone else took it, or the server is unreachable: it expires on its own.
      this.log?.warn({ err: e instanceof Error ? e.message : String(e) }, "Could not release the lease");
    }
  }
}
