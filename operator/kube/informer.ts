// A reflector and its store, like client-go's: list (paginated) → watch from the list's resourceVersion with
// bookmarks, resume from the last resourceVersion seen after the server ends a watch, relist on 410 Gone /
// Expired (diffing against the store: synthetic deletes for objects that vanished meanwhile, updates only where
// the resourceVersion changed), back off on any other error and retry forever, restart a watch that went silent
// (watchdog), and optionally re-deliver every object periodically (resync) for level-triggered reconciles.
import { systemClock, type Clock } from "../../core/limits.ts";
import type { Logger } from "../../core/logging.ts";
import { Backoff, jittered } from "./backoff.ts";
import { watchErrorStatus, type KubeClient, type WatchEvent } from "./client.ts";
import { KubeApiError, isGone } from "./errors.ts";
import type { Counter, Gauge, Registry } from "./metrics.ts";
import { objectKey, resourceName, type KubeObject, type ResourceType } from "./resources.ts";

export interface InformerOptions {
  /** Only this namespace (default: every namespace). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Server-side lifetime of one watch, s (default 300, stretched by up to 50% at random). */
  watchTimeoutSeconds?: number;
  /**
   * Restart a watch that delivered no event and no bookmark for this long, ms (default: the smaller of 150 s and
   * the watch timeout + 30 s; the API server sends a bookmark about once a minute).
   */
  watchdogMs?: number;
  /** Re-deliver every stored object as an update this often, ms (default: never). */
  resyncMs?: number;
  /**
   * Keep `metadata.managedFields` in the store (default false: dropped as objects arrive, like controller-runtime's
   * transform option; they are a large part of every object and a controller rarely reads them).
   */
  keepManagedFields?: boolean;
  /** Page size of the list (default 500). */
  pageSize?: number;
  /** Whether to ask for bookmarks (default true). */
  bookmarks?: boolean;
  /** Backoff after errors, ms (default 200 → 30000). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  logger?: Logger;
  clock?: Clock;
  metrics?: Registry;
}

type Handler<A extends unknown[]> = (...args: A) => void;

/** Freezes an object and everything in it: the store hands out the same objects it keeps. */
function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

interface InformerMetrics {
  restarts: Counter;
  relists: Counter;
  events: Counter;
  objects: Gauge;
}

export class Informer<T extends KubeObject> {
  private readonly client: KubeClient;
  private readonly type: ResourceType;
  private readonly opts: InformerOptions;
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private readonly store = new Map<string, T>();
  private readonly adds: Handler<[T]>[] = [];
  private readonly updates: Handler<[T, T]>[] = [];
  private readonly deletes: Handler<[T]>[] = [];
  private readonly stopper = new AbortController();
  private readonly backoff: Backoff;
  private readonly m: InformerMetrics | undefined;
  private readonly labels: { resource: string };
  private rv = "";
  private isSynced = false;
  private started: Promise<void> | undefined;
  /** Watches started, relists done: for tests and status. */
  readonly counts = { lists: 0, watches: 0, watchdogRestarts: 0, gone: 0, errors: 0 };

  constructor(client: KubeClient, type: ResourceType, options: InformerOptions = {}) {
    this.client = client;
    this.type = type;
    this.opts = options;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger?.child({ informer: resourceName(type), ...(options.namespace ? { namespace: options.namespace } : {}) });
    this.backoff = new Backoff(options.backoffInitialMs ?? 200, options.backoffMaxMs ?? 30_000);
    this.labels = { resource: resourceName(type) };
    const r = options.metrics;
    if (r) {
      this.m = {
        restarts: r.counter("informer_watch_restarts_total", "Watches started again, by reason (timeout: the server ended it; watchdog; error; gone).", ["resource", "reason"]),
        relists: r.counter("informer_relists_total", "Full lists of a resource (the first one included).", ["resource"]),
        events: r.counter("informer_watch_events_total", "Watch events received, by type.", ["resource", "type"]),
        objects: r.gauge("informer_store_objects", "Objects in the informer's store.", ["resource"]),
      };
    }
  }

  onAdd(fn: (obj: T) => void): void {
    this.adds.push(fn);
  }
  onUpdate(fn: (oldObj: T, obj: T) => void): void {
    this.updates.push(fn);
  }
  /** `obj` is the final state from the DELETED event, or the last stored state when a relist found it gone. */
  onDelete(fn: (obj: T) => void): void {
    this.deletes.push(fn);
  }

  get synced(): boolean {
    return this.isSynced;
  }
  get lastResourceVersion(): string {
    return this.rv;
  }
  get size(): number {
    return this.store.size;
  }

  /** The stored object (frozen: copy it before changing it), or undefined. */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(objectKey(this.type.namespaced ? namespace : undefined, name));
  }
  /** Every stored object, or those of one namespace (frozen). */
  list(namespace?: string): T[] {
    const out: T[] = [];
    for (const o of this.store.values()) if (namespace === undefined || o.metadata.namespace === namespace) out.push(o);
    return out;
  }
  /** Store keys (`namespace/name`). */
  keys(): string[] {
    return [...this.store.keys()];
  }

  /** Starts the reflector; resolves once the first list is in the store and its handlers ran. */
  start(): Promise<void> {
    this.started ??= new Promise<void>((resolve, reject) => {
      void this.run(resolve).then(
        () => {
          if (!this.isSynced) reject(new Error(`informer for ${resourceName(this.type)} stopped before it synced`));
        },
        (e: unknown) => reject(e),
      );
      if (this.opts.resyncMs) void this.resyncLoop(this.opts.resyncMs);
    });
    return this.started;
  }

  /** Stops watching. The store keeps its last contents. */
  stop(): void {
    this.stopper.abort();
  }

  private emit<A extends unknown[]>(handlers: Handler<A>[], ...args: A): void {
    for (const h of handlers) {
      try {
        h(...args);
      } catch (e) {
        this.log?.error({ err: e instanceof Error ? e.message : String(e) }, "Informer event handler threw");
      }
    }
  }

  private key(o: KubeObject): string {
    return objectKey(this.type.namespaced ? o.metadata.namespace : undefined, o.metadata.name);
  }

  /** What the store keeps of an object: without managed fields (unless asked), frozen. */
  private prepare(obj: T): T {
    if (!this.opts.keepManagedFields && (obj.metadata as { managedFields?: unknown }).managedFields !== undefined) {
      delete (obj.metadata as { managedFields?: unknown }).managedFields;
    }
    return deepFreeze(obj);
  }

  private upsert(obj: T): void {
    this.prepare(obj);
    const k = this.key(obj);
    const old = this.store.get(k);
    this.store.set(k, obj);
    if (old) this.emit(this.updates, old, obj);
    else this.emit(this.adds, obj);
  }

  /** A DELETED event: handlers get the object's final state as the event carries it. */
  private remove(obj: T): void {
    this.prepare(obj);
    this.store.delete(this.key(obj));
    this.emit(this.deletes, obj);
  }

  /** Lists every page and replaces the store, emitting the differences. */
  private async relist(): Promise<void> {
    const items: T[] = [];
    let rv = "";
    let cont: string | undefined;
    for (;;) {
      const page = await this.client.list<T>(this.type, {
        namespace: this.opts.namespace,
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
        limit: this.opts.pageSize ?? 500,
        ...(cont ? { continue: cont } : {}),
      });
      items.push(...page.items);
      if (!rv) rv = page.resourceVersion;
      if (!page.continue) break;
      cont = page.continue;
    }
    this.counts.lists++;
    this.m?.relists.inc(this.labels);
    const seen = new Set<string>();
    for (const obj of items) {
      this.prepare(obj);
      const k = this.key(obj);
      seen.add(k);
      const old = this.store.get(k);
      if (!old) {
        this.store.set(k, obj);
        this.emit(this.adds, obj);
      } else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) {
        this.store.set(k, obj);
        this.emit(this.updates, old, obj);
      }
    }
    for (const [k, old] of [...this.store]) {
      if (seen.has(k)) continue;
      this.store.delete(k);
      this.emit(this.deletes, old);
    }
    this.rv = rv;
    this.m?.objects.set(this.labels, this.store.size);
    this.log?.debug({ objects: this.store.size, resourceVersion: rv }, "Listed");
  }

  private async sleep(ms: number): Promise<void> {
    await this.clock.sleep(ms, this.stopper.signal).catch(() => undefined);
  }

  private async run(onSynced: () => void): Promise<void> {
    const stop = this.stopper.signal;
    let needList = true;
    while (!stop.aborted) {
      if (needList) {
        try {
          await this.relist();
        } catch (e) {
          if (stop.aborted) return;
          this.counts.errors++;
          const delay = this.backoff.next();
          this.log?.warn({ err: (e as Error).message, retryInMs: Math.round(delay) }, "List failed");
          await this.sleep(delay);
          continue;
        }
        needList = false;
        if (!this.isSynced) {
          this.isSynced = true;
          onSynced();
        }
      }
      const outcome = await this.watchOnce();
      if (stop.aborted) return;
      this.counts.watches++;
      switch (outcome.kind) {
        case "ended":
          this.m?.restarts.inc({ ...this.labels, reason: "timeout" });
          if (outcome.quiet) {
            // Ended at once with nothing in it (a proxy closing, a server shutting down): do not spin.
            await this.sleep(this.backoff.next());
          } else {
            this.backoff.reset();
          }
          break;
        case "watchdog":
          this.counts.watchdogRestarts++;
          this.m?.restarts.inc({ ...this.labels, reason: "watchdog" });
          this.log?.warn({ resourceVersion: this.rv, silentMs: outcome.silentMs }, "Watch went silent; restarting it");
          break;
        case "gone":
          this.counts.gone++;
          this.m?.restarts.inc({ ...this.labels, reason: "gone" });
          this.log?.info({ resourceVersion: this.rv }, "Watch history expired (410); relisting");
          needList = true;
          break;
        case "error": {
          this.counts.errors++;
          this.m?.restarts.inc({ ...this.labels, reason: "error" });
          const delay = this.backoff.next();
          this.log?.warn({ err: outcome.error.message, retryInMs: Math.round(delay) }, "Watch failed");
          await this.sleep(delay);
          break;
        }
      }
    }
  }

  private watchOnce(): Promise<
    { kind: "ended"; quiet: boolean } | { kind: "watchdog"; silentMs: number } | { kind: "gone" } | { kind: "error"; error: Error }
  > {
    const stop = this.stopper.signal;
    const ctl = new AbortController();
    const onStop = (): void => ctl.abort();
    stop.addEventListener("abort", onStop, { once: true });
    const base = this.opts.watchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.max(1, Math.round(jittered(base, 0.5)));
    const watchdogMs = this.opts.watchdogMs ?? Math.min(150_000, base * 1000 + 30_000);
    const startedAt = this.clock.now();
    let lastEventAt = startedAt;
    let events = 0;
    let gone = false;
    let failure: Error | undefined;
    let watchdogFired: number | undefined;

    const watchdog = (async () => {
      while (!ctl.signal.aborted) {
        const wait = lastEventAt + watchdogMs - this.clock.now();
        if (wait <= 0) {
          watchdogFired = this.clock.now() - lastEventAt;
          ctl.abort();
          return;
        }
        await this.clock.sleep(wait, ctl.signal).catch(() => undefined);
      }
    })();

    const onEvent = (e: WatchEvent<T>): void => {
      if (ctl.signal.aborted) return;
      lastEventAt = this.clock.now();
      events++;
      this.m?.events.inc({ ...this.labels, type: e.type });
      const status = watchErrorStatus(e);
      if (status) {
        const err = KubeApiError.fromStatus(`WATCH ${resourceName(this.type)}`, status);
        if (isGone(err)) gone = true;
        else failure = err;
        ctl.abort();
        return;
      }
      const rv = e.object?.metadata?.resourceVersion;
      if (e.type === "BOOKMARK") {
        if (rv) this.rv = rv;
        return;
      }
      if (e.type === "ADDED" || e.type === "MODIFIED") this.upsert(e.object);
      else if (e.type === "DELETED") this.remove(e.object);
      if (rv) this.rv = rv;
      this.m?.objects.set(this.labels, this.store.size);
    };

    const watching = this.client
      .watch<T>(
        this.type,
        {
          namespace: this.opts.namespace,
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
          resourceVersion: this.rv,
          allowWatchBookmarks: this.opts.bookmarks ?? true,
          timeoutSeconds,
        },
        onEvent,
        ctl.signal,
      )
      .then(
        () => undefined,
        (e: unknown) => {
          if (isGone(e)) gone = true;
          else failure = e instanceof Error ? e : new Error(String(e));
        },
      );

    return watching.then(async () => {
      ctl.abort();
      stop.removeEventListener("abort", onStop);
      await watchdog;
      if (gone) return { kind: "gone" } as const;
      if (failure) return { kind: "error", error: failure } as const;
      if (watchdogFired !== undefined) return { kind: "watchdog", silentMs: watchdogFired } as const;
      return { kind: "ended", quiet: events === 0 && this.clock.now() - startedAt < 1000 } as const;
    });
  }

  private async resyncLoop(everyMs: number): Promise<void> {
    const stop = this.stopper.signal;
    while (!stop.aborted) {
      await this.sleep(everyMs);
      if (stop.aborted || !this.isSynced) continue;
      for (const obj of [...this.store.values()]) this.emit(this.updates, obj, obj);
    }
  }
}
